//! Saving and loading a whole graph — float, prepared (observers mid-calibration), QAT
//! (fake-quants mid-training), converted int8 — as one versioned safetensors file: the tensors
//! are the graph's state dict (PyTorch names, `<node>.<param>`) plus the observer nodes'
//! statistics, the structure is text in the file's metadata (`qstack.format = qstack.graph`,
//! `qstack.format_version`, `qstack.graph`).
//!
//! The structure is one line per graph element — `input <name>`, `output <name>`,
//! `node <name> <input,input,...> <op> [key=value ...]` — with the arguments that fix each
//! layer's shapes as keys (`in`, `out`, `kernel`, `weight_shape`, `per_channel`, …) and the
//! node's QConfig (`qconfig=1 qconfig.act.… qconfig.weight.…`). Loading builds every layer from
//! its arguments, loads the state dict strictly (a tensor that does not fit is an error), lets
//! each module rebuild derived state (`Module::after_load`: quantized weights are repacked for
//! this CPU, fake-quants give their observer the saved running range) and restores what is not
//! a tensor: train/eval mode, `half()`, observer statistics, toggles and batch counts, frozen
//! batch norms. One file per family in `describe/`: `float.rs`, `quantized.rs`, `dynamic.rs`,
//! `qat.rs`, `observers.rs`, `qconfig.rs`.
//!
//! Supported: every [`crate::FunctionalOp`]; float Linear, Conv1d, Conv2d, ConvTranspose2d,
//! BatchNorm1d/2d, LayerNorm, GroupNorm, InstanceNorm2d, the activations (LeakyReLU, ELU, GELU
//! included), Softmax, LogSoftmax, Flatten, Identity, Dropout, MaxPool2d, AvgPool2d,
//! AdaptiveAvgPool2d, Embedding, EmbeddingBag, RNN / LSTM / GRU and their cells,
//! MultiheadAttention and TransformerEncoderLayer (weights under PyTorch's names), and the fused
//! modules of [`qnn::fused`] (halved layers are halved again after loading);
//! observer nodes ([`crate::passes::ObserverNode`]: min/max, moving-average, per-channel,
//! histogram, placeholder, no-op and fixed-qparams observers — saving halfway through
//! calibration and resuming gives the same qparams as never stopping); the QAT layers of
//! [`qnn::qat`] (Linear, LinearReLU, Conv1d, Conv2d, ConvReLU2d, ConvBn1d, ConvBnReLU1d,
//! ConvBn2d, ConvBnReLU2d, LinearBn1d, with
//! their weight fake-quant, BN running statistics and `freeze_bn_stats` state) and the
//! fake-quant nodes (FakeQuantize, FixedQParamsFakeQuantize, FusedMovingAvgObsFakeQuantize, with
//! their observer state, scale / zero point and enable flags under PyTorch's state-dict names):
//! saving halfway through QAT and resuming trains, and converts, bit for bit as never stopping;
//! the static quantized modules Quantize, DeQuantize, Linear(ReLU), Conv1d/2d/3d(+ReLU),
//! ConvTranspose2d, BatchNorm2d, BNReLU2d, LayerNorm, GroupNorm, InstanceNorm2d, ReLU, ReLU6,
//! Hardswish, LeakyReLU, ELU, Sigmoid, Tanh, Softmax, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d,
//! Flatten, Dropout, QFunctional, Embedding and EmbeddingBag (8-bit and 4-bit rows) — every
//! module of [`qnn::quantized`]; the dynamic modules Linear, LinearReLU, LSTM, GRU, LSTMCell,
//! GRUCell and RNNCell (qint8 per-tensor or per-channel, or f16). Not yet: Sequential, Recording
//! observers and user-defined layers — each a [`QflowError::Format`] error naming the node.
//!
//! Size guard: before a node's layer is built, the sizes its line describes are bounded by the
//! node's tensor data in the file (`size_guard.rs`), so a crafted file with a valid checksum
//! and a huge size (`in=2^40`) is a [`QflowError::Format`] error naming the node, never an
//! allocation that aborts.
//!
//! New kinds are new op names in the same line format: files written before they existed
//! still load, so adding them kept the format at version 2.
//!
//! Integrity (format version 2): the metadata records the tensor data's length
//! (`qstack.data_len`) and a CRC-32 (`qstack.checksum`, 8 lowercase hex digits) over the tensor
//! data followed by every other metadata entry in key order as `key NUL value NUL`. Loading
//! checks the version first (a newer one is [`QflowError::UnsupportedVersion`]), then the
//! length and the checksum ([`QflowError::Corrupt`] with the expected and actual values), before
//! anything is built: a truncated, padded or bit-flipped file is a typed error, never a panic
//! or a silently different model. Version 1 files (float graphs, no integrity record) still
//! load. [`save_graph`] is atomic ([`qnn::state_dict::write_atomic`]: temporary file in the same
//! directory, `fsync`, rename; nothing left behind on error). The metadata's key order is not
//! fixed (safetensors writes a hash map), so two saves of one graph can differ in bytes, never
//! in content.
//!
//! ```
//! use qflow::io::{graph_from_bytes, graph_to_bytes};
//! use qflow::SequentialBuilder;
//! use qnn::float::{Linear, ReLU};
//! use qnn::init::Rng;
//!
//! let mut rng = Rng::new(0);
//! let g = SequentialBuilder::new("x")
//!     .add("fc1", Linear::new(3, 4, true, &mut rng))
//!     .add("relu", ReLU::new())
//!     .build()?;
//! let bytes = graph_to_bytes(&g)?;
//! let back = graph_from_bytes(&bytes)?;
//! assert_eq!(back.node_names(), ["fc1", "relu"]);
//! # Ok::<(), qflow::QflowError>(())
//! ```

mod container;
mod describe;
mod size_guard;

pub use container::{graph_from_bytes, graph_to_bytes};
pub(crate) use describe::describe_op;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use qnn::state_dict::StateEntry;

use crate::error::{QflowError, Result};
use crate::graph::{Graph, Node};

/// The format version this build writes; files with a larger version are refused
/// ([`QflowError::UnsupportedVersion`]). Version 1 (float graphs, no integrity record) still
/// loads.
pub const FORMAT_VERSION: u32 = 2;

fn fmt_err(msg: impl Into<String>) -> QflowError {
    QflowError::Format(msg.into())
}

/// Checks that a name can be written in the line format (no whitespace or commas).
fn check_token(name: &str) -> Result<()> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c == ',' || c == '=')
    {
        return Err(fmt_err(format!(
            "name `{name}` cannot be saved: names must be non-empty without spaces, commas or `=`"
        )));
    }
    Ok(())
}

/// The graph structure as text (the `qstack.graph` metadata entry).
pub fn describe_graph(graph: &Graph) -> Result<String> {
    let mut lines = Vec::new();
    for i in graph.inputs() {
        check_token(i)?;
        lines.push(format!("input {i}"));
    }
    for n in graph.nodes() {
        check_token(n.name())?;
        let (op, mut args) = describe::describe_op(n)?;
        describe::qconfig_args(n.qconfig(), &mut args)?;
        let mut line = format!("node {} {} {op}", n.name(), n.inputs().join(","));
        for (k, v) in args {
            line.push_str(&format!(" {k}={v}"));
        }
        lines.push(line);
    }
    for o in graph.outputs() {
        lines.push(format!("output {o}"));
    }
    Ok(lines.join("\n"))
}

/// Rebuilds a graph (placeholder parameters, fresh observers) from [`describe_graph`]'s text.
///
/// A description alone carries no tensors, so each layer may describe at most a few million
/// elements (a larger one is a [`QflowError::Format`] error naming the node, not an allocation
/// that aborts); [`graph_from_bytes`] allows what the file's tensors back.
pub fn graph_from_description(text: &str) -> Result<Graph> {
    graph_from_description_within(text, &size_guard::TensorBytes::default())
}

/// [`graph_from_description`], each node's described sizes bounded by its tensors in `tensors`
/// (checked before the layer is built).
fn graph_from_description_within(text: &str, tensors: &size_guard::TensorBytes) -> Result<Graph> {
    let (mut inputs, mut nodes, mut outputs) = (Vec::new(), Vec::new(), Vec::new());
    for (lineno, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        let bad = || fmt_err(format!("line {}: cannot parse `{line}`", lineno + 1));
        match words.next() {
            Some("input") => inputs.push(words.next().ok_or_else(bad)?.to_string()),
            Some("output") => outputs.push(words.next().ok_or_else(bad)?.to_string()),
            Some("node") => {
                let name = words.next().ok_or_else(bad)?;
                let ins: Vec<&str> = words.next().ok_or_else(bad)?.split(',').collect();
                let op = words.next().ok_or_else(bad)?;
                let mut args = HashMap::new();
                for w in words {
                    let (k, v) = w.split_once('=').ok_or_else(bad)?;
                    args.insert(k.to_string(), v.to_string());
                }
                size_guard::check_node(name, op, &args, tensors)?;
                let op = describe::build_op(name, op, &args)?;
                let mut node = Node::new(name, op, &ins);
                node.set_qconfig(
                    describe::Reader {
                        node: name,
                        args: &args,
                    }
                    .qconfig()?,
                );
                nodes.push(node);
            }
            None => {}
            Some(_) => return Err(bad()),
        }
    }
    Graph::new(inputs, nodes, outputs)
}

/// Every tensor the file holds: the graph's state dict plus the observer nodes' statistics.
fn file_state(graph: &Graph) -> Result<BTreeMap<String, StateEntry>> {
    let mut dict = qnn::state_dict::state_dict(graph);
    for (k, v) in describe::observer_state(graph)? {
        if dict.contains_key(&k) {
            return Err(fmt_err(format!(
                "observer statistics `{k}` clash with a module's state-dict entry"
            )));
        }
        dict.insert(k, v);
    }
    Ok(dict)
}

/// Loads the file's tensors into a graph built from `text`, then restores modes and observers.
fn load_file_state(
    graph: &mut Graph,
    text: &str,
    mut dict: BTreeMap<String, StateEntry>,
) -> Result<()> {
    let observers = describe::split_observer_state(&mut dict, text);
    qnn::state_dict::load_state_dict(graph, &dict, true)?;
    describe::restore(graph, text, &observers)
}

fn io_err(path: &Path, e: &std::io::Error) -> QflowError {
    QflowError::Module(qnn::QnnError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// [`graph_to_bytes`] into a file, atomically ([`qnn::state_dict::write_atomic`]): the bytes go
/// to a temporary file in the same directory, flushed and renamed over `path`; on error the old
/// file is intact and nothing is left behind.
pub fn save_graph(graph: &Graph, path: impl AsRef<Path>) -> Result<()> {
    let bytes = graph_to_bytes(graph)?;
    Ok(qnn::state_dict::write_atomic(path, &bytes)?)
}

/// [`graph_from_bytes`] from a file.
pub fn load_graph(path: impl AsRef<Path>) -> Result<Graph> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| io_err(path, &e))?;
    graph_from_bytes(&bytes)
}
