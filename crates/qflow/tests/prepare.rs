//! prepare: observers where PyTorch's eager prepare puts them (plus the automatic input
//! observer), identity forward, calibration statistics, QConfig None and errors.

mod lenet_flow_support;

use lenet_flow_support::*;
use qflow::passes::{ObserverNode, prepare_configured, set_global_qconfig};
use qflow::qconfig::{QConfig, QuantSpec};
use qflow::{FunctionalBuilder, FunctionalOp, QflowError};
use qnn::ModuleKind;
use qnn::float::{Hardswish, Linear, MaxPool2d, ReLU, Sigmoid, Softmax};
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::qtensor::observer::ObserverSpec;

#[test]
fn lenet_observers_follow_pytorch_placement() {
    let mut g = fused_lenet(1);
    set_global_qconfig(&mut g, &static_qconfig());
    let inserted = prepare_configured(&mut g).unwrap();
    assert_eq!(
        inserted,
        [
            "x.activation_post_process",
            "conv1.activation_post_process",
            "conv2.activation_post_process",
            "fc1.activation_post_process",
            "fc2.activation_post_process",
            "fc3.activation_post_process",
        ]
    );
    // After each fused module (and the input); none after Identity, MaxPool2d or flatten.
    assert_eq!(
        g.node_names(),
        [
            "x.activation_post_process",
            "conv1",
            "conv1.activation_post_process",
            "relu1",
            "pool1",
            "conv2",
            "conv2.activation_post_process",
            "relu2",
            "pool2",
            "flatten",
            "fc1",
            "fc1.activation_post_process",
            "relu3",
            "fc2",
            "fc2.activation_post_process",
            "relu4",
            "fc3",
            "fc3.activation_post_process",
        ]
    );
    assert_eq!(g.outputs(), ["fc3.activation_post_process"]);
    assert_eq!(g.nodes_of_kind(ModuleKind::ObserverModule).count(), 6);
    // The QConfig stays on the nodes for convert's weight observers.
    assert_eq!(g.node("fc1").unwrap().qconfig(), Some(&static_qconfig()));
}

#[test]
fn prepared_graph_computes_the_same_and_records_ranges() {
    let mut float = fused_lenet(2);
    let mut g = fused_lenet(2);
    set_global_qconfig(&mut g, &static_qconfig());
    prepare_configured(&mut g).unwrap();
    let x = images(3, 7);
    let y_float = run_f32(&mut float, &x);
    let y = run_f32(&mut g, &x);
    assert_eq!(y.data(), y_float.data(), "observers must be identities");
    // The input observer saw exactly the input's range.
    let obs = g
        .module_as::<ObserverNode>("x.activation_post_process")
        .unwrap();
    let (lo, hi) = x
        .data()
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    assert_eq!(obs.observer().min_max(), Some((lo, hi)));
    assert_eq!(obs.observed_batches(), 1);
    // The output observer saw the logits' range.
    let out = g
        .module_as::<ObserverNode>("fc3.activation_post_process")
        .unwrap();
    let (lo, hi) = y
        .data()
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    assert_eq!(out.observer().min_max(), Some((lo, hi)));
}

#[test]
fn backward_passes_through_observers() {
    let mut g = fused_lenet(3);
    set_global_qconfig(&mut g, &static_qconfig());
    prepare_configured(&mut g).unwrap();
    let mut float = fused_lenet(3);
    let x = images(2, 1);
    let gy = qnn::Value::F32(Tensor::from_fn(&[2, 10], |i| (i as f32 - 9.0) / 10.0));
    g.train(true);
    float.train(true);
    run_f32(&mut g, &x);
    run_f32(&mut float, &x);
    let gx = g.backward_all(std::slice::from_ref(&gy)).unwrap();
    let gx_float = float.backward_all(&[gy]).unwrap();
    assert_eq!(
        gx[0].as_f32("t").unwrap().data(),
        gx_float[0].as_f32("t").unwrap().data()
    );
}

use qnn::Module;

#[test]
fn qconfig_none_leaves_a_node_unobserved_and_observes_its_output_for_the_next() {
    let mut g = fused_lenet(4);
    set_global_qconfig(&mut g, &static_qconfig());
    g.node_mut("fc2").unwrap().set_qconfig(None);
    let inserted = prepare_configured(&mut g).unwrap();
    assert_eq!(
        inserted,
        [
            "x.activation_post_process",
            "conv1.activation_post_process",
            "conv2.activation_post_process",
            "fc1.activation_post_process",
            // fc2 stays float: fc3 needs its (identity) input observed to quantize it.
            "relu4.activation_post_process",
            "fc3.activation_post_process",
        ]
    );
    assert_eq!(
        g.node("fc3").unwrap().inputs(),
        ["relu4.activation_post_process"]
    );
}

#[test]
fn activation_kinds_and_float_ops() {
    // x -> fc (observed) -> sigmoid (fixed qparams: none) -> hs (observed) -> pool-free chain
    // -> softmax (float: none); the skip add is observed like a FloatFunctional.
    let mut rng = Rng::new(0);
    let mut b = FunctionalBuilder::new();
    let x = b.input("x");
    let fc = b.module("fc", Linear::new(4, 4, true, &mut rng), &[&x]);
    let s = b.module("sig", Sigmoid::new(), &[&fc]);
    let h = b.module("hs", Hardswish::new(), &[&s]);
    let r = b.module("relu", ReLU::new(), &[&h]);
    let a = b.functional("add", FunctionalOp::Add, &[&r, &fc]);
    let sm = b.module("softmax", Softmax::new(1), &[&a]);
    b.output(&sm);
    let mut g = b.build().unwrap();
    set_global_qconfig(&mut g, &static_qconfig());
    let inserted = prepare_configured(&mut g).unwrap();
    assert_eq!(
        inserted,
        [
            "x.activation_post_process",
            "fc.activation_post_process",
            "hs.activation_post_process",
            // FloatFunctional add: observed (QFunctional at convert); softmax stays float.
            "add.activation_post_process"
        ]
    );
    assert_eq!(
        g.node("add").unwrap().inputs(),
        ["relu", "fc.activation_post_process"]
    );
}

#[test]
fn errors_are_typed() {
    let mut g = fused_lenet(5);
    set_global_qconfig(&mut g, &static_qconfig());
    prepare_configured(&mut g).unwrap();
    assert!(matches!(
        prepare_configured(&mut g),
        Err(QflowError::AlreadyPrepared { node }) if node == "x.activation_post_process"
    ));
    // An observer spec torch rejects (symmetric + reduce_range + quint8).
    let mut bad_cfg = qnn::qtensor::observer::ObserverConfig::new(
        qnn::qtensor::QDType::QUInt8,
        qnn::qtensor::QScheme::PerTensorSymmetric,
    );
    bad_cfg.reduce_range = true;
    let bad = QConfig {
        activation: QuantSpec::Observer(ObserverSpec::MinMax(bad_cfg)),
        weight: static_qconfig().weight,
    };
    let mut g = fused_lenet(5);
    set_global_qconfig(&mut g, &bad);
    assert!(matches!(
        prepare_configured(&mut g),
        Err(QflowError::Node { node, .. }) if node == "x.activation_post_process"
    ));
}

#[test]
fn nothing_configured_inserts_nothing() {
    let mut g = fused_lenet(6);
    let inserted = prepare_configured(&mut g).unwrap();
    assert!(inserted.is_empty());
    let _ = MaxPool2d::new(2).unwrap();
}
