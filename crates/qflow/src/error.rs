//! The crate's error type.

use qnn::{ModuleKind, QnnError};

/// Result alias used by every fallible function of this crate.
pub type Result<T> = std::result::Result<T, QflowError>;

/// Every way building, running, rewriting or saving a graph can fail. Messages name the nodes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QflowError {
    /// Two nodes (or a node and a graph input) share a name.
    #[error("duplicate node name `{name}`")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// A node or input with an empty name.
    #[error("node and input names must not be empty")]
    EmptyName,
    /// A node reads a value that is neither a graph input nor another node.
    #[error("node `{node}` reads `{input}`, which is neither a graph input nor a node")]
    UnknownInput {
        /// The reading node.
        node: String,
        /// The unknown name.
        input: String,
    },
    /// A graph output that names no node or input.
    #[error("graph output `{name}` is neither a graph input nor a node")]
    UnknownOutput {
        /// The unknown name.
        name: String,
    },
    /// A name that is not a node of the graph.
    #[error("no node named `{name}`")]
    UnknownNode {
        /// The name asked for.
        name: String,
    },
    /// The nodes' inputs form a cycle.
    #[error("the graph has a cycle through {nodes:?}")]
    Cycle {
        /// Nodes on or behind the cycle (those that could not be ordered).
        nodes: Vec<String>,
    },
    /// A graph without inputs or without outputs.
    #[error("a graph needs at least one input and one output")]
    NoInputsOrOutputs,
    /// A node with the wrong number of inputs for its op.
    #[error("node `{node}` ({op}) takes {expected} inputs, got {got}")]
    Arity {
        /// The node.
        node: String,
        /// Its op.
        op: String,
        /// The accepted count, e.g. `"2"` or `"at least 1"`.
        expected: String,
        /// The given count.
        got: usize,
    },
    /// A run given the wrong number of input values.
    #[error("the graph takes {expected} inputs, got {got}")]
    InputCount {
        /// Number of graph inputs.
        expected: usize,
        /// Number of values given.
        got: usize,
    },
    /// A node's op failed while running.
    #[error("node `{node}`: {source}")]
    Node {
        /// The node.
        node: String,
        /// The module's or functional op's error.
        #[source]
        source: QnnError,
    },
    /// A node does not hold the module kind a caller asked for.
    #[error("node `{node}` is a {got}, expected {expected}")]
    WrongModule {
        /// The node.
        node: String,
        /// What was expected.
        expected: String,
        /// What the node holds (`ModuleKind` debug name or `functional <op>`).
        got: String,
    },
    /// An operation that needs a single-input node (remove, insert before) on another node.
    #[error("node `{node}` has {inputs} inputs; this operation needs exactly one")]
    NotSingleInput {
        /// The node.
        node: String,
        /// Its number of inputs.
        inputs: usize,
    },
    /// A list of nodes that cannot be fused, and why.
    #[error("cannot fuse {nodes:?}: {reason}")]
    Fuse {
        /// The node names given.
        nodes: Vec<String>,
        /// What is wrong (pattern, dataflow or mode).
        reason: String,
    },
    /// A saved graph file that cannot be read (malformed metadata, unknown op…).
    #[error("graph file: {0}")]
    Format(String),
    /// A graph file written by a newer format version.
    #[error("graph file format version {found} is newer than the supported version {supported}")]
    UnsupportedVersion {
        /// The file's version.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A graph file whose bytes are not what its header promises: cut short, or damaged
    /// (checksum or length mismatch).
    #[error("graph file is corrupt: {what}: expected {expected}, found {actual}")]
    Corrupt {
        /// What was checked (`tensor data length`, `CRC-32`, …).
        what: &'static str,
        /// The value the file's metadata records.
        expected: String,
        /// The value computed from the bytes read.
        actual: String,
    },
    /// A pass that needs a prepared graph (`convert` before `prepare`, toggles on a graph
    /// without observers).
    #[error("{pass} needs a prepared graph: {reason}")]
    NotPrepared {
        /// The pass.
        pass: &'static str,
        /// What is missing.
        reason: String,
    },
    /// A graph that already holds observers or fake-quant modules given to `prepare` again.
    #[error("node `{node}` is already an observer or fake-quant: the graph is already prepared")]
    AlreadyPrepared {
        /// The first observer or fake-quant node found.
        node: String,
    },
    /// An observer that has seen no data when `convert` needs its qparams.
    #[error("observer `{node}` has seen no data: run calibration before convert")]
    NotCalibrated {
        /// The observer node.
        node: String,
    },
    /// A node a pass cannot handle as configured (an unsupported qconfig, a missing
    /// quantized counterpart, a quantized value where a float one is needed…).
    #[error("node `{node}`: {reason}")]
    Unsupported {
        /// The node.
        node: String,
        /// Why.
        reason: String,
    },
    /// The executor found a node's input value already freed: an internal invariant broke
    /// (values are freed only after their last reader), reported instead of feeding the node
    /// some other value.
    #[error("node `{node}` reads `{input}`, whose value was already freed (executor bug)")]
    ValueFreed {
        /// The reading node.
        node: String,
        /// The node whose value is gone.
        input: String,
    },
    /// A PyTorch state dict that does not fit the graph ([`crate::load_torch_state_dict`]):
    /// `source` is `MissingKey`, `KeyShapeMismatch` (naming the key and both shapes),
    /// `KeyDtypeMismatch` or `UnexpectedKey`.
    #[error("PyTorch state dict, node `{node}`: {source}")]
    TorchStateDict {
        /// The graph node the key belongs to (`?` for a key that matches no node).
        node: String,
        /// The key-level error.
        #[source]
        source: QnnError,
    },
    /// An error from a module outside any node (state dicts, file I/O, module construction).
    #[error(transparent)]
    Module(#[from] QnnError),
}

/// The display name of a module kind, e.g. `Conv2d`.
pub(crate) fn kind_name(kind: ModuleKind) -> String {
    format!("{kind:?}")
}
