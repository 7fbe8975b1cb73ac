//! The crate's error type.

use qkernels::GemmError;
use qkernels::conv::ConvError;
use qkernels::float::FloatGemmError;
use qkernels::quant::QuantError;
use qtensor::QTensorError;

/// Result alias used by every fallible function of this crate.
pub type Result<T> = std::result::Result<T, QnnError>;

/// Every way a module, loss or optimizer can reject its input. Messages name the offending values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QnnError {
    /// Two shapes that must agree do not; `what` says which tensors were compared.
    #[error("{what}: shape mismatch, expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// Which tensors were compared, e.g. `"Linear input features"`.
        what: String,
        /// The shape that was required.
        expected: Vec<usize>,
        /// The shape that was given.
        got: Vec<usize>,
    },
    /// An input with the wrong number of dimensions.
    #[error("{module}: expected a {expected} input, got shape {got:?}")]
    WrongRank {
        /// The module that rejected the input.
        module: &'static str,
        /// The accepted ranks and their meaning, e.g. `"4-d (N, C, H, W)"`.
        expected: &'static str,
        /// The shape that was given.
        got: Vec<usize>,
    },
    /// A [`crate::Value`] of the wrong kind (e.g. a quantized tensor given to a float layer).
    #[error("{module}: expected a {expected} value, got a {got} value")]
    WrongValueKind {
        /// The module that rejected the value.
        module: &'static str,
        /// The kind it accepts.
        expected: &'static str,
        /// The kind it was given.
        got: &'static str,
    },
    /// `backward` called without a preceding `forward` whose activations it needs.
    #[error("{module}: backward called before forward")]
    BackwardBeforeForward {
        /// The module.
        module: &'static str,
    },
    /// A constructor argument that makes no sense (zero kernel, channels not divisible by groups…).
    #[error("{module}: invalid configuration: {reason}")]
    InvalidConfig {
        /// The module or function.
        module: &'static str,
        /// What is wrong, naming the values.
        reason: String,
    },
    /// A dimension index outside `[-ndim, ndim)`.
    #[error("{module}: dimension {dim} is out of range for a {ndim}-d input")]
    DimOutOfRange {
        /// The module.
        module: &'static str,
        /// The rejected dimension index.
        dim: isize,
        /// Rank of the input.
        ndim: usize,
    },
    /// A class index outside `[0, num_classes)`.
    #[error("target {target} at batch index {index} is out of range for {num_classes} classes")]
    TargetOutOfRange {
        /// Position in the batch.
        index: usize,
        /// The rejected class index.
        target: usize,
        /// Number of classes (logit columns).
        num_classes: usize,
    },
    /// An embedding index outside `[0, size)`.
    #[error("{module}: index {index} at position {position} is out of range for {size} embeddings")]
    IndexOutOfRange {
        /// The module.
        module: &'static str,
        /// Flat position of the index in the input.
        position: usize,
        /// The rejected index.
        index: i64,
        /// Number of embeddings.
        size: usize,
    },
    /// A state-dict key the model does not have.
    #[error("unexpected state-dict key `{key}` with shape {shape:?}")]
    UnexpectedKey {
        /// The key.
        key: String,
        /// Shape of the tensor under that key.
        shape: Vec<usize>,
    },
    /// A state-dict key the model needs but the dict lacks.
    #[error("missing state-dict key `{key}` (expected shape {expected:?})")]
    MissingKey {
        /// The key.
        key: String,
        /// Shape the model expects under that key.
        expected: Vec<usize>,
    },
    /// A state-dict entry whose shape differs from the model's.
    #[error("state-dict key `{key}`: expected shape {expected:?}, got {got:?}")]
    KeyShapeMismatch {
        /// The key.
        key: String,
        /// Shape the model expects.
        expected: Vec<usize>,
        /// Shape in the dict.
        got: Vec<usize>,
    },
    /// A state-dict entry whose dtype differs from the model's buffer.
    #[error("state-dict key `{key}`: expected dtype {expected}, got {got}")]
    KeyDtypeMismatch {
        /// The key.
        key: String,
        /// Dtype the model expects.
        expected: &'static str,
        /// Dtype in the dict.
        got: &'static str,
    },
    /// A state-dict entry stored with a dtype this crate cannot load.
    #[error("state-dict key `{key}`: unsupported dtype {dtype}")]
    UnsupportedDtype {
        /// The key.
        key: String,
        /// The dtype as the file names it (with the shape when only some shapes are supported).
        dtype: String,
    },
    /// A malformed safetensors file (bad header, offsets, or lengths).
    #[error("safetensors: {0}")]
    SafeTensors(String),
    /// A file that could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's message.
        message: String,
    },
    /// An error from a tensor operation.
    #[error(transparent)]
    Tensor(#[from] QTensorError),
    /// An error from the float GEMM.
    #[error(transparent)]
    Gemm(#[from] FloatGemmError),
    /// An error from an int8 GEMM kernel.
    #[error(transparent)]
    Int8Gemm(#[from] GemmError),
    /// An error from an int8 convolution kernel.
    #[error(transparent)]
    Conv(#[from] ConvError),
    /// An error from a SIMD quantize/dequantize kernel.
    #[error(transparent)]
    Quant(#[from] QuantError),
    /// `backward` on an inference-only module (quantized, dynamic, or halved).
    #[error("{module}: inference-only module, backward is not supported")]
    NotTrainable {
        /// The module.
        module: &'static str,
    },
    /// Quantization parameters a module cannot use (wrong scheme or dtype, bad scale…).
    #[error("{module}: invalid quantization parameters: {reason}")]
    InvalidQParams {
        /// The module.
        module: &'static str,
        /// What is wrong, naming the values.
        reason: String,
    },
}
