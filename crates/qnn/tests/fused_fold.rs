//! Eval-mode BatchNorm folding against PyTorch 2.15's `torch.nn.utils.fusion`
//! (`tools/golden/gen_fuse.py`): the folded weights and biases are compared bit for bit, both
//! through the tensor-level functions and through the module-level `fuse_*_eval`.

#[allow(dead_code)]
#[path = "../../qtensor/tests/golden_support/format.rs"]
mod format;

use format::Case;
use qnn::float::{
    BatchNorm1d, BatchNorm2d, BatchNormConfig, Conv1d, Conv1dConfig, Conv2d, Conv2dConfig, Linear,
};
use qnn::fused::{fuse_conv_bn_eval, fuse_conv1d_bn_eval, fuse_linear_bn_eval};
use qnn::qtensor::Tensor;
use qnn::{BufferMut, Module, QnnError};

const FOLD: &str = include_str!("data/fuse/fold.golden");

fn cases() -> Vec<Case> {
    let g = format::parse(FOLD).unwrap();
    assert_eq!(g.cases.len(), g.declared_cases);
    assert!(g.cases.len() >= 9);
    g.cases
}

fn t(shape: &[usize], v: &[f32]) -> Tensor<f32> {
    Tensor::new(shape, v.to_vec()).unwrap()
}

/// Sets a batch norm's affine parameters and running statistics from the case.
fn load_bn(c: &Case, bn: &mut dyn Module) {
    let n = c.shape("num_features")[0];
    if yes(c, "affine") {
        bn.visit_params_mut(&mut |name, p| {
            p.value = t(
                &[n],
                c.f32s(if name == "weight" { "gamma" } else { "beta" }),
            );
        });
    }
    bn.visit_buffers_mut(&mut |name, b| match (name, b) {
        ("running_mean", BufferMut::F32(x)) => *x = t(&[n], c.f32s("running_mean")),
        ("running_var", BufferMut::F32(x)) => *x = t(&[n], c.f32s("running_var")),
        _ => {}
    });
    bn.eval();
}

fn bn_config(c: &Case) -> BatchNormConfig {
    BatchNormConfig {
        eps: c.f32s("eps")[0],
        affine: yes(c, "affine"),
        ..BatchNormConfig::new(c.shape("num_features")[0])
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn assert_bits(case: &str, what: &str, got: &Tensor<f32>, want: &[f32]) {
    assert_eq!(bits(got.data()), bits(want), "{case}: {what}");
}

#[test]
fn folded_weights_equal_pytorch_bit_for_bit() {
    for c in cases() {
        let ws = c.shape("w_shape");
        let w = t(&ws, c.f32s("w"));
        let b = yes(&c, "has_bias").then(|| t(&[ws[0]], c.f32s("b")));
        let (fw, fb) = match c.str("layer") {
            "conv2d" => {
                let cfg = Conv2dConfig {
                    kernel_size: [ws[2], ws[3]],
                    ..Conv2dConfig::new(ws[1], ws[0], 1)
                };
                let mut conv = Conv2d::from_tensors(cfg, w, b).unwrap();
                conv.eval();
                let mut bn = BatchNorm2d::new(bn_config(&c));
                load_bn(&c, &mut bn);
                let f = fuse_conv_bn_eval(&conv, &bn).unwrap();
                assert!(!f.is_training());
                (f.weight.value.clone(), f.bias.clone().unwrap().value)
            }
            "conv1d" => {
                let mut conv =
                    Conv1d::from_tensors(Conv1dConfig::new(ws[1], ws[0], ws[2]), w, b).unwrap();
                conv.eval();
                let mut bn = BatchNorm1d::new(bn_config(&c));
                load_bn(&c, &mut bn);
                let f = fuse_conv1d_bn_eval(&conv, &bn).unwrap();
                (f.weight.value.clone(), f.bias.clone().unwrap().value)
            }
            "linear" => {
                let mut lin = Linear::from_tensors(w, b).unwrap();
                lin.eval();
                let mut bn = BatchNorm1d::new(bn_config(&c));
                load_bn(&c, &mut bn);
                let f = fuse_linear_bn_eval(&lin, &bn).unwrap();
                (f.weight.value.clone(), f.bias.clone().unwrap().value)
            }
            other => panic!("{}: unknown layer {other}", c.name),
        };
        assert_eq!(fw.shape(), ws.as_slice(), "{}", c.name);
        assert_bits(&c.name, "fused weight", &fw, c.f32s("fused_w"));
        assert_bits(&c.name, "fused bias", &fb, c.f32s("fused_b"));
    }
}

#[test]
fn folding_requires_eval_mode_and_running_stats() {
    let mut rng = qnn::init::Rng::new(1);
    let conv = Conv2d::new(Conv2dConfig::new(2, 3, 1), &mut rng).unwrap();
    let bn = BatchNorm2d::new(BatchNormConfig::new(3));
    // Both in training mode (the default): PyTorch's "Fusion only for eval!".
    assert!(matches!(
        fuse_conv_bn_eval(&conv, &bn),
        Err(QnnError::InvalidConfig { .. })
    ));
    let (mut conv, mut bn) = (conv, bn);
    conv.eval();
    bn.eval();
    assert!(fuse_conv_bn_eval(&conv, &bn).is_ok());

    let mut untracked = BatchNorm2d::new(BatchNormConfig {
        track_running_stats: false,
        ..BatchNormConfig::new(3)
    });
    untracked.eval();
    assert!(matches!(
        fuse_conv_bn_eval(&conv, &untracked),
        Err(QnnError::InvalidConfig { .. })
    ));

    let mut wrong = BatchNorm2d::new(BatchNormConfig::new(4));
    wrong.eval();
    assert!(matches!(
        fuse_conv_bn_eval(&conv, &wrong),
        Err(QnnError::ShapeMismatch { .. })
    ));

    let mut lin = Linear::new(4, 5, true, &mut rng);
    lin.eval();
    let mut bn3 = BatchNorm1d::new(BatchNormConfig::new(3));
    bn3.eval();
    assert!(matches!(
        fuse_linear_bn_eval(&lin, &bn3),
        Err(QnnError::InvalidConfig { .. })
    ));
}

fn yes(c: &Case, key: &str) -> bool {
    c.str(key) == "yes"
}
