//! quantize_dynamic: swapped kinds, outputs bit-equal to the dynamic modules called directly,
//! qint8 per-tensor / per-channel and f16 weights, LSTM, QConfig None.

mod lenet_flow_support;

use lenet_flow_support::*;
use qflow::passes::{DynamicDType, quantize_dynamic, quantize_dynamic_configured};
use qflow::{Graph, SequentialBuilder};
use qnn::float::{Linear, Lstm, ReLU, RecurrentConfig};
use qnn::fused::LinearReLU;
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::qtensor::observer::ObserverSpec;
use qnn::{Module, ModuleKind, Value, dynamic};

fn mlp(seed: u64) -> (Graph, Linear, Linear) {
    let mut rng = Rng::new(seed);
    let fc1 = Linear::new(16, 32, true, &mut rng);
    let fc2 = Linear::new(32, 5, true, &mut rng);
    let g = SequentialBuilder::new("x")
        .add("fc1", fc1.clone())
        .add("relu", ReLU::new())
        .add("fc2", fc2.clone())
        .build()
        .unwrap();
    (g, fc1, fc2)
}

fn input(seed: u64) -> Tensor<f32> {
    let mut rng = Rng::new(seed);
    Tensor::from_fn(&[6, 16], |_| rng.uniform(-2.0, 2.0))
}

fn weight_qparams(spec: &ObserverSpec, w: &Tensor<f32>) -> qnn::qtensor::QParams {
    let mut o = spec.build().unwrap();
    o.observe(w).unwrap();
    o.calculate_qparams().unwrap()
}

fn check_mlp(dtype: DynamicDType, spec: Option<ObserverSpec>) {
    let (mut g, fc1, fc2) = mlp(3);
    let swapped = quantize_dynamic(&mut g, &[], dtype).unwrap();
    assert_eq!(swapped, ["fc1", "fc2"]);
    assert_eq!(
        kinds(&g),
        ["fc1: DynamicLinear", "relu: ReLU", "fc2: DynamicLinear"]
    );
    assert!(!g.is_training());
    let (mut d1, mut d2) = match &spec {
        Some(s) => (
            dynamic::Linear::from_float(&fc1, &weight_qparams(s, &fc1.weight.value)).unwrap(),
            dynamic::Linear::from_float(&fc2, &weight_qparams(s, &fc2.weight.value)).unwrap(),
        ),
        None => (
            dynamic::Linear::from_float_fp16(&fc1).unwrap(),
            dynamic::Linear::from_float_fp16(&fc2).unwrap(),
        ),
    };
    let x = input(4);
    let h = d1.apply(&x).unwrap();
    let h = ReLU::new().apply(&h);
    let expected = d2.apply(&h).unwrap();
    let got = run_f32(&mut g, &x);
    assert_eq!(got.data(), expected.data());
}

#[test]
fn qint8_per_tensor_is_bit_equal_to_the_modules() {
    check_mlp(
        DynamicDType::QInt8,
        Some(ObserverSpec::default_weight_observer()),
    );
}

#[test]
fn qint8_per_channel_is_bit_equal_to_the_modules() {
    check_mlp(
        DynamicDType::QInt8PerChannel,
        Some(ObserverSpec::default_per_channel_weight_observer()),
    );
}

#[test]
fn float16_is_bit_equal_to_the_modules() {
    check_mlp(DynamicDType::Float16, None);
}

#[test]
fn kind_set_selects_nodes_and_fused_linear_relu() {
    let mut rng = Rng::new(5);
    let fc1 = Linear::new(16, 8, true, &mut rng);
    let mut fc2 = Linear::new(8, 4, true, &mut rng);
    fc2.eval();
    let mut g = SequentialBuilder::new("x")
        .add("fc1", LinearReLU::new(fc1.clone(), ReLU::new()))
        .add("fc2", fc2.clone())
        .build()
        .unwrap();
    // The default set does not include the fused kind (as in PyTorch).
    let mut g2 = SequentialBuilder::new("x")
        .add("fc1", LinearReLU::new(fc1.clone(), ReLU::new()))
        .build()
        .unwrap();
    assert!(
        quantize_dynamic(&mut g2, &[], DynamicDType::QInt8)
            .unwrap()
            .is_empty()
    );
    let swapped = quantize_dynamic(&mut g, &[ModuleKind::LinearReLU], DynamicDType::QInt8).unwrap();
    assert_eq!(swapped, ["fc1"]);
    assert_eq!(kinds(&g), ["fc1: DynamicLinearReLU", "fc2: Linear"]);
    let mut d = dynamic::LinearReLU::from_float(
        &fc1,
        &weight_qparams(&ObserverSpec::default_weight_observer(), &fc1.weight.value),
    )
    .unwrap();
    let x = input(6);
    let expected = fc2.apply(&d.apply(&x).unwrap()).unwrap();
    let got = run_f32(&mut g, &x);
    assert_eq!(got.data(), expected.data());
}

#[test]
fn lstm_becomes_dynamic_and_matches_the_module() {
    let mut rng = Rng::new(8);
    let lstm = Lstm::new(RecurrentConfig::new(4, 6), &mut rng).unwrap();
    let mut g = SequentialBuilder::new("x")
        .add("rnn", lstm.clone())
        .build()
        .unwrap();
    let swapped = quantize_dynamic(&mut g, &[], DynamicDType::QInt8).unwrap();
    assert_eq!(swapped, ["rnn"]);
    assert_eq!(kinds(&g), ["rnn: DynamicLstm"]);
    let spec = ObserverSpec::default_weight_observer();
    let mut d = dynamic::Lstm::from_float(&lstm, &mut |_, w: &Tensor<f32>| {
        let mut o = spec.build()?;
        o.observe(w)?;
        o.calculate_qparams()
    })
    .unwrap();
    let mut r = Rng::new(9);
    let x = Value::F32(Tensor::from_fn(&[3, 2, 4], |_| r.uniform(-1.0, 1.0)));
    let got = g.run(std::slice::from_ref(&x)).unwrap().pop().unwrap();
    let expected = d.forward(&x).unwrap();
    let (got, expected) = (flat(&got), flat(&expected));
    assert!(!got.is_empty());
    assert_eq!(got, expected);
}

#[test]
fn qconfig_none_leaves_a_node_float() {
    let (mut g, _, _) = mlp(7);
    let qc = DynamicDType::QInt8.qconfig();
    g.node_mut("fc1").unwrap().set_qconfig(Some(qc));
    let swapped = quantize_dynamic_configured(&mut g).unwrap();
    assert_eq!(swapped, ["fc1"]);
    assert_eq!(
        kinds(&g),
        ["fc1: DynamicLinear", "relu: ReLU", "fc2: Linear"]
    );
}

/// Every f32 in a value (tuples in order).
fn flat(v: &Value) -> Vec<f32> {
    match v {
        Value::F32(t) => t.data().to_vec(),
        Value::Tuple(items) => items.iter().flat_map(flat).collect(),
        other => panic!("unexpected {}", other.kind_name()),
    }
}

#[test]
fn mapping_with_a_none_entry() {
    use qflow::qconfig::{QConfigMapping, per_channel_dynamic_qconfig};
    let (mut g, fc1, _) = mlp(11);
    let mapping = QConfigMapping::new()
        .set_global(Some(per_channel_dynamic_qconfig()))
        .set_name("fc2", None);
    let swapped = qflow::passes::quantize_dynamic_with(&mut g, &mapping).unwrap();
    assert_eq!(swapped, ["fc1"]);
    assert_eq!(
        kinds(&g),
        ["fc1: DynamicLinear", "relu: ReLU", "fc2: Linear"]
    );
    let d = g.module_as::<dynamic::Linear>("fc1").unwrap();
    let expected = weight_qparams(
        &ObserverSpec::default_per_channel_weight_observer(),
        &fc1.weight.value,
    );
    assert_eq!(d.weight().unwrap().qparams(), &expected);
}

#[test]
fn embedding_gets_float_qparams_weights() {
    use qnn::float::Embedding;
    let mut rng = Rng::new(12);
    let emb = Embedding::new(10, 4, None, &mut rng).unwrap();
    let mut g = SequentialBuilder::new("ids")
        .add("emb", emb.clone())
        .build()
        .unwrap();
    let swapped = quantize_dynamic(&mut g, &[], DynamicDType::FloatQParamsWeightOnly).unwrap();
    assert_eq!(swapped, ["emb"]);
    assert_eq!(kinds(&g), ["emb: QuantizedEmbedding"]);
    let spec = ObserverSpec::default_float_qparams_observer();
    let mut direct = qnn::quantized::Embedding::from_float(
        &emb,
        &weight_qparams(&spec, &emb.weight.value),
        qnn::qtensor::QDType::QUInt8,
    )
    .unwrap();
    let ids = Value::I32(Tensor::new(&[2, 3], vec![0, 3, 9, 1, 1, 5]).unwrap());
    let got = g.run(std::slice::from_ref(&ids)).unwrap().pop().unwrap();
    let expected = direct.forward(&ids).unwrap();
    assert_eq!(flat(&got), flat(&expected));
    assert_eq!(flat(&got).len(), 24);
}
