//! Faults in model files (issue 9): saves are atomic (nothing partial or temporary is left
//! behind, an old file survives a failed save), a truncated or bit-flipped file is a typed
//! error and never a panic, version 1 files still load and newer versions are refused, and a
//! file describing layers far larger than its tensor data is refused before anything is built.

use qflow::io::{FORMAT_VERSION, graph_from_bytes, graph_to_bytes, load_graph, save_graph};
use qflow::{Graph, QflowError, SequentialBuilder};
use qnn::float::{Conv2d, Conv2dConfig, Linear, ReLU};
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::{Module, Value};

fn small_graph() -> Graph {
    let mut rng = Rng::new(3);
    let mut g = SequentialBuilder::new("x")
        .add(
            "conv",
            Conv2d::new(Conv2dConfig::new(1, 2, 3), &mut rng).unwrap(),
        )
        .add("relu", ReLU::new())
        .functional(
            "flatten",
            qflow::FunctionalOp::Flatten {
                start_dim: 1,
                end_dim: -1,
            },
        )
        .add("fc", Linear::new(8, 3, true, &mut rng))
        .build()
        .unwrap();
    g.eval();
    g
}

fn input() -> Value {
    let mut rng = Rng::new(9);
    Value::F32(Tensor::from_fn(&[2, 1, 4, 4], |_| rng.uniform(-1.0, 1.0)))
}

/// A fresh, empty directory under the system temp dir.
fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("qflow-faults-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn saves_are_atomic_and_leave_nothing_behind() {
    let dir = temp_dir("atomic");
    let g = small_graph();
    let path = dir.join("model.qstack");
    save_graph(&g, &path).unwrap();
    save_graph(&g, &path).unwrap(); // overwriting goes through the same rename
    assert_eq!(entries(&dir), ["model.qstack"]);
    let back = load_graph(&path).unwrap();
    assert_eq!(
        qnn::state_dict::state_dict(&back),
        qnn::state_dict::state_dict(&g)
    );

    // Renaming over a directory fails: the error names the path, the temporary file is gone
    // and the directory in the way is untouched.
    let blocked = dir.join("blocked");
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("keep"), b"x").unwrap();
    let err = save_graph(&g, &blocked).unwrap_err();
    assert!(
        matches!(&err, QflowError::Module(qnn::QnnError::Io { path, .. }) if path.ends_with("blocked")),
        "{err:?}"
    );
    assert_eq!(entries(&dir), ["blocked", "model.qstack"]);
    assert_eq!(entries(&blocked), ["keep"]);

    // A missing parent directory: an error, nothing created.
    assert!(save_graph(&g, dir.join("no/such/dir/m.qstack")).is_err());
    assert_eq!(entries(&dir), ["blocked", "model.qstack"]);

    // The state-dict writer of qnn is atomic the same way.
    let st = dir.join("weights.safetensors");
    qnn::state_dict::save_safetensors(&g, &st).unwrap();
    assert!(qnn::state_dict::save_safetensors(&g, &blocked).is_err());
    assert_eq!(
        entries(&dir),
        ["blocked", "model.qstack", "weights.safetensors"]
    );
    let back = qnn::state_dict::from_safetensors(&std::fs::read(&st).unwrap()).unwrap();
    assert_eq!(back, qnn::state_dict::state_dict(&g));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_truncation_is_a_typed_error() {
    let bytes = graph_to_bytes(&small_graph()).unwrap();
    for cut in 0..bytes.len() {
        let err = graph_from_bytes(&bytes[..cut]).expect_err("a truncated file loaded");
        if cut > 8 + header_len(&bytes) {
            // Cut inside the tensor data: the length check names what is missing.
            assert!(
                matches!(
                    &err,
                    QflowError::Corrupt {
                        what: "file length",
                        ..
                    }
                ),
                "cut at {cut}: {err:?}"
            );
        }
    }
    // Trailing garbage is caught the same way.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 4]);
    assert!(matches!(
        graph_from_bytes(&longer),
        Err(QflowError::Corrupt { .. })
    ));
}

fn header_len(bytes: &[u8]) -> usize {
    u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

#[test]
fn every_single_bit_flip_is_an_error() {
    let bytes = graph_to_bytes(&small_graph()).unwrap();
    let data_start = 8 + header_len(&bytes);
    let mut checksum_errors = 0;
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut bad = bytes.clone();
            bad[i] ^= 1 << bit;
            match graph_from_bytes(&bad) {
                Ok(_) => panic!(
                    "flipping bit {bit} of byte {i} went unnoticed: {}",
                    String::from_utf8_lossy(&bad[i.saturating_sub(30)..(i + 30).min(bad.len())])
                ),
                Err(QflowError::Corrupt {
                    what,
                    expected,
                    actual,
                }) => {
                    if i >= data_start {
                        assert_eq!(what, "CRC-32 of the tensor data and metadata");
                        assert_ne!(expected, actual);
                    }
                    checksum_errors += 1;
                }
                Err(_) => assert!(i < data_start, "byte {i}: data flips are checksum errors"),
            }
        }
    }
    assert!(checksum_errors >= 8 * (bytes.len() - data_start));
}

#[test]
fn format_versions() {
    // A version-1 file (float graph, no integrity record) written by an earlier build.
    let v1 = include_bytes!("data/graph_v1.qstack");
    let mut g = graph_from_bytes(v1).unwrap();
    assert_eq!(
        g.node_names(),
        ["conv1", "relu1", "pool1", "flatten", "fc1"]
    );
    let x = Value::F32(Tensor::from_fn(&[1, 1, 6, 6], |i| i as f32 / 36.0));
    let out = g.run(std::slice::from_ref(&x)).unwrap();
    // Saved again it is the current version, and loads to the same outputs.
    let again = graph_to_bytes(&g).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&again).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta["qstack.format_version"], FORMAT_VERSION.to_string());
    assert_eq!(FORMAT_VERSION, 2);
    assert_eq!(graph_from_bytes(&again).unwrap().run(&[x]).unwrap(), out);

    // A newer version is refused with the typed error, before its contents are trusted.
    let key = b"\"qstack.format_version\":\"2\"";
    let at = again.windows(key.len()).position(|w| w == key).unwrap();
    let mut newer = again.clone();
    newer[at + key.len() - 2] = b'3';
    assert_eq!(
        graph_from_bytes(&newer).unwrap_err(),
        QflowError::UnsupportedVersion {
            found: 3,
            supported: 2
        }
    );
}

#[test]
fn files_on_disk_are_checked_too() {
    let dir = temp_dir("disk");
    let mut g = small_graph();
    let path = dir.join("m.qstack");
    save_graph(&g, &path).unwrap();
    let mut back = load_graph(&path).unwrap();
    assert_eq!(back.run(&[input()]).unwrap(), g.run(&[input()]).unwrap());
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    assert!(matches!(load_graph(&path), Err(QflowError::Corrupt { .. })));
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x10;
    std::fs::write(&path, &flipped).unwrap();
    let err = load_graph(&path).unwrap_err();
    assert!(err.to_string().contains("CRC-32"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fuzz_seeds_load() {
    // The model_file fuzz target's seeds: one per format version and graph family (the QAT
    // one is `qat_graph()` below, saved).
    let seeds: [&[u8]; 5] = [
        include_bytes!("../../../fuzz/corpus/model_file/small_cnn.qstack"),
        include_bytes!("../../../fuzz/corpus/model_file/small_cnn_v2.qstack"),
        include_bytes!("../../../fuzz/corpus/model_file/small_cnn_prepared.qstack"),
        include_bytes!("../../../fuzz/corpus/model_file/small_cnn_int8.qstack"),
        include_bytes!("../../../fuzz/corpus/model_file/small_cnn_qat.qstack"),
    ];
    for seed in seeds {
        let g = graph_from_bytes(seed).unwrap();
        let again = graph_from_bytes(&graph_to_bytes(&g).unwrap()).unwrap();
        assert_eq!(again.node_names(), g.node_names());
    }
}

/// A LeNet-style QAT graph (fused Conv+BN+ReLU, Conv+ReLU, Linear+ReLU, Linear; FakeQuantize
/// activations and per-channel weight fake-quants) after one forward.
fn qat_graph() -> Graph {
    use qflow::passes::{fuse_modules_qat, prepare_qat};
    use qflow::qconfig::{Backend, QConfigMapping, get_default_qat_qconfig};
    use qnn::float::{BatchNorm2d, BatchNormConfig};
    let mut rng = Rng::new(4);
    let mut g = SequentialBuilder::new("x")
        .add(
            "conv",
            Conv2d::new(Conv2dConfig::new(1, 2, 3), &mut rng).unwrap(),
        )
        .add("bn", BatchNorm2d::new(BatchNormConfig::new(2)))
        .add("relu", ReLU::new())
        .functional(
            "flatten",
            qflow::FunctionalOp::Flatten {
                start_dim: 1,
                end_dim: -1,
            },
        )
        .add("fc", Linear::new(8, 3, true, &mut rng))
        .build()
        .unwrap();
    g.train(true);
    fuse_modules_qat(&mut g, &[&["conv", "bn", "relu"]]).unwrap();
    let mapping = QConfigMapping::new()
        .set_global(Some(get_default_qat_qconfig(Backend::Fbgemm, 0).unwrap()));
    prepare_qat(&mut g, &mapping).unwrap();
    g.run(&[input()]).unwrap();
    g
}

/// Re-serializes `bytes` with the graph description edited by `edit` and a valid checksum for
/// the edit, so that the loader gets past the integrity check and meets the edited arguments.
fn with_graph_text(bytes: &[u8], edit: impl FnOnce(&str) -> String) -> Vec<u8> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let (n, meta) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let mut m = meta.metadata().clone().unwrap();
    let text = edit(&m["qstack.graph"]);
    m.insert("qstack.graph".into(), text);
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

/// Replaces `from` by `to` on the node line of `node` only (the edit must apply).
fn edit_node(text: &str, node: &str, from: &str, to: &str) -> String {
    let prefix = format!("node {node} ");
    let mut hit = false;
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with(&prefix) && l.contains(from) {
                hit = true;
                l.replacen(from, to, 1)
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(hit, "`{from}` not on node `{node}`");
    lines.join("\n")
}

#[test]
fn corrupt_qat_files_are_typed_errors() {
    let g = qat_graph();
    let bytes = graph_to_bytes(&g).unwrap();
    let back = graph_from_bytes(&bytes).unwrap();
    assert_eq!(
        qnn::state_dict::state_dict(&back),
        qnn::state_dict::state_dict(&g)
    );
    // Truncations and bit flips, sampled across header and data.
    let step = (bytes.len() / 400).max(1);
    for cut in (0..bytes.len()).step_by(step) {
        assert!(graph_from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    for i in (0..bytes.len()).step_by(step) {
        let mut bad = bytes.clone();
        bad[i] ^= 0x04;
        assert!(graph_from_bytes(&bad).is_err(), "flip in byte {i}");
    }

    // Inconsistent arguments behind a valid checksum.
    let fq = "x.activation_post_process";
    let load = |edit: &dyn Fn(&str) -> String| graph_from_bytes(&with_graph_text(&bytes, edit));
    // A fake-quant with quant_min > quant_max: PyTorch's FakeQuantize check, typed.
    let err = load(&|t| {
        let t = edit_node(t, fq, " obs.quant_min=0 ", " obs.quant_min=200 ");
        edit_node(&t, fq, " obs.quant_max=255 ", " obs.quant_max=100 ")
    })
    .unwrap_err();
    assert!(
        matches!(
            &err,
            QflowError::Module(qnn::QnnError::InvalidQParams { reason, .. })
                if reason.contains("quant_min 200")
        ),
        "{err:?}"
    );
    // The same in a QAT layer's weight fake-quant.
    let err = load(&|t| {
        edit_node(
            t,
            "conv",
            " wfq.obs.quant_max=127 ",
            " wfq.obs.quant_max=-129 ",
        )
    })
    .unwrap_err();
    assert!(
        matches!(
            &err,
            QflowError::Module(qnn::QnnError::InvalidQParams { .. })
        ),
        "{err:?}"
    );
    // A node whose spec is of another fake-quant kind.
    let err = load(&|t| {
        edit_node(
            t,
            fq,
            " FakeQuantize fq=",
            " FusedMovingAvgObsFakeQuantize fq=",
        )
    })
    .unwrap_err();
    assert!(
        matches!(&err, QflowError::Format(e) if e.contains(fq)),
        "{err:?}"
    );
    // A channel count on a per-tensor fake-quant, a bad flag, a missing weight spec, a
    // per-channel weight fake-quant made per-tensor (its buffers no longer fit).
    let bad_edits: [(&str, &str, &str); 4] = [
        (fq, " train=", " channels=3 train="),
        ("conv", " freeze_bn=0 ", " freeze_bn=2 "),
        ("fc", " wfq.fq=FakeQuantize ", " "),
        (
            "fc",
            " wfq.obs.kind=MovingAveragePerChannelMinMax ",
            " wfq.obs.kind=MovingAverageMinMax ",
        ),
    ];
    for (node, from, to) in bad_edits {
        let err = load(&|t| edit_node(t, node, from, to)).unwrap_err();
        assert!(
            matches!(&err, QflowError::Format(_) | QflowError::Module(_)),
            "{node}: `{from}` -> `{to}`: {err:?}"
        );
    }
}

#[test]
fn corrupt_quantized_norm_and_embedding_files_are_typed_errors() {
    use qnn::qtensor::{QDType, QParams, QTensor};
    use qnn::quantized::{Embedding, LayerNorm, Quantize};
    let mut b = qflow::FunctionalBuilder::new();
    let x = b.input("x");
    let idx = b.input("idx");
    let q = b.module(
        "quant",
        Quantize::new(0.02, 128, QDType::QUInt8).unwrap(),
        &[&x],
    );
    let w = Tensor::from_fn(&[4], |i| 1.0 + i as f32 / 8.0);
    let ln = LayerNorm::new(&[4], Some(w), None, 1e-5, 0.05, 127).unwrap();
    let y = b.module("ln", ln, &[&q]);
    let table = QTensor::from_int_values(
        &[5, 3],
        &(0..15).collect::<Vec<i32>>(),
        QDType::QUInt8,
        QParams::PerChannelFloat {
            scales: vec![0.1; 5],
            zero_points: vec![2.0; 5],
            axis: 0,
        },
    )
    .unwrap();
    let e = b.module("emb", Embedding::from_qtensor(&table).unwrap(), &[&idx]);
    b.output(&y);
    b.output(&e);
    let g = b.build().unwrap();
    let bytes = graph_to_bytes(&g).unwrap();
    let back = graph_from_bytes(&bytes).unwrap();
    assert_eq!(
        qnn::state_dict::state_dict(&back),
        qnn::state_dict::state_dict(&g)
    );
    let load = |node: &str, from: &str, to: &str| {
        graph_from_bytes(&with_graph_text(&bytes, |t| edit_node(t, node, from, to))).unwrap_err()
    };
    // The described shape disagrees with the saved parameters.
    assert!(matches!(
        load("ln", " shape=4 ", " shape=5 "),
        QflowError::Module(qnn::QnnError::KeyShapeMismatch { .. })
    ));
    // PyTorch's own argument checks, typed.
    assert!(matches!(
        load("ln", " eps=0.00001 ", " eps=-1 "),
        QflowError::Module(_)
    ));
    assert!(matches!(
        load("emb", " dtype=QUInt8 ", " dtype=QInt8 "),
        QflowError::Format(e) if e.contains("dtype")
    ));
    assert!(matches!(
        load("emb", " num=5 ", " num=4 "),
        QflowError::Module(_)
    ));
    // Sizes no allocation could hold are refused before anything is allocated.
    for huge in [
        format!(" num={} ", usize::MAX),
        format!(" num={} ", usize::MAX / 3),
    ] {
        assert!(matches!(
            load("emb", " num=5 ", &huge),
            QflowError::Format(_)
        ));
    }
}

/// A float graph with one layer of each kind whose size a crafted file could blow up: Conv2d,
/// Linear, LSTM and Embedding.
fn sized_graph() -> Graph {
    use qnn::float::{Embedding, Lstm, RecurrentConfig};
    let mut rng = Rng::new(5);
    let mut b = qflow::FunctionalBuilder::new();
    let x = b.input("x");
    let seq = b.input("seq");
    let idx = b.input("idx");
    let conv = Conv2d::new(Conv2dConfig::new(1, 2, 3), &mut rng).unwrap();
    let c = b.module("conv", conv, &[&x]);
    let f = b.functional(
        "flatten",
        qflow::FunctionalOp::Flatten {
            start_dim: 1,
            end_dim: -1,
        },
        &[&c],
    );
    let y = b.module("fc", Linear::new(8, 3, true, &mut rng), &[&f]);
    let lstm = Lstm::new(RecurrentConfig::new(4, 3), &mut rng).unwrap();
    let s = b.module("lstm", lstm, &[&seq]);
    let emb = Embedding::new(10, 6, None, &mut rng).unwrap();
    let e = b.module("emb", emb, &[&idx]);
    b.output(&y);
    b.output(&s);
    b.output(&e);
    let mut g = b.build().unwrap();
    g.eval();
    g
}

/// One text edit on one node line: `(node, from, to)`.
type Edit = (&'static str, String, String);

#[test]
fn huge_described_layers_are_refused_before_building() {
    let g = sized_graph();
    let bytes = graph_to_bytes(&g).unwrap();
    let back = graph_from_bytes(&bytes).unwrap();
    assert_eq!(
        qnn::state_dict::state_dict(&back),
        qnn::state_dict::state_dict(&g)
    );
    let load = |edits: &[(&str, &str, &str)]| {
        graph_from_bytes(&with_graph_text(&bytes, |t| {
            edits.iter().fold(t.to_string(), |t, (node, from, to)| {
                edit_node(&t, node, from, to)
            })
        }))
    };
    let tera = (1u64 << 40).to_string();
    let giga = (1u64 << 30).to_string();
    let mega = (1u64 << 20).to_string();
    let huge: [(&str, Vec<Edit>); 6] = [
        ("fc", vec![("fc", " in=8 ".into(), format!(" in={tera} "))]),
        (
            "conv",
            vec![
                ("conv", " in=1 ".into(), format!(" in={mega} ")),
                ("conv", " out=2 ".into(), format!(" out={mega} ")),
            ],
        ),
        (
            "conv",
            vec![(
                "conv",
                " kernel=3,3 ".into(),
                format!(" kernel={mega},{mega} "),
            )],
        ),
        (
            "lstm",
            vec![("lstm", " hidden=3 ".into(), format!(" hidden={giga} "))],
        ),
        (
            "emb",
            vec![("emb", " num=10 ".into(), format!(" num={tera} "))],
        ),
        (
            "emb",
            vec![(
                "emb",
                " num=10 ".into(),
                " num=999999999999999999999999999999999999999999 ".into(),
            )],
        ),
    ];
    for (node, edits) in &huge {
        let edits: Vec<(&str, &str, &str)> = edits
            .iter()
            .map(|(n, f, t)| (*n, f.as_str(), t.as_str()))
            .collect();
        let err = load(&edits).unwrap_err();
        assert!(
            matches!(&err, QflowError::Format(e) if e.contains(&format!("node `{node}`"))
                && e.contains("elements")),
            "{edits:?}: {err:?}"
        );
    }
    // Sizes the file could hold still reach the strict state-dict check, which names the
    // tensor that does not fit.
    for (node, from, to) in [
        ("fc", " in=8 ", " in=9 "),
        ("conv", " out=2 ", " out=4 "),
        ("lstm", " hidden=3 ", " hidden=2 "),
        ("emb", " num=10 ", " num=11 "),
    ] {
        let err = load(&[(node, from, to)]).unwrap_err();
        assert!(
            matches!(
                &err,
                QflowError::Module(qnn::QnnError::KeyShapeMismatch { key, .. })
                    if key.starts_with(&format!("{node}."))
            ),
            "{node}: {err:?}"
        );
    }
    // A description alone (no tensors) is bounded the same way.
    let text = qflow::io::describe_graph(&g).unwrap();
    assert!(qflow::io::graph_from_description(&text).is_ok());
    let huge_fc = edit_node(&text, "fc", " in=8 ", &format!(" in={tera} "));
    assert!(matches!(
        qflow::io::graph_from_description(&huge_fc),
        Err(QflowError::Format(e)) if e.contains("node `fc`")
    ));
}

#[test]
fn huge_quantized_weight_shapes_are_refused_before_building() {
    let seed: &[u8] = include_bytes!("../../../fuzz/corpus/model_file/small_cnn_int8.qstack");
    let load = |node: &str, from: &str, to: &str| {
        graph_from_bytes(&with_graph_text(seed, |t| edit_node(t, node, from, to)))
    };
    let huge = format!(" weight_shape={},8 ", 1u64 << 40);
    let err = load("fc", " weight_shape=3,8 ", &huge).unwrap_err();
    assert!(
        matches!(&err, QflowError::Format(e) if e.contains("node `fc`")),
        "{err:?}"
    );
    let huge = format!(" weight_shape=2,1,{0},{0} ", 1u64 << 20);
    let err = load("conv", " weight_shape=2,1,3,3 ", &huge).unwrap_err();
    assert!(
        matches!(&err, QflowError::Format(e) if e.contains("node `conv`")),
        "{err:?}"
    );
    // A histogram observer spec whose next calibration step would allocate bins * upsample.
    let huge = format!(" qconfig.act.obs.upsample={} ", 1u64 << 40);
    let err = load("conv", " qconfig.act.obs.upsample=16 ", &huge).unwrap_err();
    assert!(
        matches!(&err, QflowError::Format(e) if e.contains("node `conv`")),
        "{err:?}"
    );
    // A fitting size passes the guard and fails on the saved weight's shape.
    assert!(matches!(
        load("fc", " weight_shape=3,8 ", " weight_shape=3,9 "),
        Err(QflowError::Module(_))
    ));
}
