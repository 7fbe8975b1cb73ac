//! Two ways to build a [`Graph`]: a chain ([`SequentialBuilder`], PyTorch's `nn.Sequential`) and
//! arbitrary dataflow ([`FunctionalBuilder`]: skip connections, several inputs and outputs).
//! Both defer validation to `build()`, which returns the typed error.

use qnn::Module;

use super::{FunctionalOp, Graph, Node, Op};
use crate::error::Result;

/// Builds a chain: every node reads the previous one (the first reads the graph input); the
/// last node is the output.
#[derive(Debug)]
pub struct SequentialBuilder {
    input: String,
    nodes: Vec<Node>,
}

impl SequentialBuilder {
    /// A chain reading the graph input `input` (e.g. `"x"`).
    pub fn new(input: &str) -> Self {
        Self {
            input: input.to_string(),
            nodes: Vec::new(),
        }
    }

    fn prev(&self) -> String {
        self.nodes
            .last()
            .map_or_else(|| self.input.clone(), |n| n.name.clone())
    }

    /// Appends a layer named by its position (`"0"`, `"1"`, …, as `nn.Sequential` names them).
    pub fn push(self, module: impl Module) -> Self {
        let name = self.nodes.len().to_string();
        self.add(&name, module)
    }

    /// Appends a layer under `name` (a PyTorch module path such as `features.0` or `fc1`).
    pub fn add(mut self, name: &str, module: impl Module) -> Self {
        let prev = self.prev();
        self.nodes
            .push(Node::new(name, Op::module(module), &[&prev]));
        self
    }

    /// Appends an already boxed layer (or any [`Op`]) under `name`.
    pub fn add_op(mut self, name: &str, op: impl Into<Op>) -> Self {
        let prev = self.prev();
        self.nodes.push(Node::new(name, op, &[&prev]));
        self
    }

    /// Appends a single-input functional op under `name`.
    pub fn functional(self, name: &str, op: FunctionalOp) -> Self {
        self.add_op(name, op)
    }

    /// The validated graph.
    pub fn build(self) -> Result<Graph> {
        let out = self.prev();
        Graph::new(vec![self.input], self.nodes, vec![out])
    }
}

/// Builds any dataflow graph: declare inputs, add nodes that read named values, mark outputs.
///
/// ```
/// use qflow::{FunctionalBuilder, FunctionalOp};
/// use qnn::float::{Linear, ReLU};
/// use qnn::init::Rng;
///
/// let mut rng = Rng::new(0);
/// let mut b = FunctionalBuilder::new();
/// let x = b.input("x");
/// let h = b.module("fc1", Linear::new(4, 4, true, &mut rng), &[&x]);
/// let h = b.module("relu", ReLU::new(), &[&h]);
/// let y = b.functional("add", FunctionalOp::Add, &[&h, &x]); // skip connection
/// b.output(&y);
/// let graph = b.build()?;
/// assert_eq!(graph.consumers("x"), ["fc1", "add"]);
/// # Ok::<(), qflow::QflowError>(())
/// ```
#[derive(Debug, Default)]
pub struct FunctionalBuilder {
    inputs: Vec<String>,
    nodes: Vec<Node>,
    outputs: Vec<String>,
}

impl FunctionalBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a graph input; returns its name for use as a node input.
    pub fn input(&mut self, name: &str) -> String {
        self.inputs.push(name.to_string());
        name.to_string()
    }

    /// Adds a layer reading `inputs` (several inputs arrive as one tuple); returns its name.
    pub fn module(&mut self, name: &str, module: impl Module, inputs: &[&str]) -> String {
        self.op(name, Op::module(module), inputs)
    }

    /// Adds a functional op reading `inputs`; returns its name.
    pub fn functional(&mut self, name: &str, op: FunctionalOp, inputs: &[&str]) -> String {
        self.op(name, op, inputs)
    }

    /// Adds any [`Op`] (e.g. a boxed module) reading `inputs`; returns its name.
    pub fn op(&mut self, name: &str, op: impl Into<Op>, inputs: &[&str]) -> String {
        self.nodes.push(Node::new(name, op, inputs));
        name.to_string()
    }

    /// Marks a value (node or input) as a graph output, in order.
    pub fn output(&mut self, name: &str) {
        self.outputs.push(name.to_string());
    }

    /// The validated graph.
    pub fn build(self) -> Result<Graph> {
        Graph::new(self.inputs, self.nodes, self.outputs)
    }
}
