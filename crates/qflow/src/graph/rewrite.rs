//! Typed node rewriting: passes (and users) swap layers by concrete type or by kind, and the
//! downcasting happens here, once.
//!
//! ```
//! use qflow::{Op, SequentialBuilder};
//! use qnn::float::{Linear, ReLU};
//! use qnn::fused::LinearReLU;
//! use qnn::init::Rng;
//! use qnn::ModuleKind;
//!
//! let mut rng = Rng::new(0);
//! let mut g = SequentialBuilder::new("x")
//!     .add("fc1", Linear::new(3, 2, true, &mut rng))
//!     .add("fc2", Linear::new(2, 2, true, &mut rng))
//!     .build()?;
//! // Every Linear becomes a LinearReLU built from a copy of it.
//! let swapped = g.rewrite_modules(|_name, lin: &Linear| {
//!     Ok(Some(Op::module(LinearReLU::new(lin.clone(), ReLU::new()))))
//! })?;
//! assert_eq!(swapped, ["fc1", "fc2"]);
//! assert_eq!(g.nodes_of_kind(ModuleKind::LinearReLU).count(), 2);
//! # Ok::<(), qflow::QflowError>(())
//! ```

use qnn::float::Identity;
use qnn::{Module, ModuleKind};

use super::{Graph, Node, Op, check_arity};
use crate::error::{QflowError, Result, kind_name};

impl Graph {
    /// Calls `f` on every node in topological order; where it answers `Some(op)`, the node's op
    /// is replaced. Returns the names of the replaced nodes. The general form: passes should
    /// leave [`ModuleKind::Custom`] nodes alone unless told otherwise.
    pub fn rewrite_nodes(
        &mut self,
        mut f: impl FnMut(&Node) -> Result<Option<Op>>,
    ) -> Result<Vec<String>> {
        let mut replaced = Vec::new();
        for i in 0..self.len() {
            let node = self.node_at_mut(i);
            if let Some(op) = f(node)? {
                check_arity(&node.name, &op, node.inputs.len())?;
                node.op = op;
                replaced.push(node.name.clone());
            }
        }
        if !replaced.is_empty() {
            self.tape = None;
        }
        Ok(replaced)
    }

    /// For every node holding a `T`: `f(name, &layer)`; `Some(op)` replaces the node's op.
    /// Returns the names of the replaced nodes.
    pub fn rewrite_modules<T: Module>(
        &mut self,
        mut f: impl FnMut(&str, &T) -> Result<Option<Op>>,
    ) -> Result<Vec<String>> {
        self.rewrite_nodes(|n| match n.module_as::<T>() {
            Some(m) => f(&n.name, m),
            None => Ok(None),
        })
    }

    /// For every node holding a module of `kind`: `f(name, &module)`; `Some(op)` replaces it.
    pub fn rewrite_kind(
        &mut self,
        kind: ModuleKind,
        mut f: impl FnMut(&str, &dyn Module) -> Result<Option<Op>>,
    ) -> Result<Vec<String>> {
        self.rewrite_nodes(|n| match n.module() {
            Some(m) if m.kind() == kind => f(&n.name, m),
            _ => Ok(None),
        })
    }

    /// Moves the `T` out of node `name`, leaving an [`Identity`] in its place (to be replaced
    /// with [`Graph::replace_op`]): for conversions that consume the float layer.
    pub fn take_module<T: Module>(&mut self, name: &str) -> Result<T> {
        let i = self
            .index_of(name)
            .ok_or_else(|| QflowError::UnknownNode { name: name.into() })?;
        let node = self.node_at_mut(i);
        let wrong = |node: &Node| QflowError::WrongModule {
            node: node.name.clone(),
            expected: std::any::type_name::<T>()
                .rsplit("::")
                .next()
                .unwrap_or("?")
                .into(),
            got: node.kind().map_or_else(|| node.op.describe(), kind_name),
        };
        if node.module_as::<T>().is_none() {
            return Err(wrong(node));
        }
        let mut placeholder = Identity::new();
        placeholder.train(node.module().is_some_and(|m| m.is_training()));
        let old = std::mem::replace(&mut node.op, Op::module(placeholder));
        self.tape = None;
        let Op::Module(boxed) = old else {
            unreachable!("checked to be a module above")
        };
        let any: Box<dyn std::any::Any> = boxed;
        any.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| QflowError::WrongModule {
                node: name.into(),
                expected: std::any::type_name::<T>().into(),
                got: "another module".into(),
            })
    }
}
