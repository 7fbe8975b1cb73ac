//! `println!("{graph}")` against PyTorch's `print(model)` (torch 2.15.0, fbgemm; data from
//! `tools/golden/gen_print.py`): a LeNet5 whose float weights come from PyTorch's state dict,
//! printed float, fused, prepared and calibrated on PyTorch's calibration batches, converted,
//! dynamically quantized (qint8 and fp16) and prepared for QAT. Each node's text must equal
//! the one-line form of PyTorch's module repr (`Type(extra_repr, child, …)`; a layer's output
//! observer is its own node and packed weights are not printed, as documented in the generator;
//! a QAT layer's `weight_fake_quant` and a fake-quant's `activation_post_process` are inlined). Numbers that depend on calibrated float values (observer ranges, scales)
//! are compared within a relative 1e-5: qstack's float convolutions sum in another order than
//! PyTorch's, so the last bits of a range can differ; everything else is compared exactly.

#[allow(dead_code)]
#[path = "../../qtensor/tests/golden_support/format.rs"]
mod format;

use std::collections::BTreeMap;

use qflow::passes::{DynamicDType, convert, fuse_modules, prepare, prepare_qat, quantize_dynamic};
use qflow::qconfig::{Backend, QConfigMapping, get_default_qat_qconfig, get_default_qconfig};
use qflow::{Graph, SequentialBuilder, load_torch_state_dict_file, node_repr};
use qnn::float::{Conv2d, Conv2dConfig, Flatten, Linear, MaxPool2d, ReLU};
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::{Module, ModuleKind, Value};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/print");

const FUSE_GROUPS: [&[&str]; 4] = [
    &["conv1", "relu1"],
    &["conv2", "relu2"],
    &["fc1", "relu3"],
    &["fc2", "relu4"],
];

/// PyTorch's LeNet5 as a qstack graph (same module paths; the graph input plays `quant`),
/// with PyTorch's weights.
fn lenet() -> Graph {
    let mut rng = Rng::new(0);
    let mut g = SequentialBuilder::new("x")
        .add(
            "conv1",
            Conv2d::new(Conv2dConfig::new(1, 6, 5), &mut rng).unwrap(),
        )
        .add("relu1", ReLU::new())
        .add("pool1", MaxPool2d::new(2).unwrap())
        .add(
            "conv2",
            Conv2d::new(Conv2dConfig::new(6, 16, 5), &mut rng).unwrap(),
        )
        .add("relu2", ReLU::new())
        .add("pool2", MaxPool2d::new(2).unwrap())
        .add("flatten", Flatten::new(1, -1))
        .add("fc1", Linear::new(400, 120, true, &mut rng))
        .add("relu3", ReLU::new())
        .add("fc2", Linear::new(120, 84, true, &mut rng))
        .add("relu4", ReLU::new())
        .add("fc3", Linear::new(84, 10, true, &mut rng))
        .build()
        .unwrap();
    let report =
        load_torch_state_dict_file(&mut g, format!("{DATA}/lenet5_print.safetensors"), true)
            .unwrap();
    assert_eq!(report.loaded.len(), 10);
    g.eval();
    g
}

struct Golden {
    /// `stage` → (PyTorch module path → one-line repr).
    stages: BTreeMap<String, BTreeMap<String, String>>,
    /// The calibration batches.
    calib: Vec<Tensor<f32>>,
}

fn golden() -> Golden {
    let text = std::fs::read_to_string(format!("{DATA}/lenet5_repr.golden")).unwrap();
    let file = format::parse(&text).unwrap();
    assert_eq!(file.cases.len(), file.declared_cases);
    let mut stages: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut calib = Vec::new();
    for case in &file.cases {
        if case.name == "calib" {
            let shape = case.shape("shape");
            let per = shape.iter().product::<usize>();
            for batch in case.f32s("x").chunks(per) {
                calib.push(Tensor::new(&shape, batch.to_vec()).unwrap());
            }
            continue;
        }
        let (stage, path) = case.name.split_once('.').unwrap();
        let line = String::from_utf8(case.u8s("repr").to_vec()).unwrap();
        stages
            .entry(stage.to_string())
            .or_default()
            .insert(path.to_string(), line);
    }
    assert_eq!(calib.len(), 2);
    Golden { stages, calib }
}

/// The text with every number replaced by `#`, and the numbers. A number starts with a digit
/// (or `-` and a digit) not preceded by a letter, digit or `_` (so `Conv2d` stays text).
fn split_numbers(s: &str) -> (String, Vec<f64>) {
    let chars: Vec<char> = s.chars().collect();
    let mut skeleton = String::new();
    let mut numbers = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let prev_word = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        let starts = chars[i].is_ascii_digit()
            || (chars[i] == '-' && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()));
        if starts && !prev_word {
            let mut j = i + 1;
            while j < chars.len()
                && (chars[j].is_ascii_digit()
                    || chars[j] == '.'
                    || chars[j] == 'e'
                    || (matches!(chars[j], '-' | '+') && chars[j - 1] == 'e'))
            {
                j += 1;
            }
            let text: String = chars[i..j].iter().collect();
            numbers.push(text.parse::<f64>().unwrap_or(f64::NAN));
            skeleton.push('#');
            i = j;
        } else {
            skeleton.push(chars[i]);
            i += 1;
        }
    }
    (skeleton, numbers)
}

/// Compares the graph's node lines with PyTorch's for `stage`; returns how many matched
/// exactly (the others matched within `rtol` on their numbers).
fn check_stage(g: &Graph, golden: &Golden, stage: &str, rtol: f64) -> usize {
    let want = &golden.stages[stage];
    let mut exact = 0;
    for (path, line) in want {
        // PyTorch observes the graph input in `quant`; qstack observes the input `x` itself.
        let node = path.replacen(
            "quant.activation_post_process",
            "x.activation_post_process",
            1,
        );
        let n = g.node(&node).unwrap_or_else(|| {
            panic!("{stage}: PyTorch has `{path}`, the graph has no `{node}`\n{g}")
        });
        let got = node_repr(n);
        if &got == line {
            exact += 1;
            continue;
        }
        let (gs, gn) = split_numbers(&got);
        let (ws, wn) = split_numbers(line);
        assert_eq!(gs, ws, "{stage}.{path}:\n  qstack  {got}\n  PyTorch {line}");
        for (a, b) in gn.iter().zip(&wn) {
            assert!(
                (a - b).abs() <= rtol * b.abs() || a == b,
                "{stage}.{path}: {a} vs {b}\n  qstack  {got}\n  PyTorch {line}"
            );
        }
    }
    // Every module node qstack prints has a PyTorch counterpart.
    for n in g.nodes() {
        let path = n.name().replacen(
            "x.activation_post_process",
            "quant.activation_post_process",
            1,
        );
        assert!(
            want.contains_key(&path),
            "{stage}: `{}` not in PyTorch's printout",
            n.name()
        );
    }
    exact
}

#[test]
fn float_and_fused_lenet_print_as_pytorch() {
    let golden = golden();
    let mut g = lenet();
    assert_eq!(check_stage(&g, &golden, "float", 0.0), 12);
    fuse_modules(&mut g, &FUSE_GROUPS).unwrap();
    assert_eq!(check_stage(&g, &golden, "fused", 0.0), 12);
    let text = g.to_string();
    assert!(
        text.contains(
            "\n  conv1: ConvReLU2d(Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1)), ReLU())\n"
        ),
        "{text}"
    );
}

#[test]
fn prepared_and_converted_lenet_print_as_pytorch() {
    let golden = golden();
    let mut g = lenet();
    fuse_modules(&mut g, &FUSE_GROUPS).unwrap();
    let mapping = QConfigMapping::new().set_global(Some(get_default_qconfig(Backend::Fbgemm)));
    prepare(&mut g, &mapping).unwrap();
    for x in &golden.calib {
        g.run(&[Value::F32(x.clone())]).unwrap();
    }
    let exact = check_stage(&g, &golden, "prepared", 1e-5);
    assert!(exact >= 13, "only {exact} exact lines");
    convert(&mut g).unwrap();
    let exact = check_stage(&g, &golden, "converted", 1e-5);
    assert!(exact >= 9, "only {exact} exact lines");
    let text = g.to_string();
    assert!(text.contains("  quant: Quantize(scale=tensor([0.0594]), zero_point=tensor([67]), dtype=torch.quint8)\n"), "{text}");
}

#[test]
fn dynamic_lenet_prints_as_pytorch() {
    let golden = golden();
    for (stage, dtype) in [
        ("dynamic", DynamicDType::QInt8),
        ("dynamic_fp16", DynamicDType::Float16),
    ] {
        let mut g = lenet();
        quantize_dynamic(&mut g, &[ModuleKind::Linear], dtype).unwrap();
        assert_eq!(check_stage(&g, &golden, stage, 0.0), 12, "{stage}");
    }
}

#[test]
fn qat_lenet_prints_as_pytorch() {
    let golden = golden();
    let mut g = lenet();
    g.train(true);
    qflow::passes::fuse_modules_qat(&mut g, &FUSE_GROUPS).unwrap();
    let qconfig = get_default_qat_qconfig(Backend::Fbgemm, 1).unwrap();
    prepare_qat(&mut g, &QConfigMapping::new().set_global(Some(qconfig))).unwrap();
    assert_eq!(
        check_stage(&g, &golden, "qat", 0.0),
        golden.stages["qat"].len()
    );
}

#[test]
fn functional_nodes_print_their_op_and_inputs() {
    let mut b = qflow::FunctionalBuilder::new();
    let x = b.input("x");
    let h = b.module("fc", Linear::new(4, 4, false, &mut Rng::new(1)), &[&x]);
    let y = b.functional("add", qflow::FunctionalOp::Add, &[&h, &x]);
    let flat = qflow::FunctionalOp::Flatten {
        start_dim: 1,
        end_dim: -1,
    };
    let z = b.functional("flat", flat, &[&y]);
    let s = b.functional("scaled", qflow::FunctionalOp::MulScalar(0.5), &[&z]);
    b.output(&s);
    let g = b.build().unwrap();
    assert_eq!(
        g.to_string(),
        "Graph(inputs=[x])\n  fc: Linear(in_features=4, out_features=4, bias=False)\n  \
         add: add(fc, x)\n  flat: flatten(add, start_dim=1, end_dim=-1)\n  \
         scaled: mul_scalar(flat, 0.5)\n  outputs: scaled"
    );
}

#[test]
fn number_splitting_keeps_class_names() {
    let (s, n) = split_numbers("Conv2d(1, 6, kernel_size=(5, 5), scale=1e-05, zero_point=-3)");
    assert_eq!(s, "Conv2d(#, #, kernel_size=(#, #), scale=#, zero_point=#)");
    assert_eq!(n, [1.0, 6.0, 5.0, 5.0, 1e-5, -3.0]);
}
