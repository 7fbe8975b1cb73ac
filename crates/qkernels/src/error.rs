//! Typed errors of the qkernels entry points. Every message names the offending value.

use crate::fp16::Fp16Kernel;
use crate::gemm::KernelKind;

/// Result alias for qkernels entry points.
pub type Result<T> = std::result::Result<T, GemmError>;

/// Everything a GEMM call or a weight packing can reject.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GemmError {
    /// A dimension that must be positive is zero.
    #[error("{what} must be at least 1, got 0")]
    EmptyDimension {
        /// Which dimension (`"n (out_features)"`, `"k (in_features)"`).
        what: &'static str,
    },
    /// A buffer is shorter than its shape and stride require.
    #[error("{what} holds {got} elements but the shape and stride need {needed}")]
    BufferTooSmall {
        /// Which buffer.
        what: &'static str,
        /// Elements required.
        needed: usize,
        /// Elements given.
        got: usize,
    },
    /// An output of `rows × cols` elements cannot be allocated.
    #[error("cannot allocate an output of {rows} × {cols} elements")]
    OutputTooLarge {
        /// Rows (M).
        rows: usize,
        /// Columns (N).
        cols: usize,
    },
    /// A row stride is smaller than the row length.
    #[error("{what} row stride {stride} is smaller than the row length {row_len}")]
    StrideTooSmall {
        /// Which buffer.
        what: &'static str,
        /// The stride given.
        stride: usize,
        /// The row length it must cover.
        row_len: usize,
    },
    /// A per-channel parameter slice has the wrong length.
    #[error("{what} has {got} entries, expected {expected} (one per output channel)")]
    QParamsLength {
        /// Which parameter.
        what: &'static str,
        /// Expected length (N).
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// A scale is not finite and positive.
    #[error("invalid {what} {scale}: must be finite and > 0")]
    InvalidScale {
        /// Which scale.
        what: &'static str,
        /// The value given.
        scale: f32,
    },
    /// A zero point lies outside its dtype's range.
    #[error("{what} {zero_point} is outside [{min}, {max}]")]
    ZeroPointOutOfRange {
        /// Which zero point.
        what: &'static str,
        /// The value given.
        zero_point: i32,
        /// Smallest allowed.
        min: i32,
        /// Largest allowed.
        max: i32,
    },
    /// The weights were packed for another kernel family than the one requested.
    #[error("weights packed for kernel {packed} cannot run on kernel {requested}")]
    FamilyMismatch {
        /// The family the weights were packed for.
        packed: KernelKind,
        /// The family requested.
        requested: KernelKind,
    },
    /// A prepared pipeline was used with other weights or another activation zero point
    /// than it was built for.
    #[error("the prepared pipeline was built for other {what}")]
    PreparedMismatch {
        /// What differs (`"weights"`, `"activation zero point"`).
        what: &'static str,
    },
    /// The kernel cannot run in this process (CPU lacks it, or `QSTACK_ISA` caps it away,
    /// or it belongs to another architecture).
    #[error("kernel {kind} is not runnable here (CPU support or QSTACK_ISA cap)")]
    UnsupportedKernel {
        /// The kernel requested.
        kind: KernelKind,
    },
    /// The fp16-weight GEMM family cannot run in this process (CPU support, `QSTACK_ISA`
    /// cap, or another architecture).
    #[error("fp16 kernel {kind} is not runnable here (CPU support or QSTACK_ISA cap)")]
    UnsupportedFp16Kernel {
        /// The family requested.
        kind: Fp16Kernel,
    },
    /// The worst-case integer sum of a dot product could leave the i32 range.
    #[error(
        "K={k} with activation zero point {a_zero_point} and largest |weight - zero point| \
         {w_abs_max} could overflow the i32 accumulator (worst case {bound} > {max})",
        max = i32::MAX
    )]
    AccumulatorOverflow {
        /// Reduction length.
        k: usize,
        /// Activation zero point of the call.
        a_zero_point: i32,
        /// Largest |w - w_zero_point| in the packed weights.
        w_abs_max: u32,
        /// The worst-case |Σ (a - za)(w - zw)|.
        bound: u64,
    },
}
