//! HistogramObserver behaviour beyond the goldens: NaN and infinity handling, mass
//! conservation when the range grows, the search range, bad arguments, and a proptest that
//! the histogram always holds exactly the number of finite values observed.

use proptest::prelude::*;
use qtensor::observer::{HistogramObserver, Observer, ObserverConfig, ObserverSpec};
use qtensor::{QDType, QParams, QScheme, QTensorError, Tensor};

fn observer(bins: usize) -> HistogramObserver {
    let config = ObserverConfig::new(QDType::QUInt8, QScheme::PerTensorAffine);
    HistogramObserver::new(config, bins, 16).unwrap()
}

fn t(data: Vec<f32>) -> Tensor<f32> {
    Tensor::new(&[data.len()], data).unwrap()
}

fn mass(obs: &HistogramObserver) -> f32 {
    obs.histogram().iter().sum()
}

#[test]
fn nan_is_an_error_and_changes_nothing() {
    let mut obs = observer(64);
    let err = obs.observe(&t(vec![1.0, f32::NAN])).unwrap_err();
    assert!(matches!(err, QTensorError::Unsupported(_)));
    assert_eq!(obs.min_max(), Some((f32::INFINITY, f32::NEG_INFINITY)));
    obs.observe(&t(vec![-1.0, 1.0])).unwrap();
    let before = obs.clone();
    assert!(obs.observe(&t(vec![f32::NAN, 5.0])).is_err());
    assert_eq!(obs, before);
}

#[test]
fn infinities_are_dropped() {
    let mut obs = observer(64);
    obs.observe(&t(vec![f32::INFINITY, f32::NEG_INFINITY]))
        .unwrap();
    assert_eq!(
        obs.calculate_qparams().unwrap(),
        QParams::PerTensor {
            scale: 1.0,
            zero_point: 0
        },
        "a tensor of only infinities is ignored"
    );
    obs.observe(&t(vec![f32::INFINITY, -2.0, 3.0, 0.5]))
        .unwrap();
    assert_eq!(obs.min_max(), Some((-2.0, 3.0)));
    assert_eq!(mass(&obs), 3.0);
}

#[test]
fn growing_ranges_keep_the_mass() {
    let mut obs = observer(2048);
    obs.observe(&t(vec![0.25; 7])).unwrap(); // a single value
    obs.observe(&t(vec![-1.0, 0.0, 0.5])).unwrap(); // orig_min == orig_max path
    assert_eq!(mass(&obs), 10.0);
    obs.observe(&t(vec![-4.0, 2.0, 9.0])).unwrap(); // upscaled rebinning
    assert_eq!(mass(&obs), 13.0);
    assert_eq!(obs.min_max(), Some((-4.0, 9.0)));
    obs.observe(&t(vec![0.0, 1.0])).unwrap(); // same range: plain addition
    assert_eq!(mass(&obs), 15.0);
    let (lo, hi) = obs.search_range().unwrap();
    assert!((-4.0..=9.0).contains(&lo) && (-4.0..=9.0).contains(&hi) && lo < hi);
}

#[test]
fn bad_arguments() {
    let config = ObserverConfig::new(QDType::QUInt8, QScheme::PerTensorAffine);
    assert!(HistogramObserver::new(config.clone(), 0, 16).is_err());
    assert!(HistogramObserver::new(config, 2048, 0).is_err());
    let per_channel = ObserverConfig::new(QDType::QInt8, QScheme::PerChannelSymmetric);
    let spec = ObserverSpec::Histogram {
        config: per_channel,
        bins: 2048,
        upsample_rate: 16,
    };
    assert!(matches!(spec.build(), Err(QTensorError::Unsupported(_))));
    // unlike MinMax, torch's HistogramObserver accepts symmetric + reduce_range + quint8
    let mut c = ObserverConfig::new(QDType::QUInt8, QScheme::PerTensorSymmetric);
    c.reduce_range = true;
    let spec = ObserverSpec::Histogram {
        config: c,
        bins: 2048,
        upsample_rate: 16,
    };
    let obs = spec.build().unwrap();
    assert_eq!(obs.spec(), spec);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn histogram_mass_is_the_finite_count(
        calls in prop::collection::vec(
            prop::collection::vec(prop_oneof![-50f32..50.0, Just(f32::INFINITY), Just(1.5f32)], 0..20),
            1..5,
        ),
    ) {
        let mut obs = observer(128);
        let mut count = 0usize;
        for data in calls {
            count += data.iter().filter(|v| v.is_finite()).count();
            obs.observe(&t(data)).unwrap();
        }
        // every bin holds a multiple of 1/16^k and the totals are small: the sum is exact
        prop_assert_eq!(mass(&obs), count as f32);
        let p = obs.calculate_qparams().unwrap();
        if let QParams::PerTensor { scale, zero_point } = p {
            prop_assert!(scale > 0.0 && (0..=255).contains(&zero_point));
        }
    }
}
