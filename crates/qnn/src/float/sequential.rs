//! `nn.Sequential`: children run in order, named `"0"`, `"1"`, … unless given names.

use crate::error::Result;
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef, Param};
use crate::value::Value;

/// Runs its children in order; backward runs them in reverse. Parameter names are
/// `"<child>.<name>"`, children named `"0"`, `"1"`, … by [`Sequential::push`] (as PyTorch).
#[derive(Default)]
pub struct Sequential {
    children: Vec<(String, Box<dyn Module>)>,
    training: bool,
}

impl std::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequential")
            .field(
                "children",
                &self
                    .children
                    .iter()
                    .map(|(n, m)| (n.as_str(), m.kind()))
                    .collect::<Vec<_>>(),
            )
            .field("training", &self.training)
            .finish()
    }
}

impl Sequential {
    /// An empty container in training mode.
    pub fn new() -> Self {
        Self {
            children: Vec::new(),
            training: true,
        }
    }

    /// Appends a child named by its position (`"0"`, `"1"`, …) and returns `self` for chaining.
    pub fn push(mut self, module: impl Module) -> Self {
        let name = self.children.len().to_string();
        self.children.push((name, Box::new(module)));
        self
    }

    /// Appends a child under an explicit name (PyTorch's `OrderedDict` form).
    pub fn push_named(mut self, name: &str, module: impl Module) -> Self {
        self.children.push((name.to_string(), Box::new(module)));
        self
    }

    /// Appends an already boxed child named by its position.
    pub fn push_boxed(&mut self, module: Box<dyn Module>) {
        let name = self.children.len().to_string();
        self.children.push((name, module));
    }

    /// Number of children.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// True without children.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// The children with their names, in order.
    pub fn children(&self) -> impl Iterator<Item = (&str, &dyn Module)> {
        self.children.iter().map(|(n, m)| (n.as_str(), m.as_ref()))
    }

    /// The child at `index`, mutably.
    pub fn child_mut(&mut self, index: usize) -> Option<&mut (dyn Module + 'static)> {
        self.children.get_mut(index).map(|(_, m)| m.as_mut())
    }
}

impl Module for Sequential {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Sequential
    }

    fn repr_children(&self) -> Vec<(String, crate::repr::ReprTree)> {
        crate::repr::named_children_repr(self.children())
    }

    fn param_dtype(&self, name: &str) -> Option<crate::repr::TensorDType> {
        crate::repr::child_param_dtype(self.children(), name)
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let mut x = input.clone();
        for (_, m) in &mut self.children {
            x = m.forward(&x)?;
        }
        Ok(x)
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        let mut g = grad_output.clone();
        for (_, m) in self.children.iter_mut().rev() {
            g = m.backward(&g)?;
        }
        Ok(g)
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param)) {
        for (name, m) in &self.children {
            m.visit_params(&mut |n, p| f(&format!("{name}.{n}"), p));
        }
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        for (name, m) in &mut self.children {
            m.visit_params_mut(&mut |n, p| f(&format!("{name}.{n}"), p));
        }
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        for (name, m) in &self.children {
            m.visit_buffers(&mut |n, b| f(&format!("{name}.{n}"), b));
        }
    }

    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        for (name, m) in &mut self.children {
            m.visit_buffers_mut(&mut |n, b| f(&format!("{name}.{n}"), b));
        }
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
        for (_, m) in &mut self.children {
            m.train(mode);
        }
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn half(&mut self) -> Result<()> {
        self.children.iter_mut().try_for_each(|(_, m)| m.half())
    }

    fn param_bytes(&self) -> usize {
        self.children.iter().map(|(_, m)| m.param_bytes()).sum()
    }

    fn after_load(&mut self) -> Result<()> {
        self.children
            .iter_mut()
            .try_for_each(|(_, m)| m.after_load())
    }
}
