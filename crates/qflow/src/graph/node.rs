//! [`Node`] and [`Op`]: one named step of a graph and what it computes.

use qnn::{Module, ModuleKind};

use super::functional::{Functional, FunctionalOp};
use crate::qconfig::QConfig;

/// What a node computes: a boxed [`qnn`] module (any layer, including user-defined ones) or a
/// functional op.
pub enum Op {
    /// A layer. A module node with several inputs receives them as one [`qnn::Value::Tuple`].
    Module(Box<dyn Module>),
    /// A tensor function (add, cat, flatten, …).
    Functional(Functional),
}

impl Op {
    /// Wraps a layer.
    pub fn module(m: impl Module) -> Self {
        Op::Module(Box::new(m))
    }

    /// Wraps a functional op.
    pub fn functional(op: FunctionalOp) -> Self {
        Op::Functional(Functional::new(op))
    }

    /// The module's kind, or `None` for a functional op.
    pub fn kind(&self) -> Option<ModuleKind> {
        match self {
            Op::Module(m) => Some(m.kind()),
            Op::Functional(_) => None,
        }
    }

    /// A short description: the module kind (`Conv2d`) or `functional <name>`.
    pub fn describe(&self) -> String {
        match self {
            Op::Module(m) => format!("{:?}", m.kind()),
            Op::Functional(f) => format!("functional {}", f.op().name()),
        }
    }

    /// The module, if this op is one.
    pub fn as_module(&self) -> Option<&(dyn Module + 'static)> {
        match self {
            Op::Module(m) => Some(m.as_ref()),
            Op::Functional(_) => None,
        }
    }

    /// The module, mutably, if this op is one.
    pub fn as_module_mut(&mut self) -> Option<&mut (dyn Module + 'static)> {
        match self {
            Op::Module(m) => Some(m.as_mut()),
            Op::Functional(_) => None,
        }
    }

    /// The functional op, if this op is one.
    pub fn as_functional(&self) -> Option<&FunctionalOp> {
        match self {
            Op::Module(_) => None,
            Op::Functional(f) => Some(f.op()),
        }
    }
}

impl From<Box<dyn Module>> for Op {
    fn from(m: Box<dyn Module>) -> Self {
        Op::Module(m)
    }
}

impl From<FunctionalOp> for Op {
    fn from(op: FunctionalOp) -> Self {
        Op::functional(op)
    }
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Module(m) => write!(f, "Module({:?})", m.kind()),
            Op::Functional(func) => write!(f, "Functional({:?})", func.op()),
        }
    }
}

/// One named step of a [`crate::Graph`]: its op and the names of the values it reads (graph
/// inputs or other nodes). The name is a PyTorch module path (`features.0`, `layer1.0.conv1`)
/// and prefixes the node's parameters in the state dict.
#[derive(Debug)]
pub struct Node {
    pub(crate) name: String,
    pub(crate) op: Op,
    pub(crate) inputs: Vec<String>,
    pub(crate) qconfig: Option<QConfig>,
}

impl Node {
    /// A node named `name` computing `op` on `inputs`.
    pub fn new(name: impl Into<String>, op: impl Into<Op>, inputs: &[&str]) -> Self {
        Self {
            name: name.into(),
            op: op.into(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            qconfig: None,
        }
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The op.
    pub fn op(&self) -> &Op {
        &self.op
    }

    /// The op, mutably (to change a module's parameters or mode in place; to swap the op
    /// use [`crate::Graph::replace_op`]).
    pub fn op_mut(&mut self) -> &mut Op {
        &mut self.op
    }

    /// The names of the values it reads, in order.
    pub fn inputs(&self) -> &[String] {
        &self.inputs
    }

    /// The module kind, or `None` for a functional op.
    pub fn kind(&self) -> Option<ModuleKind> {
        self.op.kind()
    }

    /// The module, if the node holds one.
    pub fn module(&self) -> Option<&(dyn Module + 'static)> {
        self.op.as_module()
    }

    /// The module, mutably, if the node holds one.
    pub fn module_mut(&mut self) -> Option<&mut (dyn Module + 'static)> {
        self.op.as_module_mut()
    }

    /// The module as a concrete layer type, if it is a `T`.
    pub fn module_as<T: Module>(&self) -> Option<&T> {
        self.op.as_module()?.downcast_ref::<T>()
    }

    /// The module as a concrete layer type, mutably, if it is a `T`.
    pub fn module_as_mut<T: Module>(&mut self) -> Option<&mut T> {
        self.op.as_module_mut()?.downcast_mut::<T>()
    }

    /// The QConfig set by [`crate::passes::propagate_qconfig`] (`None`: not quantized).
    pub fn qconfig(&self) -> Option<&QConfig> {
        self.qconfig.as_ref()
    }

    /// Sets (or clears) the node's QConfig, as PyTorch's `module.qconfig = ...`.
    pub fn set_qconfig(&mut self, qconfig: Option<QConfig>) {
        self.qconfig = qconfig;
    }
}
