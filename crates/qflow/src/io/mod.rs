//! Saving and loading a whole float graph as one versioned safetensors file: the tensors are the
//! graph's state dict (PyTorch names, `<node>.<param>`), the structure is text in the file's
//! metadata (`qstack.format = qstack.graph`, `qstack.format_version`, `qstack.graph`).
//!
//! The structure is one line per graph element — `input <name>`, `output <name>`,
//! `node <name> <input,input,...> <op> [key=value ...]` — with the layers' constructor
//! arguments as keys (`in`, `out`, `kernel`, …). Loading builds every layer from its arguments
//! and then loads the state dict strictly, so a tensor that does not fit is an error.
//!
//! Supported: every [`crate::FunctionalOp`], Linear, Conv1d, Conv2d, BatchNorm1d/2d, the
//! parameter-free activations, Identity, Dropout, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d and
//! the fused modules of [`qnn::fused`]; halved (f16) Linear/Conv layers are halved again after
//! loading. Other layers (quantized, QAT, user-defined) are a [`QflowError::Format`] error
//! naming the node, for now.
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

mod describe;

pub(crate) use describe::describe_op;

use std::collections::HashMap;
use std::path::Path;

use safetensors::SafeTensors;

use crate::error::{QflowError, Result};
use crate::graph::{Graph, Node};

/// The format version this build writes; files with a larger version are refused.
pub const FORMAT_VERSION: u32 = 1;

const KEY_FORMAT: &str = "qstack.format";
const KEY_VERSION: &str = "qstack.format_version";
const KEY_GRAPH: &str = "qstack.graph";
const FORMAT_NAME: &str = "qstack.graph";

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
        let (op, args) = describe::describe_op(n)?;
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

/// Rebuilds a graph (fresh parameters) from [`describe_graph`]'s text.
pub fn graph_from_description(text: &str) -> Result<Graph> {
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
                let op = describe::build_op(name, op, &args)?;
                nodes.push(Node::new(name, op, &ins));
            }
            None => {}
            Some(_) => return Err(bad()),
        }
    }
    Graph::new(inputs, nodes, outputs)
}

/// The whole graph as safetensors bytes: state dict entries plus the structure in metadata.
pub fn graph_to_bytes(graph: &Graph) -> Result<Vec<u8>> {
    let text = describe_graph(graph)?;
    let plain = qnn::state_dict::to_safetensors(&qnn::state_dict::state_dict(graph))?;
    let st = SafeTensors::deserialize(&plain).map_err(|e| fmt_err(e.to_string()))?;
    let metadata = HashMap::from([
        (KEY_FORMAT.to_string(), FORMAT_NAME.to_string()),
        (KEY_VERSION.to_string(), FORMAT_VERSION.to_string()),
        (KEY_GRAPH.to_string(), text),
    ]);
    safetensors::serialize(st.tensors(), Some(metadata)).map_err(|e| fmt_err(e.to_string()))
}

/// Reads a graph written by [`graph_to_bytes`]: checks the format name and version, rebuilds
/// the layers and loads their tensors strictly (missing, extra or misshapen tensors are errors).
pub fn graph_from_bytes(bytes: &[u8]) -> Result<Graph> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| fmt_err(e.to_string()))?;
    let meta = meta
        .metadata()
        .as_ref()
        .ok_or_else(|| fmt_err("no metadata: not a qstack graph file"))?;
    if meta.get(KEY_FORMAT).map(String::as_str) != Some(FORMAT_NAME) {
        return Err(fmt_err(format!("`{KEY_FORMAT}` is not `{FORMAT_NAME}`")));
    }
    let version: u32 = meta
        .get(KEY_VERSION)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| fmt_err(format!("missing or malformed `{KEY_VERSION}`")))?;
    if version > FORMAT_VERSION {
        return Err(QflowError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let text = meta
        .get(KEY_GRAPH)
        .ok_or_else(|| fmt_err(format!("missing `{KEY_GRAPH}`")))?;
    let mut graph = graph_from_description(text)?;
    let dict = qnn::state_dict::from_safetensors(bytes)?;
    qnn::state_dict::load_state_dict(&mut graph, &dict, true)?;
    describe::restore_modes(&mut graph, text)?;
    Ok(graph)
}

/// [`graph_to_bytes`] into a file.
pub fn save_graph(graph: &Graph, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let bytes = graph_to_bytes(graph)?;
    std::fs::write(path, bytes).map_err(|e| {
        QflowError::Module(qnn::QnnError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    })
}

/// [`graph_from_bytes`] from a file.
pub fn load_graph(path: impl AsRef<Path>) -> Result<Graph> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| {
        QflowError::Module(qnn::QnnError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    })?;
    graph_from_bytes(&bytes)
}
