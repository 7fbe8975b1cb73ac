//! Shape-only layers: `nn.Flatten` and `nn.Identity`.

use super::util::{f32_grad, f32_input, resolve_dim, saved, tensor};
use crate::error::{QnnError, Result};
use crate::module::{Module, ModuleKind};
use crate::value::Value;

/// Merges dims `start_dim..=end_dim` into one (PyTorch's defaults: 1 and -1).
#[derive(Clone, Debug)]
pub struct Flatten {
    start_dim: isize,
    end_dim: isize,
    in_shape: Option<Vec<usize>>,
    training: bool,
}

impl Flatten {
    /// Flattens `start_dim..=end_dim` (negative counts from the end).
    pub fn new(start_dim: isize, end_dim: isize) -> Self {
        Self {
            start_dim,
            end_dim,
            in_shape: None,
            training: true,
        }
    }

    /// `(start_dim, end_dim)` as given to [`Flatten::new`] (for conversion to the quantized
    /// layer).
    pub fn dims(&self) -> (isize, isize) {
        (self.start_dim, self.end_dim)
    }

    /// The output shape for an input shape.
    pub fn out_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        if shape.is_empty() {
            return Ok(vec![1]);
        }
        let s = resolve_dim("Flatten", self.start_dim, shape.len())?;
        let e = resolve_dim("Flatten", self.end_dim, shape.len())?;
        if s > e {
            return Err(QnnError::InvalidConfig {
                module: "Flatten",
                reason: format!(
                    "start_dim {} comes after end_dim {} for a {}-d input",
                    self.start_dim,
                    self.end_dim,
                    shape.len()
                ),
            });
        }
        let mut out = shape[..s].to_vec();
        out.push(shape[s..=e].iter().product());
        out.extend_from_slice(&shape[e + 1..]);
        Ok(out)
    }
}

impl Default for Flatten {
    fn default() -> Self {
        Self::new(1, -1)
    }
}

impl Module for Flatten {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Flatten
    }

    fn extra_repr(&self) -> String {
        format!("start_dim={}, end_dim={}", self.start_dim, self.end_dim)
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let x = f32_input(input, "Flatten")?;
        let out = self.out_shape(x.shape())?;
        self.in_shape = Some(x.shape().to_vec());
        Ok(Value::F32(tensor(&out, x.into_data())?))
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        let in_shape = saved(&self.in_shape, "Flatten")?.clone();
        let g = f32_grad(grad_output, "Flatten", &self.out_shape(&in_shape)?)?;
        Ok(Value::F32(tensor(&in_shape, g.into_data())?))
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}

/// Returns its input unchanged (any value kind); gradients pass through.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    training: bool,
}

impl Identity {
    /// A new identity layer.
    pub fn new() -> Self {
        Self { training: true }
    }
}

impl Module for Identity {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Identity
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        Ok(input.clone())
    }

    fn forward_owned(&mut self, input: Value) -> Result<Value> {
        Ok(input)
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        Ok(grad_output.clone())
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}
