//! Property tests of the min/max observers: splitting the same data over several calls gives
//! the same buffers and qparams as one call; the qparams always cover the observed range; the
//! moving average with constant 1 follows the last batch.

use proptest::prelude::*;
use qtensor::observer::{ObserverConfig, ObserverSpec};
use qtensor::{QDType, QParams, QScheme, Tensor};

fn per_tensor_config() -> impl Strategy<Value = ObserverConfig> {
    (
        prop_oneof![Just(QDType::QUInt8), Just(QDType::QInt8)],
        prop_oneof![
            Just(QScheme::PerTensorAffine),
            Just(QScheme::PerTensorSymmetric)
        ],
        any::<bool>(),
    )
        .prop_map(|(dtype, qscheme, reduce)| {
            let mut c = ObserverConfig::new(dtype, qscheme);
            // symmetric + reduce_range + quint8 is rejected by torch
            c.reduce_range = reduce && !(qscheme.is_symmetric() && dtype == QDType::QUInt8);
            c
        })
}

fn values() -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(prop_oneof![-1e4f32..1e4, -1.0f32..1.0, Just(0.0f32)], 2..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn minmax_split_equals_whole(config in per_tensor_config(), data in values(), cut in 0usize..40) {
        let cut = cut.min(data.len());
        let spec = ObserverSpec::MinMax(config);
        let mut whole = spec.build().unwrap();
        whole.observe(&Tensor::new(&[data.len()], data.clone()).unwrap()).unwrap();
        let mut split = spec.build().unwrap();
        for part in [&data[..cut], &data[cut..]] {
            split.observe(&Tensor::new(&[part.len()], part.to_vec()).unwrap()).unwrap();
        }
        prop_assert_eq!(whole.min_max(), split.min_max());
        prop_assert_eq!(whole.calculate_qparams().unwrap(), split.calculate_qparams().unwrap());
    }

    #[test]
    fn per_channel_split_equals_whole(data in prop::collection::vec(-100f32..100.0, 12), rows in 1usize..3) {
        // [4, 3] observed whole or as rows 0..rows and rows..4 (axis 1 keeps 3 channels)
        let config = ObserverConfig::new(QDType::QInt8, QScheme::PerChannelSymmetric);
        let spec = ObserverSpec::PerChannelMinMax { config, ch_axis: 1 };
        let mut whole = spec.build().unwrap();
        whole.observe(&Tensor::new(&[4, 3], data.clone()).unwrap()).unwrap();
        let mut split = spec.build().unwrap();
        split.observe(&Tensor::new(&[rows, 3], data[..rows * 3].to_vec()).unwrap()).unwrap();
        split.observe(&Tensor::new(&[4 - rows, 3], data[rows * 3..].to_vec()).unwrap()).unwrap();
        prop_assert_eq!(whole.calculate_qparams().unwrap(), split.calculate_qparams().unwrap());
    }

    #[test]
    fn qparams_cover_the_range(config in per_tensor_config(), data in values()) {
        let mut obs = ObserverSpec::MinMax(config.clone()).build().unwrap();
        obs.observe(&Tensor::new(&[data.len()], data).unwrap()).unwrap();
        let (lo, hi) = obs.min_max().unwrap();
        let QParams::PerTensor { scale, zero_point } = obs.calculate_qparams().unwrap() else {
            panic!("per-tensor qparams expected")
        };
        let (qmin, qmax) =
            qtensor::calculate_qmin_qmax(config.dtype, config.reduce_range, None).unwrap();
        prop_assert!(scale >= f64::from(f32::EPSILON));
        prop_assert!((qmin..=qmax).contains(&zero_point));
        // the representable range reaches the observed one within half a step
        let top = (qmax - zero_point) as f64 * scale;
        let bottom = (qmin - zero_point) as f64 * scale;
        let slack = scale * 0.5 + 1e-6 * f64::from(hi.abs().max(lo.abs()));
        prop_assert!(f64::from(hi) <= top + slack, "{hi} > {top}");
        prop_assert!(f64::from(lo) >= bottom - slack, "{lo} < {bottom}");
    }

    #[test]
    fn moving_average_constant_one_tracks_last_batch(a in values(), b in values()) {
        let config = ObserverConfig::new(QDType::QUInt8, QScheme::PerTensorAffine);
        let mut obs = ObserverSpec::MovingAverageMinMax { config, averaging_constant: 1.0 }
            .build()
            .unwrap();
        obs.observe(&Tensor::new(&[a.len()], a).unwrap()).unwrap();
        obs.observe(&Tensor::new(&[b.len()], b.clone()).unwrap()).unwrap();
        let lo = b.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = b.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        // m + 1 * (cur - m) is cur up to one rounding of the subtraction
        let (m_lo, m_hi) = obs.min_max().unwrap();
        prop_assert!((m_lo - lo).abs() <= 1e-3 * lo.abs().max(1.0));
        prop_assert!((m_hi - hi).abs() <= 1e-3 * hi.abs().max(1.0));
    }
}
