//! Invariants of every fake-quant module over many random inputs and specs: outputs lie on the
//! quantization grid (fake-quantizing them again with the observer off changes nothing and
//! clamps nothing), clamped inputs land on the grid's ends, and the backward pass is exactly
//! `grad * mask`.

use qnn::Value;
use qnn::init::Rng;
use qnn::qat::{FakeQuant, FakeQuantSpec, ZeroPoints};
use qnn::qtensor::observer::{ObserverConfig, ObserverSpec};
use qnn::qtensor::{QDType, QScheme, Tensor};

fn specs() -> Vec<FakeQuantSpec> {
    let cfg = |dtype, qscheme, range: Option<(i64, i64)>| ObserverConfig {
        quant_min: range.map(|r| r.0),
        quant_max: range.map(|r| r.1),
        ..ObserverConfig::new(dtype, qscheme)
    };
    let ma = |config| ObserverSpec::MovingAverageMinMax {
        config,
        averaging_constant: 0.3,
    };
    let pc = |config| ObserverSpec::MovingAveragePerChannelMinMax {
        config,
        ch_axis: 0,
        averaging_constant: 0.3,
    };
    vec![
        FakeQuantSpec::FakeQuantize {
            observer: ma(cfg(QDType::QUInt8, QScheme::PerTensorAffine, None)),
        },
        FakeQuantSpec::FakeQuantize {
            observer: ObserverSpec::MinMax(cfg(QDType::QInt8, QScheme::PerTensorSymmetric, None)),
        },
        FakeQuantSpec::FakeQuantize {
            observer: pc(cfg(
                QDType::QInt8,
                QScheme::PerChannelAffine,
                Some((-127, 127)),
            )),
        },
        FakeQuantSpec::FusedMovingAvgObs {
            observer: ma(cfg(QDType::QUInt8, QScheme::PerTensorAffine, None)),
        },
        FakeQuantSpec::FusedMovingAvgObs {
            observer: pc(cfg(
                QDType::QInt8,
                QScheme::PerChannelSymmetric,
                Some((-128, 127)),
            )),
        },
        FakeQuantSpec::FixedQParams {
            scale: 1.0 / 256.0,
            zero_point: 0,
            dtype: QDType::QUInt8,
            quant_min: 0,
            quant_max: 255,
        },
    ]
}

/// `(scale, zero point)` of channel `c` (or the only one).
fn qparams_at(fq: &dyn FakeQuant, c: usize) -> (f32, f32) {
    let scales = fq.scale().data();
    let i = if scales.len() == 1 { 0 } else { c };
    let zp = match fq.zero_point() {
        ZeroPoints::Int(z) => z.data()[i] as f32,
        ZeroPoints::Float(z) => z.data()[i],
    };
    (scales[i], zp)
}

#[test]
fn outputs_are_on_the_grid_and_gradients_are_masked() {
    let mut rng = Rng::new(77);
    for spec in specs() {
        let mut fq = spec.build().unwrap();
        let (qmin, qmax) = fq.quant_range();
        let channels = 2 + rng.below(3);
        fq.expect_channels(channels);
        for _ in 0..20 {
            let per_channel = fq.ch_axis().is_some();
            let c = if per_channel {
                channels
            } else {
                1 + rng.below(4)
            };
            let inner = 1 + rng.below(30);
            let spread = rng.uniform(0.01, 4.0);
            let shift = rng.uniform(-1.0, 1.0) * spread;
            let mut data = vec![0.0f32; c * inner];
            rng.fill_uniform(&mut data, -spread, spread);
            data.iter_mut().for_each(|v| *v += shift);
            let x = Tensor::new(&[c, inner], data).unwrap();
            fq.enable_observer(true);
            let y = fq
                .forward(&Value::F32(x.clone()))
                .unwrap()
                .into_f32("t")
                .unwrap();
            let mut gy = vec![0.0f32; c * inner];
            rng.fill_uniform(&mut gy, -1.0, 1.0);
            let gy = Tensor::new(&[c, inner], gy).unwrap();
            let dx = fq
                .backward(&Value::F32(gy.clone()))
                .unwrap()
                .into_f32("t")
                .unwrap();
            // the same qparams again (observer off) give the mask of the forward
            fq.enable_observer(false);
            let mask = fq.apply(&x).unwrap().mask.expect("fake-quant is on");
            for i in 0..c * inner {
                assert_eq!(
                    dx.data()[i],
                    gy.data()[i] * f32::from(mask.data()[i]),
                    "{spec:?}: dx[{i}]"
                );
                let (s, z) = qparams_at(fq.as_ref(), i / inner);
                let q = y.data()[i] / s + z;
                assert!(
                    (q - q.round()).abs() < 1e-3,
                    "{spec:?}: y[{i}] = {} is off the grid",
                    y.data()[i]
                );
                assert!(
                    (qmin as f32..=qmax as f32).contains(&q.round()),
                    "{spec:?}: level {q}"
                );
                if mask.data()[i] == 0 {
                    let end = if x.data()[i] > 0.0 { qmax } else { qmin } as f32;
                    assert_eq!(q.round(), end, "{spec:?}: clamped x[{i}] = {}", x.data()[i]);
                }
            }
            // fake-quantizing the output again: nothing moves, nothing is clamped
            let again = fq.apply(&y).unwrap();
            assert_eq!(again.output, y, "{spec:?}: idempotent");
            assert!(
                again.mask.unwrap().data().iter().all(|&m| m == 1),
                "{spec:?}: grid values pass"
            );
        }
    }
}
