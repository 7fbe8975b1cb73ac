//! QAT linear layers: `nnqat.Linear` and `nniqat.LinearReLU`, the generic [`QatLayer`] around
//! a float linear layer (whose weight passes through a weight fake-quant on every forward).

use super::FakeQuantSpec;
use super::plain::QatLayer;
use crate::error::Result;
use crate::{float, fused};

/// A QAT linear layer, `y = x · fake_quant(W)ᵀ + b`, followed by a ReLU when `RELU`
/// ([`Linear`] and [`LinearReLU`]). State-dict names: `weight`, `bias`, `weight_fake_quant.*`.
pub type QatLinear<const RELU: bool> = QatLayer<float::Linear, RELU>;

/// PyTorch's `torch.ao.nn.qat.Linear`.
pub type Linear = QatLinear<false>;
/// PyTorch's `torch.ao.nn.intrinsic.qat.LinearReLU`.
pub type LinearReLU = QatLinear<true>;

impl LinearReLU {
    /// `to_float()` as PyTorch returns it for this class: the fused float `nni.LinearReLU`.
    pub fn to_float_fused(&self) -> Result<fused::LinearReLU> {
        Ok(fused::LinearReLU::new(self.to_float()?, float::ReLU::new()))
    }

    /// From PyTorch's fused float `nni.LinearReLU`.
    pub fn from_fused(
        fused: &fused::LinearReLU,
        weight_fake_quant: &FakeQuantSpec,
    ) -> Result<Self> {
        Self::from_float(fused.linear(), weight_fake_quant)
    }
}
