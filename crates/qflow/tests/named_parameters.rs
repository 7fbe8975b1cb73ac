//! `Graph::named_parameters()`: every parameter and buffer with the dtype it is stored in, on
//! the float LeNet5, after `half()` (weights f16, biases f32) and after `convert` (weights
//! qint8 with f64 per-channel scales and i64 zero points).

mod lenet_flow_support;

use lenet_flow_support::*;
use qflow::passes::{DynamicDType, convert, fuse_modules, prepare, quantize_dynamic};
use qflow::qconfig::{Backend, QConfigMapping, get_default_qconfig};
use qnn::repr::{NamedParameter, TensorDType};
use qnn::{Module, ModuleKind};

fn find<'a>(params: &'a [NamedParameter], name: &str) -> &'a NamedParameter {
    params
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no `{name}` in {params:#?}"))
}

#[test]
fn float_lenet_is_all_f32_parameters() {
    let g = float_lenet(3, false);
    let params = g.named_parameters();
    let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "conv1.weight",
            "conv1.bias",
            "conv2.weight",
            "conv2.bias",
            "fc1.weight",
            "fc1.bias",
            "fc2.weight",
            "fc2.bias",
            "fc3.weight",
            "fc3.bias"
        ]
    );
    assert!(
        params
            .iter()
            .all(|p| p.dtype == TensorDType::F32 && p.trainable)
    );
    assert_eq!(find(&params, "conv1.weight").shape, [6, 1, 5, 5]);
    assert_eq!(find(&params, "fc1.weight").shape, [120, 256]);
    assert_eq!(find(&params, "fc3.bias").shape, [10]);
    assert_eq!(
        find(&params, "conv2.weight").to_string(),
        "conv2.weight: f32[16, 6, 5, 5]"
    );
    // Same names, shapes and count as the state dict.
    assert_eq!(params.len(), qnn::state_dict::state_dict(&g).len());
}

#[test]
fn half_makes_every_weight_f16() {
    let mut g = float_lenet(3, false);
    g.half().unwrap();
    let params = g.named_parameters();
    for p in &params {
        let want = if p.name.ends_with(".weight") {
            TensorDType::F16
        } else {
            TensorDType::F32
        };
        assert_eq!(p.dtype, want, "{p}");
    }
    assert_eq!(
        find(&params, "fc1.weight").to_string(),
        "fc1.weight: f16[120, 256]"
    );
    // The graph as a module answers the same per key.
    assert_eq!(g.param_dtype("conv1.weight"), Some(TensorDType::F16));
    assert_eq!(g.param_dtype("conv1.bias"), None);
}

#[test]
fn convert_makes_the_weights_qint8() {
    let mut g = float_lenet(3, false);
    fuse_modules(&mut g, &LENET_FUSE_GROUPS).unwrap();
    let mapping = QConfigMapping::new().set_global(Some(get_default_qconfig(Backend::Fbgemm)));
    prepare(&mut g, &mapping).unwrap();
    for i in 0..2 {
        run_f32(&mut g, &images(4, 40 + i));
    }
    convert(&mut g).unwrap();
    let params = g.named_parameters();
    assert!(params.iter().all(|p| !p.trainable), "{params:#?}");
    for layer in ["conv1", "conv2", "fc1", "fc2", "fc3"] {
        let w = find(&params, &format!("{layer}.weight"));
        assert_eq!(w.dtype, TensorDType::QInt8, "{w}");
        assert_eq!(
            find(&params, &format!("{layer}.bias")).dtype,
            TensorDType::F32
        );
        let s = find(&params, &format!("{layer}.weight_scale"));
        assert_eq!(s.dtype, TensorDType::F64, "{s}");
        assert_eq!(s.shape, [w.shape[0]], "per-channel scales");
        let zp = find(&params, &format!("{layer}.weight_zero_point"));
        assert_eq!(zp.dtype, TensorDType::I64, "{zp}");
    }
    assert_eq!(
        find(&params, "conv1.weight").to_string(),
        "conv1.weight: qint8[6, 1, 5, 5]"
    );
    // No float weight is left.
    assert!(
        !params
            .iter()
            .any(|p| p.name.ends_with(".weight") && p.dtype != TensorDType::QInt8)
    );
}

#[test]
fn dynamic_fp16_weights_are_f16_and_qint8_ones_qint8() {
    for (dtype, want) in [
        (DynamicDType::Float16, TensorDType::F16),
        (DynamicDType::QInt8, TensorDType::QInt8),
    ] {
        let mut g = float_lenet(3, false);
        quantize_dynamic(&mut g, &[ModuleKind::Linear], dtype).unwrap();
        let params = g.named_parameters();
        assert_eq!(find(&params, "fc2.weight").dtype, want, "{dtype:?}");
        assert_eq!(find(&params, "fc2.weight").shape, [84, 120]);
        assert_eq!(find(&params, "conv1.weight").dtype, TensorDType::F32);
    }
}
