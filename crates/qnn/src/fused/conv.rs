//! Fused convolution modules: Conv+ReLU, Conv+BN, Conv+BN+ReLU (1-d and 2-d) and BN+ReLU.

use super::chain::fused_chain;
use crate::error::{QnnError, Result};
use crate::float::{BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, ReLU};

fused_chain!(
    /// PyTorch's `nni.ConvReLU1d`: a [`Conv1d`] followed by a [`ReLU`] (names `0.weight`, `0.bias`).
    ConvReLU1d, ConvReLU1d, [conv / conv_mut: Conv1d, relu / relu_mut: ReLU]
);
fused_chain!(
    /// PyTorch's `nni.ConvReLU2d`: a [`Conv2d`] followed by a [`ReLU`] (names `0.weight`, `0.bias`).
    ConvReLU2d, ConvReLU2d, [conv / conv_mut: Conv2d, relu / relu_mut: ReLU]
);
fused_chain!(
    /// PyTorch's `nni.ConvBn1d`: a [`Conv1d`] followed by a [`BatchNorm1d`], kept apart for
    /// quantization-aware training (names `0.*` for the conv, `1.*` for the batch norm).
    ConvBn1d, ConvBn1d, [conv / conv_mut: Conv1d, bn / bn_mut: BatchNorm1d]
);
fused_chain!(
    /// PyTorch's `nni.ConvBnReLU1d`: [`Conv1d`], [`BatchNorm1d`], [`ReLU`] (names `0.*`, `1.*`).
    ConvBnReLU1d, ConvBnReLU1d,
    [conv / conv_mut: Conv1d, bn / bn_mut: BatchNorm1d, relu / relu_mut: ReLU]
);
fused_chain!(
    /// PyTorch's `nni.ConvBn2d`: a [`Conv2d`] followed by a [`BatchNorm2d`], kept apart for
    /// quantization-aware training (names `0.*` for the conv, `1.*` for the batch norm).
    ConvBn2d, ConvBn2d, [conv / conv_mut: Conv2d, bn / bn_mut: BatchNorm2d]
);
fused_chain!(
    /// PyTorch's `nni.ConvBnReLU2d`: [`Conv2d`], [`BatchNorm2d`], [`ReLU`] (names `0.*`, `1.*`).
    ConvBnReLU2d, ConvBnReLU2d,
    [conv / conv_mut: Conv2d, bn / bn_mut: BatchNorm2d, relu / relu_mut: ReLU]
);
fused_chain!(
    /// PyTorch's `nni.BNReLU2d`: a [`BatchNorm2d`] followed by a [`ReLU`] (names `0.*`).
    BNReLU2d, BNReLU2d, [bn / bn_mut: BatchNorm2d, relu / relu_mut: ReLU]
);

/// `InvalidConfig` unless the conv's output channels equal the batch norm's features.
fn channels_match(module: &'static str, out_channels: usize, num_features: usize) -> Result<()> {
    if out_channels == num_features {
        Ok(())
    } else {
        Err(QnnError::InvalidConfig {
            module,
            reason: format!(
                "conv out_channels {out_channels} must equal the batch norm's num_features {num_features}"
            ),
        })
    }
}

impl ConvReLU1d {
    /// Wraps a convolution and its ReLU.
    pub fn new(conv: Conv1d, relu: ReLU) -> Self {
        Self { conv, relu }
    }
}

impl ConvReLU2d {
    /// Wraps a convolution and its ReLU.
    pub fn new(conv: Conv2d, relu: ReLU) -> Self {
        Self { conv, relu }
    }
}

impl ConvBn1d {
    /// Wraps a convolution and its batch norm; their channel counts must agree.
    pub fn new(conv: Conv1d, bn: BatchNorm1d) -> Result<Self> {
        channels_match(
            "ConvBn1d",
            conv.config().out_channels,
            bn.config().num_features,
        )?;
        Ok(Self { conv, bn })
    }
}

impl ConvBnReLU1d {
    /// Wraps a convolution, its batch norm and a ReLU; the channel counts must agree.
    pub fn new(conv: Conv1d, bn: BatchNorm1d, relu: ReLU) -> Result<Self> {
        channels_match(
            "ConvBnReLU1d",
            conv.config().out_channels,
            bn.config().num_features,
        )?;
        Ok(Self { conv, bn, relu })
    }
}

impl ConvBn2d {
    /// Wraps a convolution and its batch norm; their channel counts must agree.
    pub fn new(conv: Conv2d, bn: BatchNorm2d) -> Result<Self> {
        channels_match(
            "ConvBn2d",
            conv.config().out_channels,
            bn.config().num_features,
        )?;
        Ok(Self { conv, bn })
    }
}

impl ConvBnReLU2d {
    /// Wraps a convolution, its batch norm and a ReLU; the channel counts must agree.
    pub fn new(conv: Conv2d, bn: BatchNorm2d, relu: ReLU) -> Result<Self> {
        channels_match(
            "ConvBnReLU2d",
            conv.config().out_channels,
            bn.config().num_features,
        )?;
        Ok(Self { conv, bn, relu })
    }
}

impl BNReLU2d {
    /// Wraps a batch norm and its ReLU.
    pub fn new(bn: BatchNorm2d, relu: ReLU) -> Self {
        Self { bn, relu }
    }
}
