//! The [`Module`] trait every layer implements, and [`ModuleKind`] for passes to match on.

use std::any::Any;

use crate::error::Result;
use crate::param::{BufferMut, BufferRef, Param};
use crate::value::Value;

/// What a module is, so that graph passes can match on layers without downcasting first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ModuleKind {
    /// [`crate::float::Linear`].
    Linear,
    /// [`crate::float::Conv1d`].
    Conv1d,
    /// [`crate::float::Conv2d`].
    Conv2d,
    /// [`crate::float::ConvTranspose2d`].
    ConvTranspose2d,
    /// [`crate::float::BatchNorm1d`].
    BatchNorm1d,
    /// [`crate::float::BatchNorm2d`].
    BatchNorm2d,
    /// [`crate::float::LayerNorm`].
    LayerNorm,
    /// [`crate::float::ReLU`].
    ReLU,
    /// [`crate::float::ReLU6`].
    ReLU6,
    /// [`crate::float::LeakyReLU`].
    LeakyReLU,
    /// [`crate::float::Elu`].
    Elu,
    /// [`crate::float::Hardswish`].
    Hardswish,
    /// [`crate::float::Hardsigmoid`].
    Hardsigmoid,
    /// [`crate::float::Gelu`].
    Gelu,
    /// [`crate::float::SiLU`].
    SiLU,
    /// [`crate::float::Sigmoid`].
    Sigmoid,
    /// [`crate::float::Tanh`].
    Tanh,
    /// [`crate::float::Softmax`].
    Softmax,
    /// [`crate::float::LogSoftmax`].
    LogSoftmax,
    /// [`crate::float::MaxPool2d`].
    MaxPool2d,
    /// [`crate::float::AvgPool2d`].
    AvgPool2d,
    /// [`crate::float::AdaptiveAvgPool2d`].
    AdaptiveAvgPool2d,
    /// [`crate::float::Flatten`].
    Flatten,
    /// [`crate::float::Dropout`].
    Dropout,
    /// [`crate::float::Identity`].
    Identity,
    /// [`crate::float::Sequential`].
    Sequential,
    /// [`crate::float::RNNCell`].
    RNNCell,
    /// [`crate::float::LSTMCell`].
    LSTMCell,
    /// [`crate::float::GRUCell`].
    GRUCell,
    /// [`crate::float::Rnn`].
    Rnn,
    /// [`crate::float::Lstm`].
    Lstm,
    /// [`crate::float::Gru`].
    Gru,
    /// [`crate::float::MultiheadAttention`].
    MultiheadAttention,
    /// [`crate::float::TransformerEncoderLayer`].
    TransformerEncoderLayer,
    /// [`crate::float::Embedding`].
    Embedding,
    /// [`crate::float::EmbeddingBag`].
    EmbeddingBag,
}

/// A layer: forward, backward, named parameters and buffers, train/eval mode.
///
/// Contract:
/// - `forward` keeps whatever `backward` needs (inputs or outputs), so `backward` must follow
///   a `forward`; calling it first is [`crate::QnnError::BackwardBeforeForward`].
/// - `backward` takes the gradient of the loss with respect to the last forward's output and
///   returns the gradient with respect to its input. Parameter gradients are *added* into each
///   [`Param::grad`] (as PyTorch accumulates `.grad`), until [`Module::zero_grad`].
/// - Names given to the visitors are PyTorch's state-dict names (`weight`, `bias`,
///   `running_mean`, …), prefixed with `child.` inside containers (`0.weight`, `features.3.bias`).
pub trait Module: Any + Send {
    /// What this module is.
    fn kind(&self) -> ModuleKind;

    /// Computes the output and keeps what `backward` needs.
    fn forward(&mut self, input: &Value) -> Result<Value>;

    /// Gradient with respect to the input, given the gradient with respect to the output;
    /// accumulates parameter gradients.
    fn backward(&mut self, grad_output: &Value) -> Result<Value>;

    /// Calls `f` with the state-dict name and the parameter, for every trainable parameter.
    fn visit_params(&self, _f: &mut dyn FnMut(&str, &Param)) {}

    /// Calls `f` with the state-dict name and the parameter, mutably (optimizers, loading).
    fn visit_params_mut(&mut self, _f: &mut dyn FnMut(&str, &mut Param)) {}

    /// Calls `f` with the state-dict name of every buffer (running statistics, counters).
    fn visit_buffers(&self, _f: &mut dyn FnMut(&str, BufferRef<'_>)) {}

    /// Calls `f` with the state-dict name of every buffer, mutably (loading).
    fn visit_buffers_mut(&mut self, _f: &mut dyn FnMut(&str, BufferMut<'_>)) {}

    /// Sets training (`true`) or evaluation (`false`) mode, recursively.
    fn train(&mut self, mode: bool);

    /// True in training mode.
    fn is_training(&self) -> bool;

    /// Resets every parameter gradient to zero.
    fn zero_grad(&mut self) {
        self.visit_params_mut(&mut |_, p| p.zero_grad());
    }

    /// Shorthand for `train(false)`.
    fn eval(&mut self) {
        self.train(false);
    }

    /// PyTorch's `.half()` for inference: stores the weights as f16 (halving their size) and
    /// computes with f16 storage and f32 accumulation (activations stay f32).
    ///
    /// Linear, Conv1d and Conv2d convert their weight (biases stay f32, they are tiny);
    /// [`crate::float::Sequential`] converts its children; other layers keep f32 (the default
    /// does nothing). State-dict names are unchanged: visitors see the weight widened to f32, and
    /// loading into a halved layer rounds to f16. A halved layer is inference-only: its
    /// `backward` is an error.
    fn half(&mut self) -> Result<()> {
        Ok(())
    }

    /// Bytes of parameter storage: 4 per f32 scalar, 2 per f16 scalar.
    fn param_bytes(&self) -> usize {
        let mut n = 0;
        self.visit_params(&mut |_, p| n += 4 * p.value.numel());
        n
    }
}

impl dyn Module {
    /// The concrete layer, if it is a `T`.
    pub fn downcast_ref<T: Module>(&self) -> Option<&T> {
        (self as &dyn Any).downcast_ref::<T>()
    }

    /// The concrete layer, mutably, if it is a `T`.
    pub fn downcast_mut<T: Module>(&mut self) -> Option<&mut T> {
        (self as &mut dyn Any).downcast_mut::<T>()
    }

    /// Number of trainable scalars.
    pub fn num_parameters(&self) -> usize {
        let mut n = 0;
        self.visit_params(&mut |_, p| n += p.value.numel());
        n
    }
}
