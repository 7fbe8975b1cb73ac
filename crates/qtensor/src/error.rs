//! The crate's single error type.

/// Result alias used by every fallible function of this crate.
pub type Result<T> = std::result::Result<T, QTensorError>;

/// Every way a `qtensor` operation can reject its input. Messages name the offending value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QTensorError {
    /// A scale that is NaN, infinite, zero or negative.
    #[error("invalid scale {scale}: must be finite and > 0")]
    InvalidScale {
        /// The rejected scale.
        scale: f64,
    },
    /// A zero point outside the integer range of the dtype.
    #[error("zero point {zero_point} is outside the quantized range [{qmin}, {qmax}]")]
    ZeroPointOutOfRange {
        /// The rejected zero point.
        zero_point: i64,
        /// Lower end of the allowed range.
        qmin: i64,
        /// Upper end of the allowed range.
        qmax: i64,
    },
    /// An axis that does not exist in the tensor.
    #[error("axis {axis} is out of range for a tensor with {ndim} dimensions")]
    AxisOutOfRange {
        /// The rejected axis.
        axis: usize,
        /// Number of dimensions of the tensor.
        ndim: usize,
    },
    /// Per-channel parameters whose count differs from the size of the channel axis.
    #[error("channel count mismatch: expected {expected} per-channel parameters, got {got}")]
    ChannelMismatch {
        /// Size of the channel axis.
        expected: usize,
        /// Number of parameters given.
        got: usize,
    },
    /// Shapes (or element counts) that do not agree.
    #[error("shape mismatch: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// The shape (or `[element count]`) that was required.
        expected: Vec<usize>,
        /// The shape (or `[element count]`) that was given.
        got: Vec<usize>,
    },
    /// An integer quantization range that is empty, does not contain 0, or is too wide.
    #[error("invalid quantization range [{qmin}, {qmax}]: {reason}")]
    InvalidQuantRange {
        /// Lower end of the rejected range.
        qmin: i64,
        /// Upper end of the rejected range.
        qmax: i64,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An integer value outside the range of the dtype it should be stored in.
    #[error("value {value} at index {index} is outside the quantized range [{qmin}, {qmax}]")]
    ValueOutOfRange {
        /// The rejected value.
        value: i64,
        /// Its flat index.
        index: usize,
        /// Lower end of the allowed range.
        qmin: i64,
        /// Upper end of the allowed range.
        qmax: i64,
    },
    /// An operation that is not defined for the given dtype, scheme or layout.
    #[error("unsupported: {0}")]
    Unsupported(String),
}
