//! prepare_qat: module swaps and fake-quant placement on the fused LeNet5, training reduces the
//! loss, toggles, convert of the QAT graph to int8, typed errors.

mod lenet_flow_support;

use lenet_flow_support::*;
use qflow::QflowError;
use qflow::numeric_suite::sqnr;
use qflow::passes::{
    convert, disable_fake_quant, disable_observer, enable_fake_quant, enable_observer,
    freeze_bn_stats, fuse_modules_qat, prepare_qat, set_node_fake_quant,
};
use qflow::qconfig::{Backend, QConfigMapping, get_default_qat_qconfig};
use qnn::init::Rng;
use qnn::loss::CrossEntropyLoss;
use qnn::optim::{Optimizer, Sgd, SgdConfig};
use qnn::qtensor::Tensor;
use qnn::{Module, Value};

fn qat_lenet(seed: u64, version: u32) -> qflow::Graph {
    let mut g = float_lenet(seed, true);
    fuse_modules_qat(&mut g, &LENET_FUSE_GROUPS).unwrap();
    let mapping = QConfigMapping::new().set_global(Some(
        get_default_qat_qconfig(Backend::Fbgemm, version).unwrap(),
    ));
    prepare_qat(&mut g, &mapping).unwrap();
    g
}

#[test]
fn prepare_qat_swaps_layers_and_places_fake_quants() {
    let g = qat_lenet(1, 0);
    assert_eq!(
        kinds(&g),
        [
            "x.activation_post_process: FakeQuantize",
            "conv1: QatConvReLU2d",
            "conv1.activation_post_process: FakeQuantize",
            "relu1: Identity",
            "pool1: MaxPool2d",
            "conv2: QatConvReLU2d",
            "conv2.activation_post_process: FakeQuantize",
            "relu2: Identity",
            "pool2: MaxPool2d",
            "flatten: functional flatten",
            "fc1: QatLinearReLU",
            "fc1.activation_post_process: FakeQuantize",
            "relu3: Identity",
            "fc2: QatLinearReLU",
            "fc2.activation_post_process: FakeQuantize",
            "relu4: Identity",
            "fc3: QatLinear",
            "fc3.activation_post_process: FakeQuantize",
        ]
    );
    let g1 = qat_lenet(1, 1);
    assert_eq!(
        g1.node("fc3.activation_post_process")
            .unwrap()
            .op()
            .describe(),
        "FusedMovingAvgObsFakeQuantize"
    );
}

fn batch(seed: u64) -> (Tensor<f32>, Vec<usize>) {
    let mut rng = Rng::new(seed);
    let x = images(16, seed);
    let y = (0..16).map(|_| rng.below(10)).collect();
    (x, y)
}

fn loss_step(g: &mut qflow::Graph, x: &Tensor<f32>, y: &[usize], sgd: Option<&mut Sgd>) -> f32 {
    let logits = run_f32(g, x);
    let mut ce = CrossEntropyLoss::new();
    let loss = ce.forward(&logits, y).unwrap();
    if let Some(sgd) = sgd {
        g.zero_grad();
        g.backward_all(&[Value::F32(ce.backward().unwrap())])
            .unwrap();
        sgd.step(g).unwrap();
    }
    loss
}

#[test]
fn qat_training_reduces_the_loss_and_converts_to_int8() {
    let mut g = qat_lenet(2, 1);
    let (x, y) = batch(3);
    let mut sgd = Sgd::new(SgdConfig::new(0.3)).unwrap();
    let first = loss_step(&mut g, &x, &y, Some(&mut sgd));
    let mut last = first;
    for _ in 0..15 {
        last = loss_step(&mut g, &x, &y, Some(&mut sgd));
    }
    assert!(last < first - 0.05, "loss {first} -> {last}");

    // Observers off: the qparams stay as trained.
    assert_eq!(disable_observer(&mut g), 6 + 5);
    freeze_bn_stats(&mut g);
    g.eval();
    let fake_quant_out = run_f32(&mut g, &x);
    let expected = hand_built_chain(&g, &x);
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
    let int8_out = run_f32(&mut g, &x);
    assert_eq!(
        int8_out.data(),
        expected.data(),
        "convert must equal the hand-built chain"
    );
    // Not bit-equal to the fake-quant graph (int8 requantization rounds differently), but close;
    // the logits of this barely trained model are small, so the bound is loose.
    let db = sqnr(&fake_quant_out, &int8_out).unwrap();
    assert!(db > 10.0, "int8 vs fake-quant SQNR {db} dB");
}

/// The quantized modules built by hand from the trained QAT graph, as PyTorch's convert does:
/// `to_float()` + the weight fake-quant's qparams, output qparams from each activation
/// fake-quant's `calculate_qparams()`.
fn hand_built_chain(g: &qflow::Graph, x: &Tensor<f32>) -> Tensor<f32> {
    use qnn::qat;
    use qnn::qtensor::QParams;
    use qnn::quantized as q;
    let act = |name: &str| -> (f64, i64) {
        let m = g
            .node(&format!("{name}.activation_post_process"))
            .unwrap()
            .module()
            .unwrap();
        match qflow::passes::qat::as_fake_quant(m)
            .unwrap()
            .calculate_qparams()
            .unwrap()
        {
            QParams::PerTensor { scale, zero_point } => (scale, zero_point),
            other => panic!("{other:?}"),
        }
    };
    let (sx, zx) = act("x");
    let mut chain: Vec<Box<dyn Module>> = vec![Box::new(
        q::Quantize::new(sx, zx, qnn::qtensor::QDType::QUInt8).unwrap(),
    )];
    for (conv, pool) in [("conv1", "pool1"), ("conv2", "pool2")] {
        let (f, wq) = g
            .module_as::<qat::ConvReLU2d>(conv)
            .unwrap()
            .clone()
            .to_float_with_weight_qparams()
            .unwrap();
        let (s, z) = act(conv);
        chain.push(Box::new(q::ConvReLU2d::from_float(&f, &wq, s, z).unwrap()));
        let p = g.module_as::<qnn::float::MaxPool2d>(pool).unwrap();
        chain.push(Box::new(q::MaxPool2d::from_float(p).unwrap()));
    }
    chain.push(Box::new(q::Flatten::new(1, -1)));
    for fc in ["fc1", "fc2"] {
        let (f, wq) = g
            .module_as::<qat::LinearReLU>(fc)
            .unwrap()
            .clone()
            .to_float_with_weight_qparams()
            .unwrap();
        let (s, z) = act(fc);
        chain.push(Box::new(q::LinearReLU::from_float(&f, &wq, s, z).unwrap()));
    }
    let (f, wq) = g
        .module_as::<qat::Linear>("fc3")
        .unwrap()
        .clone()
        .to_float_with_weight_qparams()
        .unwrap();
    let (s, z) = act("fc3");
    chain.push(Box::new(q::Linear::from_float(&f, &wq, s, z).unwrap()));
    chain.push(Box::new(q::DeQuantize::new()));
    let mut v = Value::F32(x.clone());
    for m in &mut chain {
        v = m.forward(&v).unwrap();
    }
    v.into_f32("t").unwrap()
}

#[test]
fn toggles_switch_every_fake_quant() {
    let mut g = qat_lenet(4, 0);
    let (x, _) = batch(5);
    let y_fq = run_f32(&mut g, &x);
    // Fake-quant off everywhere: the QAT graph computes the float model.
    assert_eq!(disable_fake_quant(&mut g), 11);
    let y_off = run_f32(&mut g, &x);
    let mut float = float_lenet(4, true);
    assert_eq!(y_off.data(), run_f32(&mut float, &x).data());
    assert_ne!(y_fq.data(), y_off.data());
    assert_eq!(enable_fake_quant(&mut g), 11);
    assert_eq!(enable_observer(&mut g), 11);
    // Per node.
    assert_eq!(set_node_fake_quant(&mut g, "fc3", false).unwrap(), 1);
    let fc3 = g.module_as::<qnn::qat::Linear>("fc3").unwrap();
    assert!(!fc3.weight_fake_quant().fake_quant_enabled());
    assert!(matches!(
        set_node_fake_quant(&mut g, "nope", true),
        Err(QflowError::UnknownNode { .. })
    ));
}

#[test]
fn prepare_qat_errors_are_typed() {
    let mut g = float_lenet(6, false);
    let mapping = QConfigMapping::new()
        .set_global(Some(get_default_qat_qconfig(Backend::Fbgemm, 0).unwrap()));
    assert!(matches!(
        prepare_qat(&mut g, &mapping),
        Err(QflowError::Unsupported { .. })
    ));
    let mut g = float_lenet(6, true);
    let ptq = QConfigMapping::new().set_global(Some(static_qconfig()));
    assert!(matches!(
        prepare_qat(&mut g, &ptq),
        Err(QflowError::Unsupported { node, .. }) if node == "conv1"
    ));
}
