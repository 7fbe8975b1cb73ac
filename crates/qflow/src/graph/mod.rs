//! The model graph: named nodes in topological order, each a [`qnn`] module or a functional op,
//! reading graph inputs or other nodes.
//!
//! - [`Graph`]: validated construction ([`Graph::new`]), lookup by name and by kind, and the
//!   structural edits passes need ([`Graph::replace_op`], [`Graph::insert_after`],
//!   [`Graph::insert_before`], [`Graph::remove_node`], [`Graph::add_node`]).
//! - [`exec`](self): forward in topological order, backward in reverse with gradient
//!   accumulation at fan-out; [`Graph`] implements [`qnn::Module`], so optimizers and state
//!   dicts work on it unchanged.
//! - [`builder`](self): [`SequentialBuilder`] and [`FunctionalBuilder`].
//! - [`rewrite`](self): typed module swaps by type or kind.
//! - [`print`](self): `Display` as PyTorch prints a module (one `name: Kind(args)` line per
//!   node) and [`Graph::named_parameters`] with storage dtypes.

mod builder;
mod exec;
mod functional;
mod node;
mod print;
mod rewrite;

pub use builder::{FunctionalBuilder, SequentialBuilder};
pub use functional::{Functional, FunctionalOp};
pub use node::{Node, Op};
pub use print::node_repr;

use std::collections::{HashMap, HashSet};
use std::fmt;

use qnn::ModuleKind;

use crate::error::{QflowError, Result};

/// Where a node's input comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Src {
    /// Graph input `i`.
    Input(usize),
    /// Node `i` (position in topological order).
    Node(usize),
}

/// A model: named graph inputs, nodes kept in topological order, and named outputs (nodes or
/// inputs). Every structural edit re-validates: names are unique and non-empty, every read
/// value exists, there is no cycle, functional ops get the number of inputs they take.
pub struct Graph {
    inputs: Vec<String>,
    nodes: Vec<Node>,
    outputs: Vec<String>,
    index: HashMap<String, usize>,
    sources: Vec<Vec<Src>>,
    output_sources: Vec<Src>,
    training: bool,
    tape: Option<exec::Tape>,
}

impl fmt::Debug for Graph {
    /// The structure with each node in its graph-file form (`Conv2d in=1 out=6 …`, see
    /// [`crate::io`]) and its inputs; `Display` is the PyTorch-style printout.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| {
                let op = match crate::io::describe_op(n) {
                    Ok((op, args)) => {
                        let args: Vec<String> =
                            args.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        format!("{op} {}", args.join(" "))
                    }
                    Err(_) => n.op.describe(),
                };
                format!("{}: {} <- {}", n.name, op.trim_end(), n.inputs.join(", "))
            })
            .collect();
        f.debug_struct("Graph")
            .field("inputs", &self.inputs)
            .field("nodes", &nodes)
            .field("outputs", &self.outputs)
            .field("training", &self.training)
            .finish()
    }
}

impl Graph {
    /// A validated graph. `nodes` may come in any order; they are kept in a topological order
    /// that preserves the given order where the dataflow allows. Modules keep their own
    /// train/eval mode; the graph starts in training mode if any module is training.
    pub fn new(inputs: Vec<String>, nodes: Vec<Node>, outputs: Vec<String>) -> Result<Self> {
        let training = nodes
            .iter()
            .filter_map(|n| n.module())
            .any(|m| m.is_training());
        let mut g = Graph {
            inputs,
            nodes,
            outputs,
            index: HashMap::new(),
            sources: Vec::new(),
            output_sources: Vec::new(),
            training,
            tape: None,
        };
        g.rebuild()?;
        Ok(g)
    }

    /// Re-validates and re-sorts after a structural change. On error nothing was reordered.
    fn rebuild(&mut self) -> Result<()> {
        self.tape = None;
        if self.inputs.is_empty() || self.outputs.is_empty() {
            return Err(QflowError::NoInputsOrOutputs);
        }
        let mut seen = HashSet::new();
        for name in self.inputs.iter().chain(self.nodes.iter().map(|n| &n.name)) {
            if name.is_empty() {
                return Err(QflowError::EmptyName);
            }
            if !seen.insert(name.as_str()) {
                return Err(QflowError::DuplicateName { name: name.clone() });
            }
        }
        let pos: HashMap<&str, usize> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_str(), i))
            .collect();
        for n in &self.nodes {
            for i in &n.inputs {
                if !seen.contains(i.as_str()) {
                    return Err(QflowError::UnknownInput {
                        node: n.name.clone(),
                        input: i.clone(),
                    });
                }
            }
            if let Op::Functional(func) = &n.op {
                let (lo, hi) = func.op().arity();
                if n.inputs.len() < lo || n.inputs.len() > hi {
                    return Err(arity_error(n, lo, hi));
                }
            } else if n.inputs.is_empty() {
                return Err(arity_error(n, 1, usize::MAX));
            }
        }
        for o in &self.outputs {
            if !seen.contains(o.as_str()) {
                return Err(QflowError::UnknownOutput { name: o.clone() });
            }
        }
        // Kahn's algorithm, always taking the earliest ready node (stable order).
        let n = self.nodes.len();
        let mut indegree = vec![0usize; n];
        let mut consumers = vec![Vec::new(); n];
        for (i, node) in self.nodes.iter().enumerate() {
            for inp in &node.inputs {
                if let Some(&p) = pos.get(inp.as_str()) {
                    indegree[i] += 1;
                    consumers[p].push(i);
                }
            }
        }
        let mut ready: std::collections::BTreeSet<usize> =
            (0..n).filter(|&i| indegree[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for &c in &consumers[i] {
                indegree[c] -= 1;
                if indegree[c] == 0 {
                    ready.insert(c);
                }
            }
        }
        if order.len() != n {
            let placed: HashSet<usize> = order.iter().copied().collect();
            return Err(QflowError::Cycle {
                nodes: (0..n)
                    .filter(|i| !placed.contains(i))
                    .map(|i| self.nodes[i].name.clone())
                    .collect(),
            });
        }
        let mut slots: Vec<Option<Node>> = std::mem::take(&mut self.nodes)
            .into_iter()
            .map(Some)
            .collect();
        self.nodes = order.iter().filter_map(|&i| slots[i].take()).collect();
        self.index = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        let src = |name: &str| -> Src {
            match self.index.get(name) {
                Some(&i) => Src::Node(i),
                None => Src::Input(self.inputs.iter().position(|x| x == name).unwrap_or(0)),
            }
        };
        self.sources = self
            .nodes
            .iter()
            .map(|n| n.inputs.iter().map(|i| src(i)).collect())
            .collect();
        self.output_sources = self.outputs.iter().map(|o| src(o)).collect();
        Ok(())
    }

    /// The graph inputs' names.
    pub fn inputs(&self) -> &[String] {
        &self.inputs
    }

    /// The graph outputs' names (nodes or inputs).
    pub fn outputs(&self) -> &[String] {
        &self.outputs
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True without nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The nodes in topological order.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter()
    }

    /// The nodes in topological order, mutably (ops and qconfigs; not names or wiring).
    pub fn nodes_mut(&mut self) -> impl Iterator<Item = &mut Node> {
        self.tape = None;
        self.nodes.iter_mut()
    }

    /// The node names in topological order.
    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    /// The node called `name`, mutably.
    pub fn node_mut(&mut self, name: &str) -> Option<&mut Node> {
        self.tape = None;
        self.index.get(name).map(|&i| &mut self.nodes[i])
    }

    /// The node called `name`, or [`QflowError::UnknownNode`].
    pub fn try_node(&self, name: &str) -> Result<&Node> {
        self.node(name).ok_or_else(|| unknown(name))
    }

    /// The module of node `name` as a concrete layer, if the node exists and holds a `T`.
    pub fn module_as<T: qnn::Module>(&self, name: &str) -> Option<&T> {
        self.node(name)?.module_as::<T>()
    }

    /// The module of node `name` as a concrete layer, mutably.
    pub fn module_as_mut<T: qnn::Module>(&mut self, name: &str) -> Option<&mut T> {
        self.node_mut(name)?.module_as_mut::<T>()
    }

    /// The nodes holding a module of `kind`, in topological order.
    pub fn nodes_of_kind(&self, kind: ModuleKind) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(move |n| n.kind() == Some(kind))
    }

    /// The names of the nodes that read `name` (a node or a graph input), in order.
    pub fn consumers(&self, name: &str) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| n.inputs.iter().any(|i| i == name))
            .map(|n| n.name.as_str())
            .collect()
    }

    /// True if `name` is one of the graph outputs.
    pub fn is_output(&self, name: &str) -> bool {
        self.outputs.iter().any(|o| o == name)
    }

    /// True in training mode (see [`qnn::Module::train`]).
    pub fn training(&self) -> bool {
        self.training
    }

    /// Swaps the op of node `name`, returning the old one. A functional op must accept the
    /// node's number of inputs.
    pub fn replace_op(&mut self, name: &str, op: impl Into<Op>) -> Result<Op> {
        let op = op.into();
        let &i = self.index.get(name).ok_or_else(|| unknown(name))?;
        check_arity(&self.nodes[i].name, &op, self.nodes[i].inputs.len())?;
        self.tape = None;
        Ok(std::mem::replace(&mut self.nodes[i].op, op))
    }

    /// Appends a node (its inputs must exist); the graph outputs are unchanged.
    pub fn add_node(&mut self, node: Node) -> Result<()> {
        self.nodes.push(node);
        let r = self.rebuild();
        if r.is_err() {
            self.nodes.pop();
            self.rebuild()?;
        }
        r
    }

    /// Sets the graph outputs.
    pub fn set_outputs(&mut self, outputs: Vec<String>) -> Result<()> {
        let old = std::mem::replace(&mut self.outputs, outputs);
        let r = self.rebuild();
        if r.is_err() {
            self.outputs = old;
            self.rebuild()?;
        }
        r
    }

    /// Sets the inputs node `name` reads (re-validated: no unknown names, no cycle).
    pub fn set_node_inputs(&mut self, name: &str, inputs: &[&str]) -> Result<()> {
        let &i = self.index.get(name).ok_or_else(|| unknown(name))?;
        let new: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
        let node_name = self.nodes[i].name.clone();
        let old = std::mem::replace(&mut self.nodes[i].inputs, new);
        let r = self.rebuild();
        if r.is_err() {
            if let Some(&j) = self.index.get(&node_name) {
                self.nodes[j].inputs = old;
            }
            self.rebuild()?;
        }
        r
    }

    fn check_new_name(&self, name: &str) -> Result<()> {
        if name.is_empty() {
            return Err(QflowError::EmptyName);
        }
        if self.index.contains_key(name) || self.inputs.iter().any(|i| i == name) {
            return Err(QflowError::DuplicateName { name: name.into() });
        }
        Ok(())
    }

    fn has_value(&self, name: &str) -> bool {
        self.index.contains_key(name) || self.inputs.iter().any(|i| i == name)
    }

    /// Inserts node `name` computing `op` on the value `target` (a node or a graph input) and
    /// makes every reader of `target` — other nodes and the graph outputs — read the new node
    /// instead. This is how observers and quant stubs are placed after a value.
    pub fn insert_after(&mut self, target: &str, name: &str, op: impl Into<Op>) -> Result<()> {
        let op = op.into();
        if !self.has_value(target) {
            return Err(unknown(target));
        }
        self.check_new_name(name)?;
        check_arity(name, &op, 1)?;
        for n in &mut self.nodes {
            for i in &mut n.inputs {
                if i == target {
                    *i = name.to_string();
                }
            }
        }
        for o in &mut self.outputs {
            if o == target {
                *o = name.to_string();
            }
        }
        self.nodes.push(Node::new(name, op, &[target]));
        self.rebuild()
    }

    /// Inserts node `name` computing `op` between the single-input node `target` and its
    /// input: `x -> target` becomes `x -> name -> target`.
    pub fn insert_before(&mut self, target: &str, name: &str, op: impl Into<Op>) -> Result<()> {
        let op = op.into();
        let &i = self.index.get(target).ok_or_else(|| unknown(target))?;
        self.check_new_name(name)?;
        check_arity(name, &op, 1)?;
        if self.nodes[i].inputs.len() != 1 {
            return Err(QflowError::NotSingleInput {
                node: target.into(),
                inputs: self.nodes[i].inputs.len(),
            });
        }
        let source = std::mem::replace(&mut self.nodes[i].inputs[0], name.to_string());
        self.nodes.push(Node::new(name, op, &[&source]));
        self.rebuild()
    }

    /// Removes the single-input node `name`; its readers and the graph outputs read its input
    /// instead. Returns the removed op (e.g. an observer whose statistics convert needs).
    pub fn remove_node(&mut self, name: &str) -> Result<Op> {
        let &i = self.index.get(name).ok_or_else(|| unknown(name))?;
        if self.nodes[i].inputs.len() != 1 {
            return Err(QflowError::NotSingleInput {
                node: name.into(),
                inputs: self.nodes[i].inputs.len(),
            });
        }
        let node = self.nodes.remove(i);
        let source = &node.inputs[0];
        for n in &mut self.nodes {
            for inp in &mut n.inputs {
                if inp == name {
                    *inp = source.clone();
                }
            }
        }
        for o in &mut self.outputs {
            if o == name {
                *o = source.clone();
            }
        }
        self.rebuild()?;
        Ok(node.op)
    }

    /// A node name not yet used in the graph: `base` itself, else `base_1`, `base_2`, … (for
    /// passes that insert observers or stubs).
    pub fn fresh_name(&self, base: &str) -> String {
        if !self.has_value(base) {
            return base.to_string();
        }
        (1..)
            .map(|i| format!("{base}_{i}"))
            .find(|n| !self.has_value(n))
            .unwrap_or_else(|| base.to_string())
    }

    pub(crate) fn set_training_flag(&mut self, training: bool) {
        self.training = training;
    }

    pub(crate) fn node_at_mut(&mut self, i: usize) -> &mut Node {
        &mut self.nodes[i]
    }

    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
}

fn unknown(name: &str) -> QflowError {
    QflowError::UnknownNode { name: name.into() }
}

fn arity_error(n: &Node, lo: usize, hi: usize) -> QflowError {
    let expected = match (lo, hi) {
        (l, h) if l == h => l.to_string(),
        (l, usize::MAX) => format!("at least {l}"),
        (l, h) => format!("{l} to {h}"),
    };
    QflowError::Arity {
        node: n.name.clone(),
        op: n.op.describe(),
        expected,
        got: n.inputs.len(),
    }
}

fn check_arity(name: &str, op: &Op, got: usize) -> Result<()> {
    let (lo, hi) = match op {
        Op::Functional(f) => f.op().arity(),
        Op::Module(_) => (1, usize::MAX),
    };
    if got < lo || got > hi {
        let probe = Node {
            name: name.into(),
            op: Op::functional(FunctionalOp::Add),
            inputs: vec![String::new(); got],
            qconfig: None,
        };
        let mut e = arity_error(&probe, lo, hi);
        if let QflowError::Arity { op: o, .. } = &mut e {
            *o = op.describe();
        }
        return Err(e);
    }
    Ok(())
}
