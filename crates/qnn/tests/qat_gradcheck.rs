//! Finite-difference gradient checks for the QAT Conv/Linear+BN layers (`qat::ConvBn1d`,
//! `ConvBnReLU1d`, `ConvBn2d`, `LinearBn1d`): with the weight fake-quant's observer and
//! fake-quant disabled the forward is differentiable, so central differences check the whole
//! backward — through the batch norm (batch statistics, or running ones when frozen), the
//! division by the scale factor, the weight and the bias. The batch norm's momentum is 0 so that
//! probing forwards leave the running statistics (and with them the scale factor) unchanged.
//! Without fake-quant the scale factor's two paths into `bn.weight` (through the scaled weight
//! and through the division) cancel exactly, so that term is checked against PyTorch's
//! gradients with fake-quant on instead (`qat_layers_golden.rs`, `dbn_weight`).

mod common;

use common::{avoid_kinks, check_gradients, rand_tensor};
use qnn::float::{
    BatchNorm1d, BatchNorm2d, BatchNormConfig, Conv1d, Conv1dConfig, Conv2d, Conv2dConfig, Linear,
};
use qnn::init::Rng;
use qnn::qat::{self, FakeQuantSpec, QatBatchNorm, QatBnFolded, QatFloatLayer};
use qnn::qtensor::observer::{ObserverConfig, ObserverSpec};
use qnn::qtensor::{QDType, QScheme};
use qnn::{BufferMut, Module};

const H: f32 = 1e-2;
const ATOL: f64 = 2e-3;
const RTOL: f64 = 1e-2;

fn spec() -> FakeQuantSpec {
    FakeQuantSpec::FakeQuantize {
        observer: ObserverSpec::MovingAveragePerChannelMinMax {
            config: ObserverConfig {
                quant_min: Some(-128),
                quant_max: Some(127),
                ..ObserverConfig::new(QDType::QInt8, QScheme::PerChannelSymmetric)
            },
            ch_axis: 0,
            averaging_constant: 0.01,
        },
    }
}

/// A batch norm with momentum 0 and non-trivial gamma, beta and running statistics.
fn bn<B: QatBatchNorm>(c: usize, seed: u64) -> B {
    let mut b = B::with_config(BatchNormConfig {
        momentum: Some(0.0),
        ..BatchNormConfig::new(c)
    });
    let vals = rand_tensor(&[4, c], 0.0, 1.0, seed);
    let v = vals.data();
    b.visit_params_mut(&mut |name, p| {
        for (k, x) in p.value.data_mut().iter_mut().enumerate() {
            *x = if name == "weight" {
                0.5 + v[k]
            } else {
                v[c + k] - 0.5
            };
        }
    });
    b.visit_buffers_mut(&mut |name, buf| {
        if let BufferMut::F32(t) = buf {
            for (k, x) in t.data_mut().iter_mut().enumerate() {
                match name {
                    "running_mean" => *x = v[2 * c + k] - 0.5,
                    "running_var" => *x = 0.5 + v[3 * c + k],
                    _ => {}
                }
            }
        }
    });
    b
}

fn check<L: QatFloatLayer, const RELU: bool>(
    mut m: QatBnFolded<L, RELU>,
    shape: &[usize],
    frozen: bool,
    seed: u64,
) {
    m.weight_fake_quant_mut().disable_observer();
    m.weight_fake_quant_mut().disable_fake_quant();
    if frozen {
        m.freeze_bn_stats();
    }
    let mut x = rand_tensor(shape, -2.0, 2.0, seed);
    avoid_kinks(&mut x, &[], 0.05);
    let n = check_gradients(&mut m, &x, H, ATOL, RTOL);
    let params: usize = {
        let mut k = 0;
        m.visit_params(&mut |_, p| k += p.value.numel());
        k
    };
    assert_eq!(n, x.numel() + params, "every entry checked");
    assert!(params > 0);
}

#[test]
fn conv_bn1d_gradients_train_and_frozen() {
    let mut rng = Rng::new(31);
    for (frozen, bias, seed) in [(false, true, 1), (true, false, 2)] {
        let cfg = Conv1dConfig {
            padding: 1,
            bias,
            ..Conv1dConfig::new(3, 4, 3)
        };
        let conv = Conv1d::new(cfg, &mut rng).unwrap();
        let m = qat::ConvBn1d::from_parts(conv, bn::<BatchNorm1d>(4, seed), &spec()).unwrap();
        check(m, &[3, 3, 7], frozen, 10 + seed);
    }
}

#[test]
fn conv_bn_relu1d_gradients() {
    let mut rng = Rng::new(32);
    let cfg = Conv1dConfig {
        stride: 2,
        groups: 2,
        ..Conv1dConfig::new(4, 4, 3)
    };
    let conv = Conv1d::new(cfg, &mut rng).unwrap();
    let m = qat::ConvBnReLU1d::from_parts(conv, bn::<BatchNorm1d>(4, 3), &spec()).unwrap();
    check(m, &[2, 4, 9], false, 13);
}

#[test]
fn conv_bn2d_gradients() {
    let mut rng = Rng::new(33);
    let conv = Conv2d::new(Conv2dConfig::new(2, 3, 3).padding(1), &mut rng).unwrap();
    let m = qat::ConvBn2d::from_parts(conv, bn::<BatchNorm2d>(3, 4), &spec()).unwrap();
    check(m, &[2, 2, 4, 4], false, 14);
}

#[test]
fn linear_bn1d_gradients_train_and_frozen() {
    let mut rng = Rng::new(34);
    for (frozen, bias, seed) in [(false, true, 5), (true, true, 6), (false, false, 7)] {
        let linear = Linear::new(5, 3, bias, &mut rng);
        let m = qat::LinearBn1d::from_parts(linear, bn::<BatchNorm1d>(3, seed), &spec()).unwrap();
        check(m, &[6, 5], frozen, 20 + seed);
    }
}
