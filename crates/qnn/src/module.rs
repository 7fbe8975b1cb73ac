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
    /// One of the fused float modules (`crate::fused`), built by qflow's fuse pass: `ConvReLU1d`.
    ConvReLU1d,
    /// One of the fused float modules (`crate::fused`), built by qflow's fuse pass: `ConvReLU2d`.
    ConvReLU2d,
    /// One of the fused float modules (`crate::fused`), built by qflow's fuse pass: `ConvBn1d`.
    ConvBn1d,
    /// One of the fused float modules (`crate::fused`), built by qflow's fuse pass: `ConvBnReLU1d`.
    ConvBnReLU1d,
    /// One of the fused float modules (`crate::fused`), built by qflow's fuse pass: `ConvBn2d`.
    ConvBn2d,
    /// One of the fused float modules (`crate::fused`), built by qflow's fuse pass: `ConvBnReLU2d`.
    ConvBnReLU2d,
    /// One of the fused float modules (`crate::fused`), built by qflow's fuse pass: `LinearReLU`.
    LinearReLU,
    /// One of the fused float modules (`crate::fused`), built by qflow's fuse pass: `LinearBn1d`.
    LinearBn1d,
    /// One of the fused float modules (`crate::fused`), built by qflow's fuse pass: `BNReLU2d`.
    BNReLU2d,
    /// One of the quantization-aware training modules (`crate::qat`): `FakeQuantize`.
    FakeQuantize,
    /// One of the quantization-aware training modules (`crate::qat`): `FixedQParamsFakeQuantize`.
    FixedQParamsFakeQuantize,
    /// One of the quantization-aware training modules (`crate::qat`): `FusedMovingAvgObsFakeQuantize`.
    FusedMovingAvgObsFakeQuantize,
    /// One of the quantization-aware training modules (`crate::qat`): `ObserverModule`.
    ObserverModule,
    /// One of the quantization-aware training modules (`crate::qat`): `QatLinear`.
    QatLinear,
    /// One of the quantization-aware training modules (`crate::qat`): `QatLinearReLU`.
    QatLinearReLU,
    /// One of the quantization-aware training modules (`crate::qat`): `QatConv1d`.
    QatConv1d,
    /// One of the quantization-aware training modules (`crate::qat`): `QatConv2d`.
    QatConv2d,
    /// One of the quantization-aware training modules (`crate::qat`): `QatConvReLU2d`.
    QatConvReLU2d,
    /// One of the quantization-aware training modules (`crate::qat`): `QatConvBn2d`.
    QatConvBn2d,
    /// One of the quantization-aware training modules (`crate::qat`): `QatConvBnReLU2d`.
    QatConvBnReLU2d,
    /// One of the quantization-aware training modules (`crate::qat`): `QatConvBn1d`.
    QatConvBn1d,
    /// One of the quantization-aware training modules (`crate::qat`): `QatConvBnReLU1d`.
    QatConvBnReLU1d,
    /// One of the quantization-aware training modules (`crate::qat`): `QatLinearBn1d`.
    QatLinearBn1d,
    /// One of the static quantized modules (`crate::quantized`): `Quantize`.
    Quantize,
    /// One of the static quantized modules (`crate::quantized`): `DeQuantize`.
    DeQuantize,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedLinear`.
    QuantizedLinear,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedLinearReLU`.
    QuantizedLinearReLU,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedConv1d`.
    QuantizedConv1d,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedConv2d`.
    QuantizedConv2d,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedConv3d`.
    QuantizedConv3d,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedConvReLU1d`.
    QuantizedConvReLU1d,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedConvReLU2d`.
    QuantizedConvReLU2d,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedConvReLU3d`.
    QuantizedConvReLU3d,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedConvTranspose2d`.
    QuantizedConvTranspose2d,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedBatchNorm2d`.
    QuantizedBatchNorm2d,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedBNReLU2d`.
    QuantizedBNReLU2d,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedLayerNorm`.
    QuantizedLayerNorm,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedGroupNorm`.
    QuantizedGroupNorm,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedInstanceNorm2d`.
    QuantizedInstanceNorm2d,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedReLU`.
    QuantizedReLU,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedReLU6`.
    QuantizedReLU6,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedHardswish`.
    QuantizedHardswish,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedLeakyReLU`.
    QuantizedLeakyReLU,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedElu`.
    QuantizedElu,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedSigmoid`.
    QuantizedSigmoid,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedTanh`.
    QuantizedTanh,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedSoftmax`.
    QuantizedSoftmax,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedMaxPool2d`.
    QuantizedMaxPool2d,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedAvgPool2d`.
    QuantizedAvgPool2d,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedAdaptiveAvgPool2d`.
    QuantizedAdaptiveAvgPool2d,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedFlatten`.
    QuantizedFlatten,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedDropout`.
    QuantizedDropout,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedEmbedding`.
    QuantizedEmbedding,
    /// One of the static quantized modules (`crate::quantized`): `QuantizedEmbeddingBag`.
    QuantizedEmbeddingBag,
    /// One of the static quantized modules (`crate::quantized`): `QFunctional`.
    QFunctional,
    /// One of the dynamic quantized modules (`crate::dynamic`): `DynamicLinear`.
    DynamicLinear,
    /// One of the dynamic quantized modules (`crate::dynamic`): `DynamicLinearReLU`.
    DynamicLinearReLU,
    /// One of the dynamic quantized modules (`crate::dynamic`): `DynamicLstm`.
    DynamicLstm,
    /// One of the dynamic quantized modules (`crate::dynamic`): `DynamicGru`.
    DynamicGru,
    /// One of the dynamic quantized modules (`crate::dynamic`): `DynamicLSTMCell`.
    DynamicLSTMCell,
    /// One of the dynamic quantized modules (`crate::dynamic`): `DynamicGRUCell`.
    DynamicGRUCell,
    /// One of the dynamic quantized modules (`crate::dynamic`): `DynamicRNNCell`.
    DynamicRNNCell,
    /// One of the a user-defined layer (passes leave it alone): `Custom`.
    Custom,
    /// [`crate::float::GroupNorm`].
    GroupNorm,
    /// [`crate::float::InstanceNorm2d`].
    InstanceNorm2d,
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

    /// [`Module::forward`] on an input the caller no longer needs (a graph passes a value
    /// to its last consumer this way), so a module may reuse it instead of copying; the
    /// result must equal `forward(&input)`. The default calls `forward`.
    fn forward_owned(&mut self, input: Value) -> Result<Value> {
        self.forward(&input)
    }

    /// `next.forward(&self.forward(input)?)` in one step, when this module has a fused
    /// kernel for the pair (a quantized 2-d convolution followed by a 2×2 max pool with
    /// stride 2); `None` when it has not, and the caller runs the two. The result must equal
    /// the two steps. A graph asks this for a node whose value only the next module reads
    /// (identities in between are skipped), when no hook observes the value. The default
    /// has no fused pairs.
    fn forward_fused(&mut self, _input: &Value, _next: &mut dyn Module) -> Option<Result<Value>> {
        None
    }

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
    /// Linear, Conv1d, Conv2d, ConvTranspose2d, Embedding, EmbeddingBag, the recurrent layers
    /// and cells (`weight_ih`/`weight_hh`), MultiheadAttention (`in_proj_weight`,
    /// `out_proj.weight`) and TransformerEncoderLayer convert their weights; biases and
    /// normalization parameters stay f32 (they are tiny); [`crate::float::Sequential`] and the
    /// fused modules convert their children; parameter-free layers have nothing to convert (the
    /// default does nothing). Layers without an f16 GEMM path widen their f16 weights once per
    /// forward call and then compute exactly what the f32 layer computes with f16-rounded
    /// weights. State-dict names are unchanged: visitors see the weight widened to f32, and
    /// loading into a halved layer rounds to f16. A halved layer is inference-only: its
    /// `backward` is an error.
    fn half(&mut self) -> Result<()> {
        Ok(())
    }

    /// Rebuilds derived state after [`crate::state_dict::load_state_dict`] has written the
    /// parameters and buffers (quantized modules repack their weights for this CPU here).
    /// Containers must forward it to their children. The default does nothing.
    fn after_load(&mut self) -> Result<()> {
        Ok(())
    }

    /// The class name PyTorch prints for this module (`Conv2d`, `QuantizedLinear`,
    /// `DynamicQuantizedLinear`, …); by default [`crate::repr::torch_class_name`] of the kind.
    fn type_name(&self) -> String {
        crate::repr::torch_class_name(self.kind()).to_string()
    }

    /// PyTorch's `extra_repr()`: the arguments printed inside the parentheses, in PyTorch's
    /// formats (`1, 6, kernel_size=(5, 5), stride=(1, 1)`). Empty by default (`ReLU()`).
    fn extra_repr(&self) -> String {
        String::new()
    }

    /// The child modules PyTorch prints below the argument line, `(name, tree)` in PyTorch's
    /// registration order (a fused module's `0`, `1`; a QAT layer's `weight_fake_quant`; a
    /// fake-quant's `activation_post_process`). Empty by default.
    fn repr_children(&self) -> Vec<(String, crate::repr::ReprTree)> {
        Vec::new()
    }

    /// The dtype the parameter or buffer `name` is stored in, when it is not what its visitor
    /// shows (an f16 weight after [`Module::half`] is visited widened to f32). `None`: the
    /// visitor's dtype (see [`crate::repr::named_parameters`]).
    fn param_dtype(&self, _name: &str) -> Option<crate::repr::TensorDType> {
        None
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
