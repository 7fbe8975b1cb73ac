//! Saving and loading a graph as one safetensors file: structure, weights, buffers and modes
//! survive the round trip (same outputs, same state dict); bad files are typed errors.

use std::collections::HashMap;

use qflow::io::{
    FORMAT_VERSION, describe_graph, graph_from_bytes, graph_to_bytes, load_graph, save_graph,
};
use qflow::passes::fuse_modules;
use qflow::{FunctionalBuilder, FunctionalOp, Graph, QflowError};
use qnn::float::*;
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::{Module, ModuleKind, Value};

fn rand(shape: &[usize], seed: u64) -> Value {
    let mut rng = Rng::new(seed);
    Value::F32(Tensor::from_fn(shape, |_| rng.uniform(-1.0, 1.0)))
}

fn model() -> Graph {
    let mut rng = Rng::new(11);
    let mut b = FunctionalBuilder::new();
    let x = b.input("x");
    let c = b.module(
        "features.0",
        Conv2d::new(Conv2dConfig::new(2, 4, 3).padding(1).stride(1), &mut rng).unwrap(),
        &[&x],
    );
    let c = b.module(
        "features.1",
        BatchNorm2d::new(BatchNormConfig {
            momentum: None,
            ..BatchNormConfig::new(4)
        }),
        &[&c],
    );
    let c = b.module("features.2", ReLU::new(), &[&c]);
    let seq = b.functional("to_seq", FunctionalOp::Reshape(vec![-1, 4, 36]), &[&c]);
    let c1 = b.module(
        "branch.conv",
        Conv1d::new(Conv1dConfig::new(4, 4, 1), &mut rng).unwrap(),
        &[&seq],
    );
    let c1 = b.functional("from_seq", FunctionalOp::Reshape(vec![-1, 4, 6, 6]), &[&c1]);
    let s = b.functional("add", FunctionalOp::AddRelu, &[&c, &c1]);
    let p = b.module(
        "pool",
        MaxPool2d::with_options([2, 2], [2, 2], [0, 0], [1, 1], true).unwrap(),
        &[&s],
    );
    let a = b.module(
        "avg",
        AvgPool2d::with_options([1, 1], [1, 1], [0, 0], false, true, None).unwrap(),
        &[&p],
    );
    let a = b.module("adapt", AdaptiveAvgPool2d::new([3, 3]).unwrap(), &[&a]);
    let f = b.functional(
        "flatten",
        FunctionalOp::Flatten {
            start_dim: 1,
            end_dim: -1,
        },
        &[&a],
    );
    let l = b.module("fc1", Linear::new(36, 8, true, &mut rng), &[&f]);
    let l = b.module("bn_fc", BatchNorm1d::new(BatchNormConfig::new(8)), &[&l]);
    let l = b.module("act", Hardswish::new(), &[&l]);
    let l = b.module("drop", Dropout::new(0.25, 3).unwrap(), &[&l]);
    let l = b.module("fc2", Linear::new(8, 3, false, &mut rng), &[&l]);
    let m = b.functional("scale", FunctionalOp::MulScalar(0.7), &[&l]);
    let m = b.functional("shift", FunctionalOp::AddScalar(0.1), &[&m]);
    let cat = b.functional("cat", FunctionalOp::Cat { dim: 1 }, &[&m, &l]);
    b.output(&cat);
    b.output(&f);
    let mut g = b.build().unwrap();
    for s in 0..2 {
        g.run(&[rand(&[3, 2, 6, 6], s)]).unwrap();
    }
    g
}

fn roundtrip(g: &Graph) -> Graph {
    graph_from_bytes(&graph_to_bytes(g).unwrap()).unwrap()
}

#[test]
fn eval_graph_round_trips_exactly() {
    let mut g = model();
    g.eval();
    let mut back = roundtrip(&g);
    assert_eq!(back.node_names(), g.node_names());
    assert_eq!(back.outputs(), g.outputs());
    assert!(!back.is_training());
    assert_eq!(
        qnn::state_dict::state_dict(&back),
        qnn::state_dict::state_dict(&g)
    );
    let x = rand(&[2, 2, 6, 6], 5);
    assert_eq!(
        back.run(std::slice::from_ref(&x)).unwrap(),
        g.run(&[x]).unwrap()
    );
    assert_eq!(describe_graph(&back).unwrap(), describe_graph(&g).unwrap());
}

#[test]
fn fused_halved_and_training_graphs_round_trip() {
    // Training mode, with QAT fused modules.
    let mut g = model();
    fuse_modules(
        &mut g,
        &[
            &["features.0", "features.1", "features.2"],
            &["fc1", "bn_fc"],
        ],
    )
    .unwrap();
    assert_eq!(
        g.node("features.0").unwrap().kind(),
        Some(ModuleKind::ConvBnReLU2d)
    );
    let back = roundtrip(&g);
    assert!(back.is_training());
    assert_eq!(
        back.node("features.0").unwrap().kind(),
        Some(ModuleKind::ConvBnReLU2d)
    );
    assert_eq!(
        back.node("fc1").unwrap().kind(),
        Some(ModuleKind::LinearBn1d)
    );
    assert_eq!(
        qnn::state_dict::state_dict(&back),
        qnn::state_dict::state_dict(&g)
    );

    // Eval-mode folding, then half(): the f16 weights come back bit for bit.
    let mut g = model();
    g.eval();
    fuse_modules(
        &mut g,
        &[
            &["features.0", "features.1", "features.2"],
            &["fc1", "bn_fc"],
        ],
    )
    .unwrap();
    g.half().unwrap();
    let mut back = roundtrip(&g);
    let w = |g: &Graph| g.module_as::<Linear>("fc2").unwrap().weight_f16().cloned();
    assert!(w(&back).is_some());
    assert_eq!(w(&back), w(&g));
    assert_eq!(back.param_bytes(), g.param_bytes());
    let x = rand(&[1, 2, 6, 6], 8);
    assert_eq!(
        back.run(std::slice::from_ref(&x)).unwrap(),
        g.run(&[x]).unwrap()
    );
}

#[test]
fn files_on_disk() {
    let mut g = model();
    g.eval();
    let dir = std::env::temp_dir().join(format!("qflow-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    save_graph(&g, &path).unwrap();
    let back = load_graph(&path).unwrap();
    assert_eq!(back.node_names(), g.node_names());
    // The file is a plain safetensors state dict too.
    let dict = qnn::state_dict::from_safetensors(&std::fs::read(&path).unwrap()).unwrap();
    assert!(dict.contains_key("fc1.weight"));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(
        load_graph(dir.join("missing")),
        Err(QflowError::Module(_))
    ));
}

/// Re-serializes `bytes` with the same tensors and different metadata, with a valid checksum
/// for the edit (CRC-32 over the tensor data, then `key NUL value NUL` for every other metadata
/// entry in key order), so that the loader gets past the integrity check.
fn with_metadata(bytes: &[u8], edit: impl FnOnce(&mut HashMap<String, String>)) -> Vec<u8> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let (n, meta) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let mut m = meta.metadata().clone().unwrap_or_default();
    edit(&mut m);
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[8 + n..]);
    let sorted: std::collections::BTreeMap<_, _> = m
        .iter()
        .filter(|(k, _)| k.as_str() != "qstack.checksum")
        .collect();
    for (k, v) in sorted {
        h.update(k.as_bytes());
        h.update(&[0]);
        h.update(v.as_bytes());
        h.update(&[0]);
    }
    m.insert("qstack.checksum".into(), format!("{:08x}", h.finalize()));
    safetensors::serialize(st.tensors(), Some(m)).unwrap()
}

#[test]
fn bad_files_are_typed_errors() {
    let g = model();
    let bytes = graph_to_bytes(&g).unwrap();
    let newer = with_metadata(&bytes, |m| {
        m.insert(
            "qstack.format_version".into(),
            (FORMAT_VERSION + 1).to_string(),
        );
    });
    assert_eq!(
        graph_from_bytes(&newer).unwrap_err(),
        QflowError::UnsupportedVersion {
            found: FORMAT_VERSION + 1,
            supported: FORMAT_VERSION
        }
    );
    let not_ours = with_metadata(&bytes, |m| {
        m.remove("qstack.format");
    });
    assert!(matches!(
        graph_from_bytes(&not_ours),
        Err(QflowError::Format(_))
    ));
    let bad_graph = with_metadata(&bytes, |m| {
        let g = m.get("qstack.graph").unwrap().replace("Conv2d", "Conv9d");
        m.insert("qstack.graph".into(), g);
    });
    assert!(
        matches!(graph_from_bytes(&bad_graph), Err(QflowError::Format(e)) if e.contains("Conv9d"))
    );
    let bad_arg = with_metadata(&bytes, |m| {
        let g = m.get("qstack.graph").unwrap().replace("in=36", "in=35");
        m.insert("qstack.graph".into(), g);
    });
    assert!(matches!(
        graph_from_bytes(&bad_arg),
        Err(QflowError::Module(_))
    ));
    let plain = qnn::state_dict::to_safetensors(&qnn::state_dict::state_dict(&g)).unwrap();
    assert!(matches!(
        graph_from_bytes(&plain),
        Err(QflowError::Format(_))
    ));
    for cut in [0, 7, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            graph_from_bytes(&bytes[..cut]).is_err(),
            "truncated at {cut}"
        );
    }
    assert!(graph_from_bytes(b"garbage!garbage!").is_err());

    // Layers the format does not describe yet.
    let mut b = FunctionalBuilder::new();
    let x = b.input("x");
    let e = b.module("seq", Sequential::new(), &[&x]);
    b.output(&e);
    let g = b.build().unwrap();
    assert!(matches!(graph_to_bytes(&g), Err(QflowError::Format(e)) if e.contains("`seq`")));
}
