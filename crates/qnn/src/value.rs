//! [`Value`]: what flows between modules.

use half::f16;
use qtensor::{QTensor, Tensor};

use crate::error::{QnnError, Result};

/// A module input or output: a float tensor, an f16 tensor, a quantized tensor, or a tuple of
/// values (for modules with several outputs).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// An f32 tensor.
    F32(Tensor<f32>),
    /// An f16 tensor.
    F16(Tensor<f16>),
    /// A quantized tensor.
    Quantized(QTensor),
    /// An integer tensor (indices for `Embedding` / `EmbeddingBag`, bag offsets).
    I32(Tensor<i32>),
    /// Several values.
    Tuple(Vec<Value>),
}

impl Value {
    /// The kind name used in error messages: `"f32"`, `"f16"`, `"quantized"` or `"tuple"`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::F32(_) => "f32",
            Value::F16(_) => "f16",
            Value::Quantized(_) => "quantized",
            Value::I32(_) => "i32",
            Value::Tuple(_) => "tuple",
        }
    }

    /// The f32 tensor inside, or `WrongValueKind` naming `module`.
    pub fn as_f32(&self, module: &'static str) -> Result<&Tensor<f32>> {
        match self {
            Value::F32(t) => Ok(t),
            other => Err(QnnError::WrongValueKind {
                module,
                expected: "f32",
                got: other.kind_name(),
            }),
        }
    }

    /// The f32 tensor inside, by value, or `WrongValueKind` naming `module`.
    pub fn into_f32(self, module: &'static str) -> Result<Tensor<f32>> {
        match self {
            Value::F32(t) => Ok(t),
            other => Err(QnnError::WrongValueKind {
                module,
                expected: "f32",
                got: other.kind_name(),
            }),
        }
    }

    /// The i32 tensor inside, or `WrongValueKind` naming `module`.
    pub fn as_i32(&self, module: &'static str) -> Result<&Tensor<i32>> {
        match self {
            Value::I32(t) => Ok(t),
            other => Err(QnnError::WrongValueKind {
                module,
                expected: "i32",
                got: other.kind_name(),
            }),
        }
    }

    /// The "no gradient" value returned by `backward` for integer inputs: an empty tuple.
    pub fn no_grad() -> Self {
        Value::Tuple(Vec::new())
    }

    /// The shape of a tensor value; `None` for a tuple.
    pub fn shape(&self) -> Option<&[usize]> {
        match self {
            Value::F32(t) => Some(t.shape()),
            Value::F16(t) => Some(t.shape()),
            Value::Quantized(q) => Some(q.shape()),
            Value::I32(t) => Some(t.shape()),
            Value::Tuple(_) => None,
        }
    }
}

impl From<Tensor<f32>> for Value {
    fn from(t: Tensor<f32>) -> Self {
        Value::F32(t)
    }
}

impl From<Tensor<f16>> for Value {
    fn from(t: Tensor<f16>) -> Self {
        Value::F16(t)
    }
}

impl From<Tensor<i32>> for Value {
    fn from(t: Tensor<i32>) -> Self {
        Value::I32(t)
    }
}

impl From<QTensor> for Value {
    fn from(q: QTensor) -> Self {
        Value::Quantized(q)
    }
}
