//! `nn.Softmax` and `nn.LogSoftmax` along one dimension.

use qtensor::Tensor;

use super::util::{f32_grad, f32_input, resolve_dim, saved, split_at_dim};
use crate::error::Result;
use crate::module::{Module, ModuleKind};
use crate::value::Value;

/// Softmax (or log-softmax) of every line along `dim` of row-major `x`, max-subtracted.
fn softmax_lines(x: &mut [f32], shape: &[usize], dim: usize, log: bool) {
    let (outer, n, inner) = split_at_dim(shape, dim);
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * n + k) * inner + i;
            let max = (0..n).map(|k| x[at(k)]).fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = (0..n).map(|k| (x[at(k)] - max).exp()).sum();
            if log {
                let lse = sum.ln();
                for k in 0..n {
                    x[at(k)] = x[at(k)] - max - lse;
                }
            } else {
                for k in 0..n {
                    x[at(k)] = (x[at(k)] - max).exp() / sum;
                }
            }
        }
    }
}

/// The gradient of softmax (`log == false`: `y (g - Σ g y)`) or log-softmax (`g - exp(y) Σ g`).
fn softmax_backward(g: &mut [f32], y: &[f32], shape: &[usize], dim: usize, log: bool) {
    let (outer, n, inner) = split_at_dim(shape, dim);
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * n + k) * inner + i;
            if log {
                let s: f32 = (0..n).map(|k| g[at(k)]).sum();
                for k in 0..n {
                    g[at(k)] -= y[at(k)].exp() * s;
                }
            } else {
                let s: f32 = (0..n).map(|k| g[at(k)] * y[at(k)]).sum();
                for k in 0..n {
                    g[at(k)] = y[at(k)] * (g[at(k)] - s);
                }
            }
        }
    }
}

macro_rules! softmax_module {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $kind:ident, $log:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $ty {
            dim: isize,
            output: Option<Tensor<f32>>,
            training: bool,
        }

        impl $ty {
            /// A new layer along `dim` (negative counts from the end, as in PyTorch).
            pub fn new(dim: isize) -> Self {
                Self { dim, output: None, training: true }
            }

            /// The dimension the layer normalizes over.
            pub fn dim(&self) -> isize {
                self.dim
            }

            /// The forward computation on a tensor, without saving anything for backward.
            pub fn apply(&self, x: &Tensor<f32>) -> Result<Tensor<f32>> {
                let dim = resolve_dim($name, self.dim, x.ndim())?;
                let mut y = x.clone();
                softmax_lines(y.data_mut(), x.shape(), dim, $log);
                Ok(y)
            }
        }

        impl Module for $ty {
            fn kind(&self) -> ModuleKind {
                ModuleKind::$kind
            }

            fn extra_repr(&self) -> String {
                format!("dim={}", self.dim)
            }

            fn forward(&mut self, input: &Value) -> Result<Value> {
                let x = f32_input(input, $name)?;
                let y = self.apply(&x)?;
                self.output = Some(y.clone());
                Ok(Value::F32(y))
            }

            fn backward(&mut self, grad_output: &Value) -> Result<Value> {
                let y = saved(&self.output, $name)?;
                let mut g = f32_grad(grad_output, $name, y.shape())?;
                let dim = resolve_dim($name, self.dim, y.ndim())?;
                softmax_backward(g.data_mut(), y.data(), y.shape(), dim, $log);
                Ok(Value::F32(g))
            }

            fn train(&mut self, mode: bool) {
                self.training = mode;
            }

            fn is_training(&self) -> bool {
                self.training
            }
        }
    };
}

softmax_module!(
    /// `exp(x_i - max) / Σ exp(x_j - max)` along `dim`.
    Softmax, "Softmax", Softmax, false
);
softmax_module!(
    /// `x_i - max - log Σ exp(x_j - max)` along `dim`.
    LogSoftmax, "LogSoftmax", LogSoftmax, true
);
