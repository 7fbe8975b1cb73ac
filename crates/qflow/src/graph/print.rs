//! Printing and inspecting a [`Graph`] the way PyTorch prints a module: `Display` writes one
//! `name: Kind(args)` line per node, with PyTorch's class names and `extra_repr` argument
//! formats (from [`qnn::Module::type_name`] / [`qnn::Module::extra_repr`]); functional nodes
//! print their op with the values they read. [`Graph::named_parameters`] lists every
//! parameter and buffer with the dtype it is stored in.

use std::fmt;

use qnn::repr::{NamedParameter, module_repr, named_parameters, py_float32};

use super::Graph;
use super::functional::FunctionalOp;
use super::node::{Node, Op};

impl fmt::Display for Graph {
    /// ```text
    /// Graph(inputs=[x])
    ///   conv1: Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))
    ///   relu1: ReLU()
    ///   flatten: flatten(pool2, start_dim=1, end_dim=-1)
    ///   fc1: Linear(in_features=400, out_features=120, bias=True)
    ///   outputs: fc1
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Graph(inputs=[{}])", self.inputs.join(", "))?;
        for n in &self.nodes {
            writeln!(f, "  {}: {}", n.name, node_repr(n))?;
        }
        write!(f, "  outputs: {}", self.outputs.join(", "))
    }
}

/// The text after `name: ` in a graph's printout: a module's `Type(extra_repr)` or a
/// functional op with its inputs and arguments (`add(conv2, x)`, `cat(a, b, dim=1)`).
pub fn node_repr(node: &Node) -> String {
    match &node.op {
        Op::Module(m) => module_repr(m.as_ref()),
        Op::Functional(func) => functional_repr(func.op(), &node.inputs),
    }
}

fn functional_repr(op: &FunctionalOp, inputs: &[String]) -> String {
    let mut args: Vec<String> = inputs.to_vec();
    match op {
        FunctionalOp::AddScalar(v) | FunctionalOp::MulScalar(v) => args.push(py_float32(*v)),
        FunctionalOp::Cat { dim } => args.push(format!("dim={dim}")),
        FunctionalOp::Flatten { start_dim, end_dim } => {
            args.push(format!("start_dim={start_dim}, end_dim={end_dim}"));
        }
        FunctionalOp::Reshape(shape) => {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            args.push(format!("shape=({})", dims.join(", ")));
        }
        FunctionalOp::GetItem(i) => args.push(i.to_string()),
        FunctionalOp::Add | FunctionalOp::AddRelu | FunctionalOp::Mul | FunctionalOp::Matmul => {}
    }
    format!("{}({})", op.name(), args.join(", "))
}

impl Graph {
    /// Every parameter and buffer, named `<node>.<state-dict name>` (the graph's state-dict
    /// names), with the dtype it is stored in and its shape: after [`qnn::Module::half`] the
    /// halved weights are `f16`, after `convert` the quantized weights are `qint8`.
    pub fn named_parameters(&self) -> Vec<NamedParameter> {
        let mut out = Vec::new();
        for n in &self.nodes {
            if let Some(m) = n.module() {
                out.extend(named_parameters(m).into_iter().map(|mut p| {
                    p.name = format!("{}.{}", n.name, p.name);
                    p
                }));
            }
        }
        out
    }
}
