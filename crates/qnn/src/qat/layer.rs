//! The float layers a QAT layer is built around ([`QatFloatLayer`]: Linear, Conv1d, Conv2d)
//! and the batch norms a QAT Conv/Linear+BN folds ([`QatBatchNorm`]: BatchNorm1d,
//! BatchNorm2d). The QAT layers are generic over these traits, so the weight fake-quant,
//! the straight-through backward and the BN folding are written once for every dimension.
//! Both traits are sealed: qnn implements them for its own float layers only.

use qtensor::Tensor;

use crate::error::Result;
use crate::float::{self, BatchNorm1d, BatchNorm2d, BatchNormConfig};
use crate::fused::{BnFoldParams, fuse_conv_bn_weights, fuse_linear_bn_weights};
use crate::module::{Module, ModuleKind};
use crate::param::Param;
use crate::repr::ConvConfigRepr;

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::float::Linear {}
    impl Sealed for crate::float::Conv1d {}
    impl Sealed for crate::float::Conv2d {}
    impl Sealed for crate::float::BatchNorm1d {}
    impl Sealed for crate::float::BatchNorm2d {}
}

/// The shape of a linear layer, its "configuration" as a QAT layer keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearFeatures {
    /// `in_features`.
    pub in_features: usize,
    /// `out_features`.
    pub out_features: usize,
}

/// Names and kinds of the QAT modules built around one float layer: index 0 without, index 1
/// with the trailing ReLU (`None`: PyTorch has no QAT module of that kind in its mappings).
#[derive(Clone, Copy, Debug)]
pub struct QatNames {
    /// The plain QAT layer (`qat::Linear`, `qat::Conv2d`, …).
    pub plain: [Option<(&'static str, ModuleKind)>; 2],
    /// The QAT layer fused with a batch norm (`qat::ConvBn2d`, `qat::LinearBn1d`, …).
    pub with_bn: [Option<(&'static str, ModuleKind)>; 2],
}

/// A float layer with a weight `[out, ...]` and an optional bias `[out]` that QAT layers wrap:
/// the QAT layer keeps the hyper-parameters and rebuilds the float layer around the
/// fake-quantized weight on every forward.
pub trait QatFloatLayer: Module + Clone + std::fmt::Debug + sealed::Sealed {
    /// The hyper-parameters the QAT layer keeps.
    type Config: Copy + std::fmt::Debug + Send + 'static;
    /// The batch norm PyTorch fuses after this layer (`BatchNorm1d` / `BatchNorm2d`).
    type Bn: QatBatchNorm;
    /// The QAT modules' names and kinds.
    const NAMES: QatNames;
    /// The input rank the Conv/Linear+BN forward accepts, and how errors describe it.
    const BN_INPUT_RANK: (usize, &'static str);

    /// This layer's hyper-parameters.
    fn layer_config(&self) -> Self::Config;
    /// Output channels (features) of a layer with these hyper-parameters.
    fn out_channels(config: &Self::Config) -> usize;
    /// The float layer with these hyper-parameters, weight and bias (validated).
    fn build(config: Self::Config, weight: Tensor<f32>, bias: Option<Tensor<f32>>) -> Result<Self>;
    /// The weight parameter.
    fn weight_param(&self) -> &Param;
    /// The bias parameter, if any.
    fn bias_param(&self) -> Option<&Param>;
    /// True once `half()` replaced the f32 weight.
    fn is_halved(&self) -> bool;
    /// PyTorch's `extra_repr` of the float layer.
    fn repr(config: &Self::Config, bias: bool) -> String;
    /// PyTorch's BN folding for this layer (`fuse_conv_bn_weights` / `fuse_linear_bn_weights`).
    fn fold_bn(
        weight: &Tensor<f32>,
        bias: Option<&Tensor<f32>>,
        bn: &BnFoldParams<'_>,
    ) -> Result<(Tensor<f32>, Tensor<f32>)>;
}

/// The batch-norm layers a QAT Conv/Linear+BN holds, through one interface.
pub trait QatBatchNorm: Module + Clone + std::fmt::Debug + sealed::Sealed {
    /// A fresh layer (weight 1, bias 0, running mean 0, running variance 1).
    fn with_config(config: BatchNormConfig) -> Self;
    /// The hyper-parameters.
    fn bn_config(&self) -> &BatchNormConfig;
    /// `weight` (gamma), if affine.
    fn bn_weight(&self) -> Option<&Param>;
    /// `bias` (beta), if affine.
    fn bn_bias(&self) -> Option<&Param>;
    /// `running_mean`, if tracked.
    fn bn_running_mean(&self) -> Option<&Tensor<f32>>;
    /// `running_var`, if tracked.
    fn bn_running_var(&self) -> Option<&Tensor<f32>>;
}

macro_rules! qat_batch_norm {
    ($ty:ty) => {
        impl QatBatchNorm for $ty {
            fn with_config(config: BatchNormConfig) -> Self {
                <$ty>::new(config)
            }
            fn bn_config(&self) -> &BatchNormConfig {
                self.config()
            }
            fn bn_weight(&self) -> Option<&Param> {
                self.weight()
            }
            fn bn_bias(&self) -> Option<&Param> {
                self.bias()
            }
            fn bn_running_mean(&self) -> Option<&Tensor<f32>> {
                self.running_mean()
            }
            fn bn_running_var(&self) -> Option<&Tensor<f32>> {
                self.running_var()
            }
        }
    };
}

qat_batch_norm!(BatchNorm1d);
qat_batch_norm!(BatchNorm2d);

macro_rules! qat_conv_layer {
    ($ty:ty, $config:ty, $bn:ty, $names:expr, $rank:expr) => {
        impl QatFloatLayer for $ty {
            type Config = $config;
            type Bn = $bn;
            const NAMES: QatNames = $names;
            const BN_INPUT_RANK: (usize, &'static str) = $rank;

            fn layer_config(&self) -> Self::Config {
                *self.config()
            }
            fn out_channels(config: &Self::Config) -> usize {
                config.out_channels
            }
            fn build(
                config: Self::Config,
                weight: Tensor<f32>,
                bias: Option<Tensor<f32>>,
            ) -> Result<Self> {
                <$ty>::from_tensors(config, weight, bias)
            }
            fn weight_param(&self) -> &Param {
                &self.weight
            }
            fn bias_param(&self) -> Option<&Param> {
                self.bias.as_ref()
            }
            fn is_halved(&self) -> bool {
                self.weight_f16().is_some()
            }
            fn repr(config: &Self::Config, bias: bool) -> String {
                config.conv_repr(bias)
            }
            fn fold_bn(
                weight: &Tensor<f32>,
                bias: Option<&Tensor<f32>>,
                bn: &BnFoldParams<'_>,
            ) -> Result<(Tensor<f32>, Tensor<f32>)> {
                fuse_conv_bn_weights(weight, bias, bn, false)
            }
        }
    };
}

qat_conv_layer!(
    float::Conv1d,
    float::Conv1dConfig,
    BatchNorm1d,
    QatNames {
        plain: [Some(("qat::Conv1d", ModuleKind::QatConv1d)), None],
        with_bn: [
            Some(("qat::ConvBn1d", ModuleKind::QatConvBn1d)),
            Some(("qat::ConvBnReLU1d", ModuleKind::QatConvBnReLU1d)),
        ],
    },
    (3, "3-d (N, C, L)")
);
qat_conv_layer!(
    float::Conv2d,
    float::Conv2dConfig,
    BatchNorm2d,
    QatNames {
        plain: [
            Some(("qat::Conv2d", ModuleKind::QatConv2d)),
            Some(("qat::ConvReLU2d", ModuleKind::QatConvReLU2d)),
        ],
        with_bn: [
            Some(("qat::ConvBn2d", ModuleKind::QatConvBn2d)),
            Some(("qat::ConvBnReLU2d", ModuleKind::QatConvBnReLU2d)),
        ],
    },
    (4, "4-d (N, C, H, W)")
);

impl QatFloatLayer for float::Linear {
    type Config = LinearFeatures;
    type Bn = BatchNorm1d;
    const NAMES: QatNames = QatNames {
        plain: [
            Some(("qat::Linear", ModuleKind::QatLinear)),
            Some(("qat::LinearReLU", ModuleKind::QatLinearReLU)),
        ],
        with_bn: [Some(("qat::LinearBn1d", ModuleKind::QatLinearBn1d)), None],
    };
    const BN_INPUT_RANK: (usize, &'static str) = (2, "2-d (N, features)");

    fn layer_config(&self) -> Self::Config {
        LinearFeatures {
            in_features: self.in_features(),
            out_features: self.out_features(),
        }
    }
    fn out_channels(config: &Self::Config) -> usize {
        config.out_features
    }
    fn build(config: Self::Config, weight: Tensor<f32>, bias: Option<Tensor<f32>>) -> Result<Self> {
        if weight.shape() != [config.out_features, config.in_features] {
            return Err(crate::QnnError::ShapeMismatch {
                what: "Linear weight vs [out_features, in_features]".into(),
                expected: vec![config.out_features, config.in_features],
                got: weight.shape().to_vec(),
            });
        }
        float::Linear::from_tensors(weight, bias)
    }
    fn weight_param(&self) -> &Param {
        &self.weight
    }
    fn bias_param(&self) -> Option<&Param> {
        self.bias.as_ref()
    }
    fn is_halved(&self) -> bool {
        self.weight_f16().is_some()
    }
    fn repr(config: &Self::Config, bias: bool) -> String {
        format!(
            "in_features={}, out_features={}, bias={}",
            config.in_features,
            config.out_features,
            crate::repr::py_bool(bias)
        )
    }
    fn fold_bn(
        weight: &Tensor<f32>,
        bias: Option<&Tensor<f32>>,
        bn: &BnFoldParams<'_>,
    ) -> Result<(Tensor<f32>, Tensor<f32>)> {
        fuse_linear_bn_weights(weight, bias, bn)
    }
}

/// The name and kind of a QAT module, or `InvalidConfig` when PyTorch has no such module.
pub(crate) fn name_and_kind(
    entry: Option<(&'static str, ModuleKind)>,
) -> Result<(&'static str, ModuleKind)> {
    entry.ok_or_else(|| crate::QnnError::InvalidConfig {
        module: "qat",
        reason: "PyTorch has no QAT module of this kind (no trailing ReLU variant)".into(),
    })
}
