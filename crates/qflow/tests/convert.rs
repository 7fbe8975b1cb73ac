//! convert: the calibrated LeNet5 graph becomes an int8 graph between one Quantize and one
//! DeQuantize, bit-equal to a hand-built chain of the same quantized modules with the same
//! qparams, within 20 dB SQNR of the float model; QConfig None keeps a node float; typed errors.

mod lenet_flow_support;

use lenet_flow_support::*;
use qflow::numeric_suite::{compare_model_outputs, sqnr};
use qflow::passes::{convert, prepare_configured, set_global_qconfig};
use qflow::{Graph, QflowError};
use qnn::float::{Identity, MaxPool2d};
use qnn::init::Rng;
use qnn::qtensor::observer::ObserverSpec;
use qnn::qtensor::{QDType, QParams, Tensor};
use qnn::{Module, ModuleKind, Value, quantized};

fn calibrated_lenet(seed: u64) -> (Graph, Vec<Tensor<f32>>) {
    let mut g = fused_lenet(seed);
    set_global_qconfig(&mut g, &static_qconfig());
    prepare_configured(&mut g).unwrap();
    let batches: Vec<_> = (0..4).map(|i| images(4, 100 + i)).collect();
    for b in &batches {
        run_f32(&mut g, b);
    }
    (g, batches)
}

fn per_tensor(q: QParams) -> (f64, i64) {
    match q {
        QParams::PerTensor { scale, zero_point } => (scale, zero_point),
        other => panic!("expected per-tensor qparams, got {other:?}"),
    }
}

#[test]
fn lenet_converts_to_an_int8_chain() {
    let (mut g, _) = calibrated_lenet(11);
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
    assert_eq!(g.outputs(), ["dequant"]);
    assert!(!g.is_training());
    // Every value between Quantize and DeQuantize is quint8.
    let mut seen = Vec::new();
    g.run_with(&[Value::F32(images(2, 5))], &mut |n, v| {
        seen.push((n.name().to_string(), v.kind_name()));
    })
    .unwrap();
    for (name, kind) in &seen {
        let expected = if name == "dequant" {
            "f32"
        } else {
            "quantized"
        };
        assert_eq!(kind, &expected, "node {name}");
    }
}

#[test]
fn converted_lenet_equals_a_hand_built_chain_and_tracks_float() {
    let seed = 12;
    let (mut g, batches) = calibrated_lenet(seed);
    convert(&mut g).unwrap();

    // The oracle: the same observers fed by hand from the float model's node outputs.
    let mut float = fused_lenet(seed);
    let act = ObserverSpec::default_observer();
    let mut observers: Vec<_> = (0..6).map(|_| act.build().unwrap()).collect();
    let watched = ["conv1", "conv2", "fc1", "fc2", "fc3"];
    for b in &batches {
        observers[0].observe(b).unwrap();
        float
            .run_with(&[Value::F32(b.clone())], &mut |n, v| {
                if let Some(i) = watched.iter().position(|w| *w == n.name()) {
                    observers[i + 1].observe(v.as_f32("t").unwrap()).unwrap();
                }
            })
            .unwrap();
    }
    let q: Vec<(f64, i64)> = observers
        .iter()
        .map(|o| per_tensor(o.calculate_qparams().unwrap()))
        .collect();
    let wq = |w: &Tensor<f32>| {
        let mut o = ObserverSpec::default_per_channel_weight_observer()
            .build()
            .unwrap();
        o.observe(w).unwrap();
        o.calculate_qparams().unwrap()
    };
    let l = layers(seed);
    let mut chain: Vec<Box<dyn Module>> = vec![
        Box::new(quantized::Quantize::new(q[0].0, q[0].1, QDType::QUInt8).unwrap()),
        Box::new(
            quantized::ConvReLU2d::from_float(&l.conv1, &wq(&l.conv1.weight.value), q[1].0, q[1].1)
                .unwrap(),
        ),
        Box::new(quantized::MaxPool2d::from_float(&MaxPool2d::new(2).unwrap()).unwrap()),
        Box::new(
            quantized::ConvReLU2d::from_float(&l.conv2, &wq(&l.conv2.weight.value), q[2].0, q[2].1)
                .unwrap(),
        ),
        Box::new(quantized::MaxPool2d::from_float(&MaxPool2d::new(2).unwrap()).unwrap()),
        Box::new(quantized::Flatten::new(1, -1)),
        Box::new(
            quantized::LinearReLU::from_float(&l.fc1, &wq(&l.fc1.weight.value), q[3].0, q[3].1)
                .unwrap(),
        ),
        Box::new(
            quantized::LinearReLU::from_float(&l.fc2, &wq(&l.fc2.weight.value), q[4].0, q[4].1)
                .unwrap(),
        ),
        Box::new(
            quantized::Linear::from_float(&l.fc3, &wq(&l.fc3.weight.value), q[5].0, q[5].1)
                .unwrap(),
        ),
        Box::new(quantized::DeQuantize::new()),
    ];
    let x = images(8, 999);
    let mut v = Value::F32(x.clone());
    for m in &mut chain {
        v = m.forward(&v).unwrap();
    }
    let expected = v.into_f32("t").unwrap();
    let got = run_f32(&mut g, &x);
    assert_eq!(got.shape(), &[8, 10]);
    assert_eq!(
        got.data(),
        expected.data(),
        "graph convert must equal the hand-built chain"
    );
    // The converted qparams are the observers'.
    let quant = g.module_as::<quantized::Quantize>("quant").unwrap();
    assert_eq!((quant.scale(), quant.zero_point()), q[0]);
    let fc3 = g.module_as::<quantized::Linear>("fc3").unwrap();
    assert_eq!((fc3.scale(), fc3.zero_point()), q[5]);

    let y_float = run_f32(&mut float, &x);
    let db = sqnr(&y_float, &got).unwrap();
    assert!(db > 20.0, "SQNR {db} dB");

    // Per-node comparison: every matched node is accurate, first layers best.
    let cmp = compare_model_outputs(&mut float, &mut g, &[Value::F32(x)]).unwrap();
    let names: Vec<&str> = cmp.iter().map(|c| c.node.as_str()).collect();
    assert_eq!(names, LENET_NODES);
    for c in &cmp {
        assert!(c.sqnr_db > 20.0, "{c:?}");
        assert!(c.max_abs_error.is_finite());
    }

    // Weights: int8 per-channel weights are within half a step of the float weights.
    let wcmp = qflow::numeric_suite::compare_weights(&float, &g).unwrap();
    let names: Vec<&str> = wcmp.iter().map(|c| c.node.as_str()).collect();
    assert_eq!(names, ["conv1", "conv2", "fc1", "fc2", "fc3"]);
    for (c, w) in wcmp.iter().zip([
        &l.conv1.weight.value,
        &l.conv2.weight.value,
        &l.fc1.weight.value,
        &l.fc2.weight.value,
        &l.fc3.weight.value,
    ]) {
        let max = w.data().iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(c.max_abs_error <= max / 127.0 * 0.5 + 1e-6, "{c:?}");
        assert!(c.sqnr_db > 35.0, "{c:?}");
    }
}

#[test]
fn qconfig_none_keeps_a_node_float_between_dequantize_and_quantize() {
    let seed = 13;
    let mut g = fused_lenet(seed);
    set_global_qconfig(&mut g, &static_qconfig());
    g.node_mut("fc2").unwrap().set_qconfig(None);
    prepare_configured(&mut g).unwrap();
    for i in 0..3 {
        run_f32(&mut g, &images(4, 200 + i));
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
            "relu3.dequant: DeQuantize",
            "fc2: LinearReLU",
            "relu4: Identity",
            "relu4.quant: Quantize",
            "fc3: QuantizedLinear",
            "dequant: DeQuantize",
        ]
    );
    let mut float = fused_lenet(seed);
    let x = images(8, 3);
    let db = sqnr(&run_f32(&mut float, &x), &run_f32(&mut g, &x)).unwrap();
    assert!(db > 20.0, "SQNR {db} dB");
}

#[test]
fn convert_errors_are_typed() {
    // Before prepare.
    let mut g = fused_lenet(14);
    assert!(matches!(
        convert(&mut g),
        Err(QflowError::NotPrepared {
            pass: "convert",
            ..
        })
    ));
    // Prepared but never calibrated.
    set_global_qconfig(&mut g, &static_qconfig());
    prepare_configured(&mut g).unwrap();
    assert!(matches!(
        convert(&mut g),
        Err(QflowError::NotCalibrated { node }) if node == "x.activation_post_process"
    ));
}

#[test]
fn two_inputs_and_a_float_output_branch() {
    // x -> fc -> (out0 quantized -> dequant) ; y -> ident -> out1 stays float.
    let mut rng = Rng::new(1);
    let mut b = qflow::FunctionalBuilder::new();
    let x = b.input("x");
    let y = b.input("y");
    let fc = b.module("fc", qnn::float::Linear::new(3, 2, true, &mut rng), &[&x]);
    let id = b.module("id", Identity::new(), &[&y]);
    b.output(&fc);
    b.output(&id);
    let mut g = b.build().unwrap();
    set_global_qconfig(&mut g, &static_qconfig());
    prepare_configured(&mut g).unwrap();
    let xv = Value::F32(Tensor::from_fn(&[2, 3], |i| i as f32 / 6.0 - 0.5));
    let yv = Value::F32(Tensor::from_fn(&[2, 3], |i| i as f32));
    g.run(&[xv.clone(), yv.clone()]).unwrap();
    convert(&mut g).unwrap();
    assert_eq!(
        kinds(&g),
        [
            "id: Identity",
            "x.quant: Quantize",
            "fc: QuantizedLinear",
            "fc.dequant: DeQuantize"
        ]
    );
    assert_eq!(g.outputs(), ["fc.dequant", "id"]);
    let out = g.run(&[xv, yv.clone()]).unwrap();
    assert_eq!(
        out[1].as_f32("t").unwrap().data(),
        yv.as_f32("t").unwrap().data()
    );
    assert_eq!(out[0].kind_name(), "f32");
    let _ = ModuleKind::Quantize;
}

#[test]
fn layer_norm_converts_with_its_observer() {
    let build = || {
        let mut rng = Rng::new(31);
        let mut g = qflow::SequentialBuilder::new("x")
            .add("fc", qnn::float::Linear::new(6, 8, true, &mut rng))
            .add("ln", qnn::float::LayerNorm::new(&[8], 1e-5, true))
            .build()
            .unwrap();
        g.eval();
        g
    };
    let mut g = build();
    set_global_qconfig(&mut g, &static_qconfig());
    let inserted = prepare_configured(&mut g).unwrap();
    assert_eq!(
        inserted,
        [
            "x.activation_post_process",
            "fc.activation_post_process",
            "ln.activation_post_process"
        ]
    );
    let data = |seed| {
        let mut r = Rng::new(seed);
        Tensor::from_fn(&[8, 6], |_| r.uniform(-1.0, 1.0))
    };
    for s in 0..3 {
        run_f32(&mut g, &data(s));
    }
    convert(&mut g).unwrap();
    assert_eq!(
        kinds(&g),
        [
            "quant: Quantize",
            "fc: QuantizedLinear",
            "ln: QuantizedLayerNorm",
            "dequant: DeQuantize"
        ]
    );
    let x = data(7);
    let db = sqnr(&run_f32(&mut build(), &x), &run_f32(&mut g, &x)).unwrap();
    assert!(db > 20.0, "SQNR {db} dB");
}
