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
}

impl BufferRef<'_> {
    /// The buffer's shape (`[]` for a 0-d counter).
    pub fn shape(&self) -> Vec<usize> {
        match self {
            BufferRef::F32(t) => t.shape().to_vec(),
            BufferRef::I64(_) => Vec::new(),
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
}
