//! Quantization schemes and the parameters a quantized tensor carries.

/// PyTorch's `torch.qscheme` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QScheme {
    /// One scale and zero point for the whole tensor.
    PerTensorAffine,
    /// Per-tensor with a zero point fixed by the dtype (observers only; tensors store affine).
    PerTensorSymmetric,
    /// One scale and integer zero point per slice along an axis.
    PerChannelAffine,
    /// Per-channel with fixed zero points (observers only; tensors store affine).
    PerChannelSymmetric,
    /// Per-channel with `f32` scales and `f32` zero points (embedding tables).
    PerChannelAffineFloatQParams,
}

impl QScheme {
    /// True for the three per-channel schemes.
    pub fn is_per_channel(self) -> bool {
        matches!(
            self,
            QScheme::PerChannelAffine
                | QScheme::PerChannelSymmetric
                | QScheme::PerChannelAffineFloatQParams
        )
    }

    /// True for the two symmetric schemes.
    pub fn is_symmetric(self) -> bool {
        matches!(
            self,
            QScheme::PerTensorSymmetric | QScheme::PerChannelSymmetric
        )
    }
}

/// The quantization parameters stored with a [`QTensor`](crate::QTensor), as torch stores them.
#[derive(Clone, Debug, PartialEq)]
pub enum QParams {
    /// Per-tensor affine: a double scale and an integer zero point.
    PerTensor {
        /// Scale (rounded to `f32` by the kernels).
        scale: f64,
        /// Zero point.
        zero_point: i64,
    },
    /// Per-channel affine along `axis`.
    PerChannel {
        /// One scale per channel (quantize rounds them to `f32`, dequantize uses them as `f64`).
        scales: Vec<f64>,
        /// One zero point per channel.
        zero_points: Vec<i64>,
        /// The channel axis.
        axis: usize,
    },
    /// Per-channel with float scales and float zero points along `axis`.
    PerChannelFloat {
        /// One scale per channel.
        scales: Vec<f32>,
        /// One (fractional) zero point per channel.
        zero_points: Vec<f32>,
        /// The channel axis.
        axis: usize,
    },
}

impl QParams {
    /// The affine scheme these parameters describe.
    pub fn qscheme(&self) -> QScheme {
        match self {
            QParams::PerTensor { .. } => QScheme::PerTensorAffine,
            QParams::PerChannel { .. } => QScheme::PerChannelAffine,
            QParams::PerChannelFloat { .. } => QScheme::PerChannelAffineFloatQParams,
        }
    }
}
