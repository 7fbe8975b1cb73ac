//! Whole-model files for every graph the passes produce: a prepared graph saved halfway
//! through calibration resumes it exactly (min/max, per-channel and histogram observers), and
//! a converted int8 graph loads with its weights repacked and gives bit-identical outputs.

mod lenet_flow_support;

use lenet_flow_support::*;
use qflow::io::{describe_graph, graph_from_bytes, graph_to_bytes};
use qflow::passes::{ObserverNode, convert, prepare_configured, set_global_qconfig};
use qflow::qconfig::{Backend, QConfig, get_default_qconfig};
use qflow::{Graph, QflowError};
use qnn::qtensor::{QDType, Tensor};

fn reload(g: &Graph) -> Graph {
    graph_from_bytes(&graph_to_bytes(g).unwrap()).unwrap()
}

fn prepared(qconfig: &QConfig) -> Graph {
    let mut g = fused_lenet(21);
    set_global_qconfig(&mut g, qconfig);
    prepare_configured(&mut g).unwrap();
    g
}

fn batches() -> Vec<Tensor<f32>> {
    (0..4).map(|i| images(3, 300 + i)).collect()
}

/// The observer statistics of every observer node, as their `Debug` text (exact floats).
fn observer_states(g: &Graph) -> Vec<String> {
    g.nodes()
        .filter_map(|n| n.module_as::<ObserverNode>())
        .map(|o| {
            format!(
                "{:?} {} {}",
                o.observer(),
                o.observed_batches(),
                o.is_enabled()
            )
        })
        .collect()
}

fn resume_matches_uninterrupted(qconfig: QConfig) {
    let data = batches();
    let mut straight = prepared(&qconfig);
    for b in &data {
        run_f32(&mut straight, b);
    }
    let mut half = prepared(&qconfig);
    for b in &data[..2] {
        run_f32(&mut half, b);
    }
    let mut resumed = reload(&half);
    assert_eq!(observer_states(&resumed), observer_states(&half));
    assert_eq!(
        describe_graph(&resumed).unwrap(),
        describe_graph(&half).unwrap()
    );
    for b in &data[2..] {
        run_f32(&mut resumed, b);
    }
    assert_eq!(observer_states(&resumed), observer_states(&straight));
    convert(&mut straight).unwrap();
    convert(&mut resumed).unwrap();
    assert_eq!(kinds(&resumed), kinds(&straight));
    assert_eq!(
        qnn::state_dict::state_dict(&resumed),
        qnn::state_dict::state_dict(&straight)
    );
    let x = images(5, 999);
    assert_eq!(run_f32(&mut resumed, &x), run_f32(&mut straight, &x));
}

#[test]
fn min_max_and_per_channel_calibration_resumes_exactly() {
    resume_matches_uninterrupted(static_qconfig());
}

#[test]
fn histogram_calibration_resumes_exactly() {
    // fbgemm's default: histogram activations, per-channel min/max weights.
    resume_matches_uninterrupted(get_default_qconfig(Backend::Fbgemm));
}

#[test]
fn uncalibrated_observers_stay_uncalibrated() {
    let g = prepared(&static_qconfig());
    let mut back = reload(&g);
    assert_eq!(observer_states(&back), observer_states(&g));
    assert!(matches!(
        convert(&mut back),
        Err(QflowError::NotCalibrated { .. })
    ));
}

#[test]
fn converted_int8_graph_round_trips_bit_for_bit() {
    let mut g = prepared(&static_qconfig());
    for b in &batches() {
        run_f32(&mut g, b);
    }
    convert(&mut g).unwrap();
    let bytes = graph_to_bytes(&g).unwrap();
    let mut back = graph_from_bytes(&bytes).unwrap();
    assert_eq!(kinds(&back), kinds(&g));
    assert_eq!(
        qnn::state_dict::state_dict(&back),
        qnn::state_dict::state_dict(&g)
    );
    assert_eq!(format!("{back}"), format!("{g}"));
    for seed in 0..3 {
        let x = images(4, 500 + seed);
        assert_eq!(run_f32(&mut back, &x), run_f32(&mut g, &x));
    }
    // The file is small: int8 weights, not f32.
    let float_bytes = graph_to_bytes(&fused_lenet(21)).unwrap().len();
    assert!(
        bytes.len() * 3 < float_bytes,
        "{} vs {float_bytes}",
        bytes.len()
    );
}

#[test]
fn quantized_module_family_round_trips() {
    use qflow::FunctionalBuilder;
    use qnn::quantized as q;
    use qnn::{Module, Value};
    let mut rng = qnn::init::Rng::new(5);
    let w = |shape: &[usize], rng: &mut qnn::init::Rng| {
        Tensor::from_fn(shape, |_| rng.uniform(-0.5, 0.5))
    };
    let per_channel = |n: usize| qnn::qtensor::QParams::PerChannel {
        scales: (0..n).map(|i| 0.004 + 0.001 * i as f64).collect(),
        zero_points: vec![0; n],
        axis: 0,
    };
    let per_tensor = qnn::qtensor::QParams::PerTensor {
        scale: 0.005,
        zero_point: 0,
    };
    let mut b = FunctionalBuilder::new();
    let x = b.input("x");
    let qx = b.module(
        "quant",
        q::Quantize::new(0.02, 128, QDType::QUInt8).unwrap(),
        &[&x],
    );
    let c1 = b.module(
        "conv1d",
        q::Conv1d::from_weights(
            &w(&[4, 3, 3], &mut rng),
            Some(&w(&[4], &mut rng)),
            q::ConvOptions {
                stride: [1],
                padding: [1],
                dilation: [1],
                groups: 1,
            },
            &per_channel(4),
            0.03,
            120,
        )
        .unwrap(),
        &[&qx],
    );
    let r = b.module("relu", q::ReLU::new(), &[&c1]);
    let lk = b.module("leaky", q::LeakyReLU::new(0.03, 100, 0.2).unwrap(), &[&r]);
    let el = b.module("elu", q::ELU::new(0.03, 90, 0.7).unwrap(), &[&lk]);
    let hs = b.module("hswish", q::Hardswish::new(0.02, 60).unwrap(), &[&el]);
    let add = b.module(
        "add",
        q::QFunctional::new(q::FunctionalOp::AddScalar(0.25), 0.03, 70).unwrap(),
        &[&hs],
    );
    let sg = b.module("sigmoid", q::Sigmoid::new(), &[&add]);
    let fl = b.module("flatten", q::Flatten::new(1, -1), &[&sg]);
    let dr = b.module("drop", q::Dropout::new(0.1), &[&fl]);
    let fc = b.module(
        "fc",
        q::LinearReLU::from_weights(&w(&[5, 32], &mut rng), None, &per_tensor, 0.05, 0).unwrap(),
        &[&dr],
    );
    let sm = b.module(
        "softmax",
        q::Softmax::new(1, 1.0 / 256.0, 0).unwrap(),
        &[&fc],
    );
    let cat = b.module(
        "cat",
        q::QFunctional::new(q::FunctionalOp::Cat { dim: 1 }, 0.05, 0).unwrap(),
        &[&sm, &fc],
    );
    let out = b.module("dequant", q::DeQuantize::new(), &[&cat]);
    b.output(&out);
    let mut g = b.build().unwrap();
    g.eval();
    let mut back = reload(&g);
    assert_eq!(describe_graph(&back).unwrap(), describe_graph(&g).unwrap());
    let input = Value::F32(Tensor::from_fn(&[2, 3, 8], |i| {
        ((i * 7) % 23) as f32 / 9.0 - 1.0
    }));
    assert_eq!(
        back.run(std::slice::from_ref(&input)).unwrap(),
        g.run(&[input]).unwrap()
    );
}
