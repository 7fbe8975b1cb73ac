//! Typed errors of the convolution entry points.

use crate::error::GemmError;

/// Everything a convolution call or a conv weight packing can reject.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConvError {
    /// A geometry value is invalid (zero where a positive value is needed, too many dims, ...).
    #[error("invalid convolution {what}: {value}")]
    Geometry {
        /// Which value.
        what: &'static str,
        /// The offending value.
        value: usize,
    },
    /// Channels are not divisible by the group count.
    #[error("{what} {channels} is not divisible by groups {groups}")]
    Groups {
        /// `"in_channels"` or `"out_channels"`.
        what: &'static str,
        /// The channel count.
        channels: usize,
        /// The group count.
        groups: usize,
    },
    /// The (dilated) kernel does not fit into the padded input.
    #[error("dilated kernel extent {extent} exceeds padded input size {padded} in dim {dim}")]
    KernelTooLarge {
        /// Spatial dimension index (0 = depth, 1 = height, 2 = width).
        dim: usize,
        /// `dilation·(k − 1) + 1`.
        extent: usize,
        /// `input + 2·padding`.
        padded: usize,
    },
    /// A buffer has the wrong length.
    #[error("{what} holds {got} elements, expected {expected}")]
    Length {
        /// Which buffer.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// The packed weights were made for another geometry.
    #[error("packed weights were made for {what} {packed}, the call has {given}")]
    WeightMismatch {
        /// Which property.
        what: &'static str,
        /// The packed value.
        packed: usize,
        /// The call's value.
        given: usize,
    },
    /// An error of the underlying GEMM (qparams, zero points, overflow, kernel family).
    #[error(transparent)]
    Gemm(#[from] GemmError),
}

/// Result alias for convolution entry points.
pub type Result<T> = std::result::Result<T, ConvError>;
