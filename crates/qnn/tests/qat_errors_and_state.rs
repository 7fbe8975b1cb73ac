//! Error handling and state of the fake-quant modules and QAT layers: specs PyTorch rejects,
//! wrong input shapes, per-channel axes out of range, backward before forward, the toggles,
//! and safetensors round trips (save after training, load into a freshly built module, same
//! outputs and qparams).

use qnn::float::{BatchNorm2d, BatchNormConfig, Conv2dConfig};
use qnn::init::Rng;
use qnn::qat::{self, FakeQuantSpec};
use qnn::qtensor::observer::{ObserverConfig, ObserverSpec, PlaceholderDtype};
use qnn::qtensor::{QDType, QParams, QScheme, Tensor};
use qnn::state_dict::{from_safetensors, load_state_dict, state_dict, to_safetensors};
use qnn::{Module, QnnError, Value, float};

fn config(dtype: QDType, qscheme: QScheme, range: Option<(i64, i64)>) -> ObserverConfig {
    ObserverConfig {
        quant_min: range.map(|r| r.0),
        quant_max: range.map(|r| r.1),
        ..ObserverConfig::new(dtype, qscheme)
    }
}

fn ma(config: ObserverConfig) -> ObserverSpec {
    ObserverSpec::MovingAverageMinMax {
        config,
        averaging_constant: 0.01,
    }
}

fn pc_ma(config: ObserverConfig, ch_axis: usize) -> ObserverSpec {
    ObserverSpec::MovingAveragePerChannelMinMax {
        config,
        ch_axis,
        averaging_constant: 0.01,
    }
}

fn weight_spec_per_channel() -> FakeQuantSpec {
    FakeQuantSpec::FakeQuantize {
        observer: pc_ma(
            config(
                QDType::QInt8,
                QScheme::PerChannelSymmetric,
                Some((-128, 127)),
            ),
            0,
        ),
    }
}

fn fused_weight_spec() -> FakeQuantSpec {
    FakeQuantSpec::FusedMovingAvgObs {
        observer: ma(config(
            QDType::QInt8,
            QScheme::PerTensorSymmetric,
            Some((-128, 127)),
        )),
    }
}

fn invalid_qparams<T: std::fmt::Debug>(r: Result<T, QnnError>) {
    assert!(
        matches!(r, Err(QnnError::InvalidQParams { .. })),
        "expected InvalidQParams, got {r:?}"
    );
}

fn ramp(shape: &[usize], scale: f32) -> Tensor<f32> {
    let n: usize = shape.iter().product();
    Tensor::from_fn(shape, |i| {
        ((i * 37 % 101) as f32 / 50.0 - 1.0) * scale * (1.0 + (i % n) as f32 / n as f32)
    })
}

#[test]
fn specs_pytorch_rejects_are_errors() {
    // quant range outside the dtype (FakeQuantize.__init__'s iinfo checks)
    let quint8_signed = config(QDType::QUInt8, QScheme::PerTensorAffine, Some((-128, 127)));
    invalid_qparams(
        FakeQuantSpec::FakeQuantize {
            observer: ma(quint8_signed),
        }
        .build(),
    );
    let qint8_wide = config(QDType::QInt8, QScheme::PerTensorAffine, Some((-128, 255)));
    invalid_qparams(
        FakeQuantSpec::FakeQuantize {
            observer: ma(qint8_wide),
        }
        .build(),
    );
    let reversed = config(QDType::QUInt8, QScheme::PerTensorAffine, Some((200, 100)));
    invalid_qparams(
        FakeQuantSpec::FakeQuantize {
            observer: ma(reversed),
        }
        .build(),
    );
    // only one end of a custom range
    let half = ObserverConfig {
        quant_min: Some(0),
        ..ObserverConfig::new(QDType::QUInt8, QScheme::PerTensorAffine)
    };
    invalid_qparams(FakeQuantSpec::FakeQuantize { observer: ma(half) }.build());
    // the fused module defaults to 0..255, which qint8 cannot hold (as in PyTorch)
    let qint8_default = config(QDType::QInt8, QScheme::PerTensorSymmetric, None);
    invalid_qparams(
        FakeQuantSpec::FusedMovingAvgObs {
            observer: ma(qint8_default),
        }
        .build(),
    );
    // the fused module needs a moving-average observer
    let minmax = ObserverSpec::MinMax(config(QDType::QUInt8, QScheme::PerTensorAffine, None));
    invalid_qparams(FakeQuantSpec::FusedMovingAvgObs { observer: minmax }.build());
    // observers without integer qparams
    let placeholder = ObserverSpec::Placeholder {
        dtype: PlaceholderDtype::Float16,
        is_dynamic: false,
    };
    invalid_qparams(
        FakeQuantSpec::FakeQuantize {
            observer: placeholder,
        }
        .build(),
    );
    // fixed qparams: zero point outside the range, non-positive scale, range outside the dtype
    let fixed =
        |scale: f64, zero_point: i64, quant_min: i64, quant_max: i64| FakeQuantSpec::FixedQParams {
            scale,
            zero_point,
            dtype: QDType::QUInt8,
            quant_min,
            quant_max,
        };
    invalid_qparams(fixed(1.0 / 256.0, 300, 0, 255).build());
    invalid_qparams(fixed(0.0, 0, 0, 255).build());
    invalid_qparams(fixed(f64::NAN, 0, 0, 255).build());
    invalid_qparams(fixed(1.0 / 256.0, 0, -1, 255).build());
    assert!(fixed(1.0 / 256.0, 0, 0, 255).build().is_ok());
}

#[test]
fn per_channel_axis_out_of_range_is_an_error() {
    let cfg = config(
        QDType::QInt8,
        QScheme::PerChannelSymmetric,
        Some((-128, 127)),
    );
    let x = ramp(&[3, 4], 1.0);
    let mut fq = FakeQuantSpec::FakeQuantize {
        observer: pc_ma(cfg.clone(), 2),
    }
    .build()
    .unwrap();
    assert!(fq.apply(&x).is_err(), "axis 2 of a 2-d tensor");
    let mut fused = FakeQuantSpec::FusedMovingAvgObs {
        observer: pc_ma(cfg.clone(), 2),
    }
    .build()
    .unwrap();
    assert!(matches!(
        fused.apply(&x),
        Err(QnnError::DimOutOfRange {
            dim: 2,
            ndim: 2,
            ..
        })
    ));
    // ATen's fused op supports only axis 0 per channel
    let mut fused1 = FakeQuantSpec::FusedMovingAvgObs {
        observer: pc_ma(cfg, 1),
    }
    .build()
    .unwrap();
    invalid_qparams(fused1.apply(&x));
}

#[test]
fn wrong_shapes_and_order_are_errors() {
    let mut rng = Rng::new(3);
    let lin = float::Linear::new(4, 3, true, &mut rng);
    let mut q = qat::Linear::from_float(&lin, &weight_spec_per_channel()).unwrap();
    assert!(matches!(
        q.backward(&Value::F32(Tensor::zeros(&[2, 3]))),
        Err(QnnError::BackwardBeforeForward { .. })
    ));
    assert!(matches!(
        q.forward(&Value::F32(Tensor::zeros(&[2, 5]))),
        Err(QnnError::ShapeMismatch { .. })
    ));
    q.forward(&Value::F32(ramp(&[2, 4], 1.0))).unwrap();
    assert!(matches!(
        q.backward(&Value::F32(Tensor::zeros(&[2, 4]))),
        Err(QnnError::ShapeMismatch { .. })
    ));

    let conv = float::Conv2d::new(Conv2dConfig::new(2, 3, 3), &mut rng).unwrap();
    let bn = BatchNorm2d::new(BatchNormConfig::new(3));
    let mut cb = qat::ConvBn2d::from_parts(conv.clone(), bn, &fused_weight_spec()).unwrap();
    assert!(matches!(
        cb.forward(&Value::F32(Tensor::zeros(&[2, 5, 5]))),
        Err(QnnError::WrongRank { .. })
    ));
    assert!(matches!(
        cb.forward(&Value::F32(Tensor::zeros(&[1, 3, 5, 5]))),
        Err(QnnError::ShapeMismatch { .. })
    ));
    // a batch norm with other channels, or without running statistics
    let bn4 = BatchNorm2d::new(BatchNormConfig::new(4));
    assert!(qat::ConvBn2d::from_parts(conv.clone(), bn4, &fused_weight_spec()).is_err());
    let untracked = BatchNorm2d::new(BatchNormConfig {
        track_running_stats: false,
        ..BatchNormConfig::new(3)
    });
    assert!(qat::ConvBnReLU2d::from_parts(conv.clone(), untracked, &fused_weight_spec()).is_err());
    // halved layers cannot train
    let mut half = conv;
    half.half().unwrap();
    assert!(qat::Conv2d::from_float(&half, &fused_weight_spec()).is_err());

    let mut fq = FakeQuantSpec::FakeQuantize {
        observer: ma(config(QDType::QUInt8, QScheme::PerTensorAffine, None)),
    }
    .build()
    .unwrap();
    assert!(matches!(
        fq.forward(&Value::F32(Tensor::zeros(&[2]))),
        Ok(Value::F32(_))
    ));
    assert!(fq.backward(&Value::F32(Tensor::zeros(&[3]))).is_err());
}

#[test]
fn toggles_switch_observation_and_fake_quant() {
    let mut fq = FakeQuantSpec::FakeQuantize {
        observer: ObserverSpec::MinMax(config(QDType::QUInt8, QScheme::PerTensorAffine, None)),
    }
    .build()
    .unwrap();
    let x = Tensor::new(&[3], vec![-1.0f32, 0.3, 2.0]).unwrap();
    let out = fq.apply(&x).unwrap();
    assert_eq!(fq.scale().data(), &[3.0f32 / 255.0]);
    assert_ne!(out.output.data()[1], 0.3);
    fq.disable_observer();
    fq.apply(&Tensor::new(&[1], vec![100.0f32]).unwrap())
        .unwrap();
    assert_eq!(
        fq.scale().data(),
        &[3.0f32 / 255.0],
        "observer off keeps the qparams"
    );
    fq.disable_fake_quant();
    let off = fq.apply(&x).unwrap();
    assert_eq!(off.output, x);
    assert!(off.mask.is_none());
    assert!(!fq.fake_quant_enabled() && !fq.observer_enabled());
    fq.enable_fake_quant(true);
    assert!(fq.fake_quant_enabled());
}

fn round_trip(trained: &mut dyn Module, fresh: &mut dyn Module, x: &Tensor<f32>) {
    let bytes = to_safetensors(&state_dict(trained)).unwrap();
    load_state_dict(fresh, &from_safetensors(&bytes).unwrap(), true).unwrap();
    assert_eq!(
        state_dict(trained),
        state_dict(fresh),
        "buffers after loading"
    );
    let a = trained.forward(&Value::F32(x.clone())).unwrap();
    let b = fresh.forward(&Value::F32(x.clone())).unwrap();
    assert_eq!(a, b, "outputs after loading");
    assert_eq!(
        state_dict(trained),
        state_dict(fresh),
        "buffers after one more step"
    );
}

#[test]
fn fake_quant_state_round_trips_through_safetensors() {
    let specs = [
        FakeQuantSpec::FakeQuantize {
            observer: ma(config(
                QDType::QUInt8,
                QScheme::PerTensorAffine,
                Some((0, 255)),
            )),
        },
        FakeQuantSpec::FakeQuantize {
            observer: ObserverSpec::MinMax(ObserverConfig {
                eps: 2f32.powi(-12),
                ..config(QDType::QInt8, QScheme::PerTensorSymmetric, None)
            }),
        },
        FakeQuantSpec::FusedMovingAvgObs {
            observer: ma(config(QDType::QUInt8, QScheme::PerTensorAffine, None)),
        },
        FakeQuantSpec::FixedQParams {
            scale: 2.0 / 256.0,
            zero_point: 128,
            dtype: QDType::QUInt8,
            quant_min: 0,
            quant_max: 255,
        },
    ];
    for spec in specs {
        let mut trained = spec.build().unwrap();
        for s in 1..4 {
            trained.apply(&ramp(&[4, 5], s as f32)).unwrap();
        }
        let mut fresh = spec.build().unwrap();
        round_trip(trained.as_mut(), fresh.as_mut(), &ramp(&[4, 5], 2.5));
        assert_eq!(
            trained.calculate_qparams(),
            fresh.calculate_qparams(),
            "{spec:?}"
        );
    }
}

#[test]
fn qat_layers_round_trip_and_convert() {
    let mut rng = Rng::new(11);
    let conv = float::Conv2d::new(Conv2dConfig::new(2, 4, 3).padding(1), &mut rng).unwrap();
    let bn = BatchNorm2d::new(BatchNormConfig::new(4));
    let build = || {
        qat::ConvBnReLU2d::from_parts(conv.clone(), bn.clone(), &weight_spec_per_channel()).unwrap()
    };
    let mut trained = build();
    let x = ramp(&[2, 2, 5, 5], 1.0);
    for _ in 0..3 {
        let y = trained.forward(&Value::F32(x.clone())).unwrap();
        trained.zero_grad();
        trained.backward(&y).unwrap();
        trained.visit_params_mut(&mut |_, p| {
            let g = p.grad.data().to_vec();
            for (v, g) in p.value.data_mut().iter_mut().zip(g) {
                *v -= 0.05 * g;
            }
        });
    }
    let mut names = Vec::new();
    trained.visit_buffers(&mut |n, _| names.push(n.to_string()));
    assert_eq!(
        names,
        [
            "bn.running_mean",
            "bn.running_var",
            "bn.num_batches_tracked",
            "weight_fake_quant.fake_quant_enabled",
            "weight_fake_quant.observer_enabled",
            "weight_fake_quant.scale",
            "weight_fake_quant.zero_point",
            "weight_fake_quant.activation_post_process.eps",
            "weight_fake_quant.activation_post_process.min_val",
            "weight_fake_quant.activation_post_process.max_val",
        ]
    );
    let mut fresh = build();
    round_trip(&mut trained, &mut fresh, &x);

    // convert: the folded float conv and per-channel qint8 weight qparams
    trained.freeze_bn_stats();
    trained.eval();
    let (float, qparams) = trained.to_float_with_weight_qparams().unwrap();
    assert_eq!(float.weight.shape(), &[4, 2, 3, 3]);
    assert!(float.bias.is_some());
    match qparams {
        QParams::PerChannel {
            scales,
            zero_points,
            axis,
        } => {
            assert_eq!((scales.len(), axis), (4, 0));
            assert!(scales.iter().all(|&s| s > 0.0));
            assert_eq!(zero_points, vec![0; 4]);
        }
        other => panic!("expected per-channel qparams, got {other:?}"),
    }
    // frozen BN in eval: the QAT forward without fake-quant equals the folded float conv + ReLU
    trained.weight_fake_quant_mut().disable_fake_quant();
    let y = trained
        .forward(&Value::F32(x.clone()))
        .unwrap()
        .into_f32("t")
        .unwrap();
    let mut f = float;
    let yf = f.forward(&Value::F32(x)).unwrap().into_f32("t").unwrap();
    for (a, b) in y.data().iter().zip(yf.data()) {
        assert!(
            (a - b.max(0.0)).abs() <= 1e-5 + 1e-5 * b.abs(),
            "{a} vs {b}"
        );
    }
}

#[test]
fn qat_linear_gradients_are_straight_through() {
    // With the observer off, a weight moved far outside the observed range is clamped by the
    // fake-quant, so its gradient is zero; the others pass straight through.
    let lin = float::Linear::from_tensors(
        Tensor::new(&[2, 2], vec![0.5f32, -0.25, 0.125, 0.75]).unwrap(),
        None,
    )
    .unwrap();
    let mut q = qat::Linear::from_float(&lin, &fused_weight_spec()).unwrap();
    let x = Tensor::new(&[1, 2], vec![1.0f32, 2.0]).unwrap();
    q.forward(&Value::F32(x.clone())).unwrap();
    q.weight_fake_quant_mut().disable_observer();
    q.weight.value.data_mut()[3] = 10.0;
    q.forward(&Value::F32(x)).unwrap();
    q.zero_grad();
    q.backward(&Value::F32(
        Tensor::new(&[1, 2], vec![1.0f32, 1.0]).unwrap(),
    ))
    .unwrap();
    assert_eq!(q.weight.grad.data(), &[1.0, 2.0, 1.0, 0.0]);
    assert_eq!(q.kind(), qnn::ModuleKind::QatLinear);
}

#[test]
fn fused_float_modules_round_trip() {
    let mut rng = Rng::new(5);
    let conv = float::Conv2d::new(Conv2dConfig::new(2, 3, 3), &mut rng).unwrap();
    let bn = BatchNorm2d::new(BatchNormConfig::new(3));
    let fused_float = qnn::fused::ConvBnReLU2d::new(conv.clone(), bn, float::ReLU::new()).unwrap();
    let q = qat::ConvBnReLU2d::from_fused(&fused_float, &fused_weight_spec()).unwrap();
    assert_eq!(q.kind(), qnn::ModuleKind::QatConvBnReLU2d);
    let back = q.to_float_fused().unwrap();
    assert_eq!(back.kind(), qnn::ModuleKind::ConvReLU2d);
    // a fresh BN (mean 0, var 1, gamma 1, beta 0) folds to w / sqrt(1 + eps)
    let r = 1.0 / (1.0f32 + 1e-5).sqrt();
    for (a, b) in back
        .conv()
        .weight
        .value
        .data()
        .iter()
        .zip(conv.weight.value.data())
    {
        assert_eq!(*a, b * r);
    }

    let lin = float::Linear::new(3, 2, true, &mut rng);
    let fl = qnn::fused::LinearReLU::new(lin.clone(), float::ReLU::new());
    let q = qat::LinearReLU::from_fused(&fl, &fused_weight_spec()).unwrap();
    assert_eq!(
        q.to_float_fused().unwrap().linear().weight.value,
        lin.weight.value
    );
    let cr = qnn::fused::ConvReLU2d::new(conv.clone(), float::ReLU::new());
    let q = qat::ConvReLU2d::from_fused(&cr, &fused_weight_spec()).unwrap();
    assert_eq!(
        q.to_float_fused().unwrap().conv().weight.value,
        conv.weight.value
    );
}
