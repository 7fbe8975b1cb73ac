//! QAT convolutions: `nnqat.Conv1d`, `nnqat.Conv2d` and `nniqat.ConvReLU2d`, the generic
//! [`QatLayer`] around a float convolution (whose weight passes through a weight fake-quant on
//! every forward).

use super::FakeQuantSpec;
use super::plain::QatLayer;
use crate::error::Result;
use crate::{float, fused};

/// A QAT 2-d convolution, `conv2d(x, fake_quant(W), b)`, followed by a ReLU when `RELU`
/// ([`Conv2d`], [`ConvReLU2d`]). State-dict names: `weight`, `bias`, `weight_fake_quant.*`.
pub type QatConv2d<const RELU: bool> = QatLayer<float::Conv2d, RELU>;
/// A QAT 1-d convolution, `conv1d(x, fake_quant(W), b)` ([`Conv1d`]; PyTorch maps no
/// QAT ConvReLU1d, so `QatConv1d<true>` cannot be built). State-dict names: `weight`, `bias`,
/// `weight_fake_quant.*`.
pub type QatConv1d<const RELU: bool> = QatLayer<float::Conv1d, RELU>;

/// PyTorch's `torch.ao.nn.qat.Conv2d`.
pub type Conv2d = QatConv2d<false>;
/// PyTorch's `torch.ao.nn.intrinsic.qat.ConvReLU2d`.
pub type ConvReLU2d = QatConv2d<true>;
/// PyTorch's `torch.ao.nn.qat.Conv1d`.
pub type Conv1d = QatConv1d<false>;

impl ConvReLU2d {
    /// `to_float()` as PyTorch returns it for this class: the fused float `nni.ConvReLU2d`.
    pub fn to_float_fused(&self) -> Result<fused::ConvReLU2d> {
        Ok(fused::ConvReLU2d::new(self.to_float()?, float::ReLU::new()))
    }

    /// From PyTorch's fused float `nni.ConvReLU2d`.
    pub fn from_fused(
        fused: &fused::ConvReLU2d,
        weight_fake_quant: &FakeQuantSpec,
    ) -> Result<Self> {
        Self::from_float(fused.conv(), weight_fake_quant)
    }
}
