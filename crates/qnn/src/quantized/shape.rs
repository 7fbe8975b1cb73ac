//! Shape-only quantized modules: `Flatten` (PyTorch's logical NCHW order) and `Dropout`
//! (identity in inference, as `torch.ao.nn.quantized.Dropout`).

use qtensor::Layout;

use super::common::{not_trainable, quint8_input, quint8_output, row_major_bytes};
use crate::error::Result;
use crate::float;
use crate::module::{Module, ModuleKind};
use crate::value::Value;

const FLATTEN: &str = "QuantizedFlatten";
const DROPOUT: &str = "QuantizedDropout";

/// `nn.Flatten` on a quint8 tensor: merges `start_dim..=end_dim`. A channels-last input is
/// reordered first, so the result is in logical (NCHW) order like PyTorch's; the output is
/// row-major with the input's qparams.
#[derive(Clone, Debug)]
pub struct Flatten {
    shape: float::Flatten,
    training: bool,
}

impl Flatten {
    /// Flattens `start_dim..=end_dim` (negative counts from the end; PyTorch's defaults 1, -1).
    pub fn new(start_dim: isize, end_dim: isize) -> Self {
        Self {
            shape: float::Flatten::new(start_dim, end_dim),
            training: false,
        }
    }
}

impl Flatten {
    /// `(start_dim, end_dim)` as given.
    pub fn dims(&self) -> (isize, isize) {
        self.shape.dims()
    }

    /// Converts a float `Flatten` (same dims).
    pub fn from_float(float: &float::Flatten) -> Self {
        Self {
            shape: float.clone(),
            training: false,
        }
    }
}

impl Default for Flatten {
    fn default() -> Self {
        Self::new(1, -1)
    }
}

impl Module for Flatten {
    fn kind(&self) -> ModuleKind {
        ModuleKind::QuantizedFlatten
    }

    fn extra_repr(&self) -> String {
        self.shape.extra_repr()
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let a = quint8_input(FLATTEN, input)?;
        let out_shape = self.shape.out_shape(a.shape())?;
        let bytes = row_major_bytes(&a)?.into_owned();
        Ok(Value::Quantized(quint8_output(
            bytes,
            &out_shape,
            Layout::RowMajor,
            f64::from(a.scale),
            i64::from(a.zero_point),
        )?))
    }

    fn backward(&mut self, _grad_output: &Value) -> Result<Value> {
        not_trainable(FLATTEN)
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}

/// Dropout in a quantized model: the identity (quantized models run in inference).
#[derive(Clone, Debug, Default)]
pub struct Dropout {
    p: f32,
    training: bool,
}

impl Dropout {
    /// A dropout layer with probability `p` (kept for reference; it does not act).
    pub fn new(p: f32) -> Self {
        Self { p, training: false }
    }

    /// Converts a float dropout layer.
    pub fn from_float(float: &float::Dropout) -> Self {
        Self::new(float.p())
    }

    /// The probability of the float layer this came from.
    pub fn p(&self) -> f32 {
        self.p
    }
}

impl Module for Dropout {
    fn kind(&self) -> ModuleKind {
        ModuleKind::QuantizedDropout
    }

    fn extra_repr(&self) -> String {
        format!("p={}, inplace=False", crate::repr::py_float32(self.p()))
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let a = quint8_input(DROPOUT, input)?;
        Ok(Value::Quantized(a.q.clone()))
    }

    fn backward(&mut self, _grad_output: &Value) -> Result<Value> {
        not_trainable(DROPOUT)
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}
