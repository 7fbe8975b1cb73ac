//! Observer error paths and the non-statistical observers: bad configs, channel-count and axis
//! mismatches, non-finite ranges, placeholders, no-op, recording and fixed-qparams observers,
//! and the spec round trip.

use qtensor::observer::{
    FixedQParamsObserver, MinMaxObserver, MovingAveragePerChannelMinMaxObserver, NoopObserver,
    Observer, ObserverConfig, ObserverSpec, PerChannelMinMaxObserver, PlaceholderDtype,
    PlaceholderObserver, RecordingObserver,
};
use qtensor::{Layout, QDType, QParams, QScheme, QTensorError, Tensor};

fn cfg(dtype: QDType, qscheme: QScheme) -> ObserverConfig {
    ObserverConfig::new(dtype, qscheme)
}

fn t(shape: &[usize], data: Vec<f32>) -> Tensor<f32> {
    Tensor::new(shape, data).unwrap()
}

#[test]
fn bad_configs_are_typed_errors() {
    // per-channel scheme on a per-tensor observer and the reverse
    let per_channel = cfg(QDType::QInt8, QScheme::PerChannelSymmetric);
    assert!(matches!(
        MinMaxObserver::new(per_channel.clone()),
        Err(QTensorError::Unsupported(_))
    ));
    let per_tensor = cfg(QDType::QInt8, QScheme::PerTensorAffine);
    assert!(matches!(
        PerChannelMinMaxObserver::new(per_tensor, 0),
        Err(QTensorError::Unsupported(_))
    ));
    // symmetric + reduce_range + quint8
    let mut c = cfg(QDType::QUInt8, QScheme::PerChannelSymmetric);
    c.reduce_range = true;
    assert!(matches!(
        PerChannelMinMaxObserver::new(c, 0),
        Err(QTensorError::Unsupported(_))
    ));
    // custom ranges: not containing 0, empty, too wide for qint8
    for (lo, hi) in [(1, 255), (0, 0), (3, -3), (-128, 128)] {
        let mut c = cfg(QDType::QInt8, QScheme::PerTensorAffine);
        (c.quant_min, c.quant_max) = (Some(lo), Some(hi));
        let err = ObserverSpec::MinMax(c).build().unwrap_err();
        assert!(
            matches!(err, QTensorError::InvalidQuantRange { qmin, qmax, .. } if (qmin, qmax) == (lo, hi)),
            "({lo}, {hi}): {err:?}"
        );
    }
    // a lone bound is ignored, as in torch (has_customized_qrange needs both)
    let mut c = cfg(QDType::QUInt8, QScheme::PerTensorAffine);
    c.quant_min = Some(5);
    assert_eq!(MinMaxObserver::new(c).unwrap().quant_range(), (0, 255));
    // fixed qparams
    let fixed = |scale, zp, lo, hi| FixedQParamsObserver::new(scale, zp, QDType::QUInt8, lo, hi);
    assert!(matches!(
        fixed(0.0, 0, 0, 255),
        Err(QTensorError::InvalidScale { .. })
    ));
    assert!(matches!(
        fixed(f64::NAN, 0, 0, 255),
        Err(QTensorError::InvalidScale { .. })
    ));
    assert!(matches!(
        fixed(1e300, 0, 0, 255),
        Err(QTensorError::InvalidScale { .. })
    ));
    assert!(matches!(
        fixed(0.1, 300, 0, 255),
        Err(QTensorError::ZeroPointOutOfRange { .. })
    ));
    assert!(matches!(
        fixed(0.1, 0, 5, 5),
        Err(QTensorError::InvalidQuantRange { .. })
    ));
}

#[test]
fn per_channel_shape_and_axis_errors() {
    let mut obs =
        PerChannelMinMaxObserver::new(cfg(QDType::QInt8, QScheme::PerChannelAffine), 1).unwrap();
    // a 1-d tensor has no axis 1; nothing is recorded
    let err = obs.observe(&t(&[4], vec![1.0; 4])).unwrap_err();
    assert_eq!(err, QTensorError::AxisOutOfRange { axis: 1, ndim: 1 });
    assert!(obs.min_vals().is_empty());
    // empty tensors are ignored before the axis is looked at, as in torch
    obs.observe(&t(&[0], vec![])).unwrap();
    obs.observe(&t(&[2, 3], vec![1.0, -2.0, 3.0, 4.0, 5.0, -6.0]))
        .unwrap();
    assert_eq!(obs.min_vals(), &[1.0, -2.0, -6.0]);
    assert_eq!(obs.max_vals(), &[4.0, 5.0, 3.0]);
    // other sizes on the other axes are fine, another channel count is not
    obs.observe(&t(&[1, 3], vec![-1.0, 0.0, 0.0])).unwrap();
    assert_eq!(obs.min_vals(), &[-1.0, -2.0, -6.0]);
    for bad in [t(&[2, 2], vec![0.0; 4]), t(&[2, 1], vec![0.0; 2])] {
        let err = obs.observe(&bad).unwrap_err();
        assert!(matches!(
            err,
            QTensorError::ChannelMismatch { expected: 3, .. }
        ));
    }
    assert_eq!(
        obs.min_vals(),
        &[-1.0, -2.0, -6.0],
        "a rejected call changes nothing"
    );
    let mut avg = MovingAveragePerChannelMinMaxObserver::new(
        cfg(QDType::QUInt8, QScheme::PerChannelAffine),
        0,
        0.5,
    )
    .unwrap();
    avg.observe(&t(&[2, 2], vec![0.0, 2.0, -2.0, 0.0])).unwrap();
    let err = avg.observe(&t(&[3, 1], vec![0.0; 3])).unwrap_err();
    assert_eq!(
        err,
        QTensorError::ChannelMismatch {
            expected: 2,
            got: 3
        }
    );
    avg.observe(&t(&[2, 1], vec![-2.0, 2.0])).unwrap();
    assert_eq!(avg.min_vals(), &[-1.0, 0.0]);
    assert_eq!(avg.max_vals(), &[0.0, 1.0]);
    // 0-d tensors have no channel axis
    let err = avg.observe(&Tensor::scalar(1.0)).unwrap_err();
    assert_eq!(err, QTensorError::AxisOutOfRange { axis: 0, ndim: 0 });
}

#[test]
fn channels_last_layout_is_respected() {
    let x = Tensor::<f32>::from_fn(&[2, 3, 2, 2], |i| i as f32 - 10.0);
    let cl = x.to_channels_last().unwrap();
    assert_eq!(cl.layout(), Layout::ChannelsLast);
    let config = cfg(QDType::QUInt8, QScheme::PerChannelAffine);
    let mut a = PerChannelMinMaxObserver::new(config.clone(), 1).unwrap();
    let mut b = PerChannelMinMaxObserver::new(config, 1).unwrap();
    a.observe(&x).unwrap();
    b.observe(&cl).unwrap();
    assert_eq!(a.min_vals(), &[-10.0, -6.0, -2.0]);
    assert_eq!(a.min_vals(), b.min_vals());
    assert_eq!(a.max_vals(), b.max_vals());
}

#[test]
fn non_finite_ranges_are_errors() {
    let config = cfg(QDType::QUInt8, QScheme::PerTensorAffine);
    // NaN sticks in the buffers as in torch; the qparams are an error
    let mut obs = MinMaxObserver::new(config.clone()).unwrap();
    obs.observe(&t(&[2], vec![1.0, f32::NAN])).unwrap();
    obs.observe(&t(&[2], vec![1.0, 2.0])).unwrap();
    let (lo, hi) = obs.min_max().unwrap();
    assert!(lo.is_nan() && hi.is_nan());
    assert!(matches!(
        obs.calculate_qparams(),
        Err(QTensorError::Unsupported(_))
    ));
    // all-NaN and infinite inputs
    for data in [
        vec![f32::NAN; 3],
        vec![f32::INFINITY, 1.0],
        vec![f32::NEG_INFINITY],
    ] {
        let mut obs = MinMaxObserver::new(config.clone()).unwrap();
        obs.observe(&t(&[data.len()], data.clone())).unwrap();
        assert!(obs.calculate_qparams().is_err(), "{data:?}");
    }
    // a finite range too wide for an f32 scale
    let mut obs = MinMaxObserver::new(config.clone()).unwrap();
    obs.observe(&t(&[2], vec![-3e38, 3e38])).unwrap();
    assert!(matches!(
        obs.calculate_qparams(),
        Err(QTensorError::InvalidScale { .. })
    ));
    // reset brings back the uninitialised default
    obs.reset_min_max_vals();
    assert_eq!(
        obs.calculate_qparams().unwrap(),
        QParams::PerTensor {
            scale: 1.0,
            zero_point: 0
        }
    );
    // per channel: only the NaN channel is NaN, and the qparams are an error
    let mut pc =
        PerChannelMinMaxObserver::new(cfg(QDType::QInt8, QScheme::PerChannelSymmetric), 0).unwrap();
    pc.observe(&t(&[2, 2], vec![1.0, 2.0, f32::NAN, 0.0]))
        .unwrap();
    assert_eq!(pc.min_vals()[0], 1.0);
    assert!(pc.min_vals()[1].is_nan());
    assert!(pc.calculate_qparams().is_err());
}

#[test]
fn placeholder_noop_and_recording() {
    let p = PlaceholderObserver::new(PlaceholderDtype::Quantized(QDType::QUInt8), true);
    assert_eq!(p.dtype(), Some(QDType::QUInt8));
    assert!(p.is_dynamic());
    let f16 = ObserverSpec::Placeholder {
        dtype: PlaceholderDtype::Float16,
        is_dynamic: false,
    };
    let mut obs = f16.build().unwrap();
    assert_eq!(obs.dtype(), None);
    obs.observe(&t(&[1], vec![3.0])).unwrap();
    assert_eq!(obs.min_max(), None);
    let err = obs.calculate_qparams().unwrap_err();
    assert!(err.to_string().contains("PlaceholderObserver"), "{err}");
    assert_eq!(obs.spec(), f16);

    let noop = NoopObserver::new(PlaceholderDtype::Float32);
    assert_eq!(noop.dtype(), None);
    assert!(
        noop.calculate_qparams()
            .unwrap_err()
            .to_string()
            .contains("NoopObserver")
    );

    let mut rec = ObserverSpec::Recording {
        dtype: QDType::QInt8,
    }
    .build()
    .unwrap();
    let a = t(&[2], vec![1.0, -1.0]);
    let b = t(&[1, 1], vec![7.0]);
    rec.observe(&a).unwrap();
    rec.observe(&b).unwrap();
    assert!(rec.calculate_qparams().is_err());
    assert_eq!(rec.dtype(), Some(QDType::QInt8));
    let copy = rec.clone();
    let recorded = copy
        .as_any()
        .downcast_ref::<RecordingObserver>()
        .unwrap()
        .tensor_values();
    assert_eq!(recorded, &[a, b]);
}

#[test]
fn specs_round_trip_and_clones_keep_state() {
    let mut sym = cfg(QDType::QInt8, QScheme::PerTensorSymmetric);
    (sym.quant_min, sym.quant_max, sym.eps) = (Some(-127), Some(127), 2f32.powi(-12));
    let specs = [
        ObserverSpec::MinMax(sym.clone()),
        ObserverSpec::MovingAverageMinMax {
            config: cfg(QDType::QUInt8, QScheme::PerTensorAffine),
            averaging_constant: 0.01,
        },
        ObserverSpec::PerChannelMinMax {
            config: cfg(QDType::QUInt8, QScheme::PerChannelAffineFloatQParams),
            ch_axis: 1,
        },
        ObserverSpec::MovingAveragePerChannelMinMax {
            config: cfg(QDType::QInt8, QScheme::PerChannelSymmetric),
            ch_axis: 0,
            averaging_constant: 0.5,
        },
        ObserverSpec::Noop {
            dtype: PlaceholderDtype::Float16,
        },
        ObserverSpec::FixedQParams {
            scale: 1.0 / 256.0,
            zero_point: 0,
            dtype: QDType::QUInt8,
            quant_min: 0,
            quant_max: 255,
        },
    ];
    for spec in specs {
        let mut obs = spec.build().unwrap();
        assert_eq!(obs.spec(), spec);
        assert_eq!(
            spec.config()
                .map(|c| c.qscheme)
                .unwrap_or(QScheme::PerTensorAffine),
            obs.qscheme()
        );
        obs.observe(&t(&[2, 2], vec![-1.0, 0.5, 2.0, 0.25]))
            .unwrap();
        let copy = obs.clone();
        assert_eq!(copy.min_max(), obs.min_max());
        assert_eq!(
            copy.calculate_qparams().ok(),
            obs.calculate_qparams().ok(),
            "{spec:?}"
        );
        // the copy is independent
        let mut copy = copy;
        copy.observe(&t(&[2, 2], vec![-9.0, 9.0, -9.0, 9.0]))
            .unwrap();
        if obs.min_max().is_some() {
            assert_ne!(copy.min_max(), obs.min_max());
        }
    }
}

#[test]
fn per_channel_qparams_shapes() {
    // float qparams: f32 scales and fractional zero points; never observed: one default channel
    let mut obs = PerChannelMinMaxObserver::new(
        cfg(QDType::QUInt8, QScheme::PerChannelAffineFloatQParams),
        0,
    )
    .unwrap();
    assert_eq!(
        obs.calculate_qparams().unwrap(),
        QParams::PerChannelFloat {
            scales: vec![1.0],
            zero_points: vec![0.0],
            axis: 0
        }
    );
    obs.observe(&t(&[2, 2], vec![1.0, 3.0, -2.0, 2.0])).unwrap();
    let QParams::PerChannelFloat {
        scales,
        zero_points,
        axis,
    } = obs.calculate_qparams().unwrap()
    else {
        panic!("float qparams expected")
    };
    assert_eq!(axis, 0);
    assert_eq!(scales, vec![2.0 / 255.0, 4.0 / 255.0]);
    assert_eq!(
        zero_points,
        vec![-1.0 / (2.0f32 / 255.0), 2.0 / (4.0f32 / 255.0)]
    );
}
