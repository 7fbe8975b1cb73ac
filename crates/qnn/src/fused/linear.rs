//! Fused linear modules: Linear+ReLU and Linear+BN.

use super::chain::fused_chain;
use crate::error::{QnnError, Result};
use crate::float::{BatchNorm1d, Linear, ReLU};

fused_chain!(
    /// PyTorch's `nni.LinearReLU`: a [`Linear`] followed by a [`ReLU`] (names `0.weight`, `0.bias`).
    LinearReLU, LinearReLU, [linear / linear_mut: Linear, relu / relu_mut: ReLU]
);
fused_chain!(
    /// PyTorch's `nni.LinearBn1d`: a [`Linear`] followed by a [`BatchNorm1d`], kept apart for
    /// quantization-aware training (names `0.*` for the linear, `1.*` for the batch norm).
    LinearBn1d, LinearBn1d, [linear / linear_mut: Linear, bn / bn_mut: BatchNorm1d]
);

impl LinearReLU {
    /// Wraps a linear layer and its ReLU.
    pub fn new(linear: Linear, relu: ReLU) -> Self {
        Self { linear, relu }
    }
}

impl LinearBn1d {
    /// Wraps a linear layer and its batch norm; `out_features` must equal `num_features`.
    pub fn new(linear: Linear, bn: BatchNorm1d) -> Result<Self> {
        let (out, nf) = (linear.out_features(), bn.config().num_features);
        if out != nf {
            return Err(QnnError::InvalidConfig {
                module: "LinearBn1d",
                reason: format!(
                    "linear out_features {out} must equal the batch norm's num_features {nf}"
                ),
            });
        }
        Ok(Self { linear, bn })
    }
}
