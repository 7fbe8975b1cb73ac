//! Typed errors of the quantize / dequantize entry points.

use crate::isa::Isa;

/// Result alias of the [`quant`](crate::quant) entry points.
pub type Result<T> = std::result::Result<T, QuantError>;

/// Everything a quantize or dequantize call can reject. Messages name the offending value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QuantError {
    /// A scale that is NaN, infinite, zero or negative.
    #[error("invalid scale {scale}: must be finite and > 0")]
    InvalidScale {
        /// The rejected scale.
        scale: f32,
    },
    /// A zero point outside the range of the quantized dtype.
    #[error("zero point {zero_point} is outside the quantized range [{min}, {max}]")]
    ZeroPointOutOfRange {
        /// The rejected zero point.
        zero_point: i32,
        /// Smallest allowed.
        min: i32,
        /// Largest allowed.
        max: i32,
    },
    /// Source and destination of different lengths.
    #[error("destination holds {dst} elements but the source has {src}")]
    LengthMismatch {
        /// Elements in the source.
        src: usize,
        /// Elements in the destination.
        dst: usize,
    },
    /// A forced dispatch level this process cannot run (CPU support, `QSTACK_ISA` cap, or
    /// another architecture).
    #[error("dispatch level {isa} is not runnable here (CPU support or QSTACK_ISA cap)")]
    NotRunnable {
        /// The level requested.
        isa: Isa,
    },
    /// An error of the tensor-level conveniences, as `qtensor` reports it.
    #[error(transparent)]
    Tensor(#[from] qtensor::QTensorError),
}
