//! The whole eager flow on graphs as users build them: float LeNet5 → fuse_modules → prepare
//! with a QConfigMapping (fbgemm defaults, histogram observers) → calibrate → convert; and a
//! residual block whose skip add becomes a QFunctional.

mod lenet_flow_support;

use lenet_flow_support::*;
use qflow::numeric_suite::sqnr;
use qflow::passes::{convert, fuse_modules, prepare};
use qflow::qconfig::{Backend, QConfigMapping, get_default_qconfig};
use qflow::{FunctionalBuilder, FunctionalOp};
use qnn::float::{Linear, ReLU};
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::{Module, Value};

#[test]
fn float_lenet_fuse_prepare_calibrate_convert() {
    let mut g = float_lenet(21, false);
    fuse_modules(&mut g, &LENET_FUSE_GROUPS).unwrap();
    let mapping = QConfigMapping::new().set_global(Some(get_default_qconfig(Backend::Fbgemm)));
    let observers = prepare(&mut g, &mapping).unwrap();
    assert_eq!(observers.len(), 6);
    for i in 0..3 {
        run_f32(&mut g, &images(8, 300 + i));
    }
    convert(&mut g).unwrap();
    assert_eq!(
        kinds(&g),
        [
            "quant: Quantize",
            "conv1: QuantizedConvReLU2d",
            "relu1: Identity",
            "pool1: QuantizedMaxPool2d",
            "conv2: QuantizedConvReLU2d",
            "relu2: Identity",
            "pool2: QuantizedMaxPool2d",
            "flatten: QuantizedFlatten",
            "fc1: QuantizedLinearReLU",
            "relu3: Identity",
            "fc2: QuantizedLinearReLU",
            "relu4: Identity",
            "fc3: QuantizedLinear",
            "dequant: DeQuantize",
        ]
    );
    let mut float = float_lenet(21, false);
    let x = images(8, 4);
    let db = sqnr(&run_f32(&mut float, &x), &run_f32(&mut g, &x)).unwrap();
    assert!(db > 20.0, "SQNR {db} dB");
}

#[test]
fn residual_add_becomes_qfunctional() {
    let mut rng = Rng::new(3);
    let mut b = FunctionalBuilder::new();
    let x = b.input("x");
    let h = b.module("fc1", Linear::new(8, 8, true, &mut rng), &[&x]);
    let h = b.module("relu", ReLU::new(), &[&h]);
    let y = b.functional("add", FunctionalOp::Add, &[&h, &x]);
    let z = b.module("fc2", Linear::new(8, 3, true, &mut rng), &[&y]);
    b.output(&z);
    let mut g = b.build().unwrap();
    g.eval();
    let mut float = b_clone(&g);
    let mapping = QConfigMapping::new().set_global(Some(static_qconfig()));
    let observers = prepare(&mut g, &mapping).unwrap();
    assert_eq!(
        observers,
        [
            "x.activation_post_process",
            "fc1.activation_post_process",
            "add.activation_post_process",
            "fc2.activation_post_process"
        ]
    );
    let data = |seed| {
        let mut r = Rng::new(seed);
        Tensor::from_fn(&[16, 8], |_| r.uniform(-1.0, 1.0))
    };
    for s in 0..3 {
        run_f32(&mut g, &data(s));
    }
    convert(&mut g).unwrap();
    assert_eq!(
        kinds(&g),
        [
            "quant: Quantize",
            "fc1: QuantizedLinear",
            "relu: QuantizedReLU",
            "add: QFunctional",
            "fc2: QuantizedLinear",
            "dequant: DeQuantize"
        ]
    );
    let x = data(9);
    let db = sqnr(&run_f32(&mut float, &x), &run_f32(&mut g, &x)).unwrap();
    assert!(db > 20.0, "SQNR {db} dB");
}

/// A float copy of the residual graph (same weights) through its state dict.
fn b_clone(g: &qflow::Graph) -> qflow::Graph {
    let mut rng = Rng::new(3);
    let mut b = FunctionalBuilder::new();
    let x = b.input("x");
    let h = b.module("fc1", Linear::new(8, 8, true, &mut rng), &[&x]);
    let h = b.module("relu", ReLU::new(), &[&h]);
    let y = b.functional("add", FunctionalOp::Add, &[&h, &x]);
    let z = b.module("fc2", Linear::new(8, 3, true, &mut rng), &[&y]);
    b.output(&z);
    let mut f = b.build().unwrap();
    f.eval();
    let mut a = Vec::new();
    g.visit_params(&mut |_, p| a.extend_from_slice(p.value.data()));
    let mut c = Vec::new();
    f.visit_params(&mut |_, p| c.extend_from_slice(p.value.data()));
    assert_eq!(a, c);
    let _ = Value::no_grad();
    f
}

#[test]
fn quantize_runs_the_calibration_callback() {
    let mut g = float_lenet(22, true);
    fuse_modules(&mut g, &LENET_FUSE_GROUPS).unwrap();
    let mapping = QConfigMapping::new().set_global(Some(static_qconfig()));
    let mut calls = 0;
    qflow::passes::quantize(&mut g, &mapping, |g| {
        for i in 0..2 {
            g.run(&[Value::F32(images(4, 50 + i))])?;
            calls += 1;
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(calls, 2);
    assert!(!g.is_training());
    assert_eq!(
        g.node("fc3").and_then(|n| n.kind()),
        Some(qnn::ModuleKind::QuantizedLinear)
    );
    // A calibration callback that runs nothing leaves the observers empty: typed error.
    let mut g = float_lenet(22, false);
    let err = qflow::passes::quantize(&mut g, &mapping, |_| Ok(())).unwrap_err();
    assert!(matches!(err, qflow::QflowError::NotCalibrated { .. }));
}
