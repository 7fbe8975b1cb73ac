//! Loading a PyTorch state dict (`safetensors.torch.save_file(model.state_dict(), …)`) into a
//! graph by PyTorch names: a model with a `features` Sequential, a residual block `layer1.0`
//! and BatchNorms with `num_batches_tracked` (data from `tools/golden/gen_print.py`), whose
//! outputs after loading equal PyTorch's within float tolerance; strict / non-strict key
//! reports, DataParallel prefixes, and typed errors naming the node, key and both shapes.

#[allow(dead_code)]
#[path = "../../qtensor/tests/golden_support/format.rs"]
mod format;

use qflow::{
    FunctionalBuilder, FunctionalOp, Graph, QflowError, load_torch_state_dict,
    load_torch_state_dict_file,
};
use qnn::float::{
    AdaptiveAvgPool2d, BatchNorm2d, BatchNormConfig, Conv2d, Conv2dConfig, Linear, ReLU,
};
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::state_dict::{StateEntry, from_safetensors, to_safetensors};
use qnn::{Module, QnnError, Value};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/print");

/// PyTorch's `Nested` model as a graph with PyTorch's module paths; `head` names the last
/// Linear (PyTorch: `fc`) and `fc_out` its output features.
fn nested(head: &str, fc_out: usize) -> Graph {
    let mut rng = Rng::new(5);
    let mut b = FunctionalBuilder::new();
    let x = b.input("x");
    let conv = Conv2d::new(Conv2dConfig::new(2, 4, 3).stride(2), &mut rng).unwrap();
    let h = b.module("features.0", conv, &[&x]);
    let h = b.module(
        "features.1",
        BatchNorm2d::new(BatchNormConfig::new(4)),
        &[&h],
    );
    let skip = b.module("features.2", ReLU::new(), &[&h]);
    let conv3 = |rng: &mut Rng| {
        Conv2d::new(Conv2dConfig::new(4, 4, 3).padding(1).bias(false), rng).unwrap()
    };
    let h = b.module("layer1.0.conv1", conv3(&mut rng), &[&skip]);
    let h = b.module(
        "layer1.0.bn1",
        BatchNorm2d::new(BatchNormConfig::new(4)),
        &[&h],
    );
    let h = b.module("layer1.0.relu", ReLU::new(), &[&h]);
    let h = b.module("layer1.0.conv2", conv3(&mut rng), &[&h]);
    let h = b.module(
        "layer1.0.bn2",
        BatchNorm2d::new(BatchNormConfig::new(4)),
        &[&h],
    );
    let h = b.functional("layer1.0.add", FunctionalOp::Add, &[&h, &skip]);
    let h = b.module("layer1.0.relu_out", ReLU::new(), &[&h]);
    let h = b.module("pool", AdaptiveAvgPool2d::new([1, 1]).unwrap(), &[&h]);
    let flat = FunctionalOp::Flatten {
        start_dim: 1,
        end_dim: -1,
    };
    let h = b.functional("flatten", flat, &[&h]);
    let y = b.module(head, Linear::new(4, fc_out, true, &mut rng), &[&h]);
    b.output(&y);
    let mut g = b.build().unwrap();
    g.eval();
    g
}

fn torch_file() -> Vec<u8> {
    std::fs::read(format!("{DATA}/nested_torch.safetensors")).unwrap()
}

#[test]
fn nested_pytorch_names_load_and_reproduce_pytorch_outputs() {
    let text = std::fs::read_to_string(format!("{DATA}/nested_load.golden")).unwrap();
    let file = format::parse(&text).unwrap();
    assert_eq!(file.cases.len(), file.declared_cases);
    let case = &file.cases[0];
    let x = Tensor::new(&case.shape("shape"), case.f32s("x").to_vec()).unwrap();

    let mut g = nested("fc", 3);
    let report =
        load_torch_state_dict_file(&mut g, format!("{DATA}/nested_torch.safetensors"), true)
            .unwrap();
    assert_eq!(report.loaded.len(), 21, "{report:?}");
    assert!(
        report
            .loaded
            .contains(&"layer1.0.bn2.num_batches_tracked".to_string())
    );
    assert!(report.missing_keys.is_empty() && report.unexpected_keys.is_empty());
    // Three training steps in PyTorch: every BatchNorm counted three batches.
    for bn in ["features.1", "layer1.0.bn1", "layer1.0.bn2"] {
        let m = g.module_as::<BatchNorm2d>(bn).unwrap();
        assert_eq!(m.num_batches_tracked(), Some(3), "{bn}");
        assert!(
            m.running_var().unwrap().data().iter().any(|&v| v != 1.0),
            "{bn}"
        );
    }

    let y = g.run(&[Value::F32(x)]).unwrap();
    let y = y[0].as_f32("y").unwrap();
    assert_eq!(y.shape(), &case.shape("y_shape")[..]);
    for (i, (a, b)) in y.data().iter().zip(case.f32s("y")).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 + 1e-5 * b.abs(),
            "y[{i}] = {a}, torch {b}"
        );
    }
}

#[test]
fn wrong_shape_names_node_key_and_both_shapes() {
    let mut g = nested("fc", 5);
    let err = load_torch_state_dict(&mut g, &torch_file(), true).unwrap_err();
    match &err {
        QflowError::TorchStateDict {
            node,
            source: QnnError::KeyShapeMismatch { key, expected, got },
        } => {
            assert_eq!(node, "fc");
            assert!(key == "fc.weight" || key == "fc.bias", "{key}");
            if key == "fc.weight" {
                assert_eq!(
                    (expected.as_slice(), got.as_slice()),
                    (&[5, 4][..], &[3, 4][..])
                );
            }
        }
        other => panic!("unexpected error {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("`fc`") && msg.contains("fc."), "{msg}");
    // Shape errors stay errors without `strict` (as in PyTorch).
    let mut g = nested("fc", 5);
    assert!(load_torch_state_dict(&mut g, &torch_file(), false).is_err());
}

#[test]
fn strict_and_non_strict_key_sets() {
    let mut g = nested("head", 3);
    let err = load_torch_state_dict(&mut g, &torch_file(), true).unwrap_err();
    assert!(
        matches!(
            &err,
            QflowError::TorchStateDict { node, source: QnnError::MissingKey { key, expected } }
                if node == "head" && key == "head.bias" && expected == &[3]
        ),
        "{err:?}"
    );

    let mut g = nested("head", 3);
    let before = g.module_as::<Linear>("head").unwrap().weight.value.clone();
    let report = load_torch_state_dict(&mut g, &torch_file(), false).unwrap();
    assert_eq!(report.missing_keys, ["head.bias", "head.weight"]);
    assert_eq!(report.unexpected_keys, ["fc.bias", "fc.weight"]);
    assert_eq!(report.loaded.len(), 19);
    assert_eq!(g.module_as::<Linear>("head").unwrap().weight.value, before);
    assert_eq!(
        g.module_as::<BatchNorm2d>("layer1.0.bn1")
            .unwrap()
            .num_batches_tracked(),
        Some(3)
    );

    // A strict load of a graph with every key but an extra one in the file.
    let mut dict = from_safetensors(&torch_file()).unwrap();
    dict.insert("extra.weight".into(), StateEntry::I64(1));
    let bytes = to_safetensors(&dict).unwrap();
    let err = load_torch_state_dict(&mut nested("fc", 3), &bytes, true).unwrap_err();
    assert!(
        matches!(
            &err,
            QflowError::TorchStateDict { node, source: QnnError::UnexpectedKey { key, .. } }
                if node == "?" && key == "extra.weight"
        ),
        "{err:?}"
    );
}

#[test]
fn data_parallel_prefix_and_dtype_errors() {
    let dict = from_safetensors(&torch_file()).unwrap();
    let prefixed: std::collections::BTreeMap<String, StateEntry> = dict
        .iter()
        .map(|(k, v)| (format!("module.{k}"), v.clone()))
        .collect();
    let mut g = nested("fc", 3);
    let report = load_torch_state_dict(&mut g, &to_safetensors(&prefixed).unwrap(), true).unwrap();
    assert_eq!(report.loaded.len(), 21);

    // num_batches_tracked must be an int64 counter.
    let mut bad = dict.clone();
    bad.insert(
        "features.1.num_batches_tracked".into(),
        StateEntry::I8(Tensor::new(&[], vec![3i8]).unwrap()),
    );
    let err = load_torch_state_dict(&mut nested("fc", 3), &to_safetensors(&bad).unwrap(), true)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            QflowError::TorchStateDict { node, source: QnnError::KeyDtypeMismatch { key, .. } }
                if node == "features.1" && key == "features.1.num_batches_tracked"
        ),
        "{err:?}"
    );

    // Corrupt or truncated files are errors, not panics.
    let bytes = torch_file();
    for cut in [0, 7, 100, bytes.len() - 1] {
        assert!(load_torch_state_dict(&mut nested("fc", 3), &bytes[..cut], true).is_err());
    }
    let missing = load_torch_state_dict_file(&mut nested("fc", 3), "/nonexistent/file", true);
    assert!(matches!(
        missing,
        Err(QflowError::Module(QnnError::Io { .. }))
    ));
}
