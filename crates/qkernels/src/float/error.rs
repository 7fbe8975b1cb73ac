//! Errors of the float GEMM wrapper.

/// Every way a float GEMM call can reject its operands. Messages name the offending values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FloatGemmError {
    /// A matrix view whose last element lies outside its slice.
    #[error(
        "matrix view {rows}x{cols} with strides (row {row_stride}, col {col_stride}) needs {needed} elements, slice has {len}"
    )]
    ViewOutOfBounds {
        /// Rows of the view.
        rows: usize,
        /// Columns of the view.
        cols: usize,
        /// Distance in elements between consecutive rows.
        row_stride: usize,
        /// Distance in elements between consecutive columns.
        col_stride: usize,
        /// Elements the view needs (largest offset + 1), saturated on overflow.
        needed: usize,
        /// Length of the slice given.
        len: usize,
    },
    /// A stride too large to be addressed (it does not fit in `isize`).
    #[error("stride {stride} does not fit in isize")]
    StrideTooLarge {
        /// The rejected stride.
        stride: usize,
    },
    /// A destination view whose strides make two elements share memory.
    #[error(
        "destination view {rows}x{cols} with strides (row {row_stride}, col {col_stride}) overlaps itself"
    )]
    OverlappingDestination {
        /// Rows of the view.
        rows: usize,
        /// Columns of the view.
        cols: usize,
        /// Distance in elements between consecutive rows.
        row_stride: usize,
        /// Distance in elements between consecutive columns.
        col_stride: usize,
    },
    /// Operand shapes that cannot be multiplied: `a` is `m x k`, `b` is `k x n`, `c` is `m x n`.
    #[error("gemm shape mismatch: a is {a:?}, b is {b:?}, c is {c:?}")]
    ShapeMismatch {
        /// `[rows, cols]` of `a`.
        a: [usize; 2],
        /// `[rows, cols]` of `b`.
        b: [usize; 2],
        /// `[rows, cols]` of `c`.
        c: [usize; 2],
    },
    /// A float convolution whose geometry, weights, bias or buffers do not fit together
    /// (the reason names the values).
    #[error("float convolution: {reason}")]
    Conv {
        /// What does not fit.
        reason: String,
    },
}

/// Result alias of the float GEMM wrapper.
pub type Result<T> = std::result::Result<T, FloatGemmError>;
