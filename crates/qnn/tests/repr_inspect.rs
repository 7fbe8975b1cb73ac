//! `qnn::repr`: PyTorch's printed form of single modules, and `named_parameters` reporting
//! the storage dtype of every weight that `half()` moves to f16 (the visitors show them
//! widened to f32, so the dtype must come from the module).

use qnn::Module;
use qnn::float::{
    BatchNorm2d, BatchNormConfig, Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig,
    Embedding, LSTMCell, LeakyReLU, Linear, Lstm, MaxPool2d, MultiheadAttention, RecurrentConfig,
    Sequential, TransformerEncoderConfig, TransformerEncoderLayer,
};
use qnn::init::Rng;
use qnn::repr::{TensorDType, module_repr, named_parameters};

/// After `half()`, exactly the parameters in `f16_names` are f16; the rest stay f32.
fn check_half(mut m: impl Module, f16_names: &[&str]) {
    assert!(
        named_parameters(&m)
            .iter()
            .all(|p| p.dtype == TensorDType::F32),
        "{}",
        module_repr(&m)
    );
    m.half().unwrap();
    let params = named_parameters(&m);
    for name in f16_names {
        assert!(
            params.iter().any(|p| p.name == *name),
            "no `{name}` in {params:#?}"
        );
    }
    for p in &params {
        let want = if f16_names.contains(&p.name.as_str()) {
            TensorDType::F16
        } else {
            TensorDType::F32
        };
        assert_eq!(p.dtype, want, "{p}");
    }
}

#[test]
fn half_reports_f16_weights_for_every_halving_layer() {
    let mut rng = Rng::new(4);
    check_half(Linear::new(3, 2, true, &mut rng), &["weight"]);
    check_half(
        Conv2d::new(Conv2dConfig::new(2, 3, 3), &mut rng).unwrap(),
        &["weight"],
    );
    check_half(
        ConvTranspose2d::new(ConvTranspose2dConfig::new(2, 3, 3), &mut rng).unwrap(),
        &["weight"],
    );
    check_half(Embedding::new(5, 3, None, &mut rng).unwrap(), &["weight"]);
    check_half(
        LSTMCell::new(3, 4, true, &mut rng),
        &["weight_ih", "weight_hh"],
    );
    let mut cfg = RecurrentConfig::new(3, 4);
    cfg.num_layers = 2;
    check_half(
        Lstm::new(cfg, &mut rng).unwrap(),
        &[
            "weight_ih_l0",
            "weight_hh_l0",
            "weight_ih_l1",
            "weight_hh_l1",
        ],
    );
    check_half(
        MultiheadAttention::new(4, 2, true, false, &mut rng).unwrap(),
        &["in_proj_weight", "out_proj.weight"],
    );
    check_half(
        TransformerEncoderLayer::new(TransformerEncoderConfig::new(4, 2), &mut rng).unwrap(),
        &[
            "self_attn.in_proj_weight",
            "self_attn.out_proj.weight",
            "linear1.weight",
            "linear2.weight",
        ],
    );
    let seq = Sequential::new()
        .push(Linear::new(3, 3, true, &mut rng))
        .push(Linear::new(3, 2, false, &mut rng));
    check_half(seq, &["0.weight", "1.weight"]);
}

#[test]
fn buffers_report_their_dtypes() {
    let bn = BatchNorm2d::new(BatchNormConfig::new(3));
    let params = named_parameters(&bn);
    let get = |n: &str| params.iter().find(|p| p.name == n).unwrap();
    assert_eq!(get("running_mean").dtype, TensorDType::F32);
    assert!(!get("running_mean").trainable);
    assert_eq!(get("num_batches_tracked").dtype, TensorDType::I64);
    assert_eq!(get("num_batches_tracked").shape, Vec::<usize>::new());
    assert!(get("weight").trainable);
}

#[test]
fn single_modules_print_as_pytorch() {
    // Expected strings are `str(module)` of the same PyTorch modules (torch 2.15.0).
    let mut rng = Rng::new(4);
    let conv = Conv2dConfig::new(3, 8, 3)
        .stride(2)
        .padding(1)
        .groups(1)
        .bias(false);
    assert_eq!(
        module_repr(&Conv2d::new(conv, &mut rng).unwrap()),
        "Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)"
    );
    let dw = Conv2dConfig::new(8, 8, 3).dilation(2).groups(8);
    assert_eq!(
        module_repr(&Conv2d::new(dw, &mut rng).unwrap()),
        "Conv2d(8, 8, kernel_size=(3, 3), stride=(1, 1), dilation=(2, 2), groups=8)"
    );
    assert_eq!(
        module_repr(&BatchNorm2d::new(BatchNormConfig::new(16))),
        "BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"
    );
    assert_eq!(
        module_repr(&LeakyReLU::new(0.01)),
        "LeakyReLU(negative_slope=0.01)"
    );
    assert_eq!(
        module_repr(&MaxPool2d::with_options([3, 3], [2, 2], [1, 1], [1, 1], true).unwrap()),
        "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True)"
    );
}
