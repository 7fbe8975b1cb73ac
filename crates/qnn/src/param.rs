//! [`Param`]: a trainable tensor with its accumulated gradient, and buffer references.

use qtensor::Tensor;

/// A trainable parameter: its value and the gradient accumulated by `backward` calls since the
/// last [`Param::zero_grad`].
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// The parameter's value.
    pub value: Tensor<f32>,
    /// The accumulated gradient, same shape as `value`.
    pub grad: Tensor<f32>,
}

impl Param {
    /// A parameter with a zero gradient.
    pub fn new(value: Tensor<f32>) -> Self {
        let grad = Tensor::zeros(value.shape());
        Self { value, grad }
    }

    /// The parameter's shape.
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    /// Resets the gradient to zero.
    pub fn zero_grad(&mut self) {
        self.grad.data_mut().fill(0.0);
    }
}

/// A read-only view of a non-trainable state tensor (PyTorch's buffers).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BufferRef<'a> {
    /// An f32 buffer such as `running_mean`.
    F32(&'a Tensor<f32>),
    /// A 0-d int64 buffer such as `num_batches_tracked`.
    I64(&'a i64),
    /// An int8 tensor (quantized weights, as their integer representation).
    I8(&'a Tensor<i8>),
    /// A uint8 tensor (quint8 / quint4x2 storage).
    U8(&'a Tensor<u8>),
    /// An int32 tensor.
    I32(&'a Tensor<i32>),
    /// 1-d double values (scales, kept in `f64` as PyTorch keeps them).
    F64s(&'a [f64]),
    /// 1-d int64 values (zero points).
    I64s(&'a [i64]),
}

impl BufferRef<'_> {
    /// The buffer's shape (`[]` for a 0-d counter, `[len]` for the 1-d vectors).
    pub fn shape(&self) -> Vec<usize> {
        match self {
            BufferRef::F32(t) => t.shape().to_vec(),
            BufferRef::I64(_) => Vec::new(),
            BufferRef::I8(t) => t.shape().to_vec(),
            BufferRef::U8(t) => t.shape().to_vec(),
            BufferRef::I32(t) => t.shape().to_vec(),
            BufferRef::F64s(v) => vec![v.len()],
            BufferRef::I64s(v) => vec![v.len()],
        }
    }
}

/// A mutable view of a buffer, for loading state.
#[derive(Debug)]
pub enum BufferMut<'a> {
    /// An f32 buffer such as `running_mean`.
    F32(&'a mut Tensor<f32>),
    /// A 0-d int64 buffer such as `num_batches_tracked`.
    I64(&'a mut i64),
    /// An int8 tensor.
    I8(&'a mut Tensor<i8>),
    /// A uint8 tensor.
    U8(&'a mut Tensor<u8>),
    /// An int32 tensor.
    I32(&'a mut Tensor<i32>),
    /// 1-d double values; loading requires the same length.
    F64s(&'a mut Vec<f64>),
    /// 1-d int64 values; loading requires the same length.
    I64s(&'a mut Vec<i64>),
}

impl BufferMut<'_> {
    /// The dtype name used in error messages (as [`crate::state_dict::StateEntry::dtype_name`]).
    pub fn dtype_name(&self) -> &'static str {
        match self {
            BufferMut::F32(_) => "f32",
            BufferMut::I64(_) => "i64 scalar",
            BufferMut::I8(_) => "i8",
            BufferMut::U8(_) => "u8",
            BufferMut::I32(_) => "i32",
            BufferMut::F64s(_) => "f64",
            BufferMut::I64s(_) => "i64",
        }
    }

    /// The buffer's shape (`[]` for a 0-d counter, `[len]` for the 1-d vectors).
    pub fn shape(&self) -> Vec<usize> {
        match self {
            BufferMut::F32(t) => t.shape().to_vec(),
            BufferMut::I64(_) => Vec::new(),
            BufferMut::I8(t) => t.shape().to_vec(),
            BufferMut::U8(t) => t.shape().to_vec(),
            BufferMut::I32(t) => t.shape().to_vec(),
            BufferMut::F64s(v) => vec![v.len()],
            BufferMut::I64s(v) => vec![v.len()],
        }
    }
}
