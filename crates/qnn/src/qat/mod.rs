//! Quantization-aware training: fake-quant modules and the QAT layers whose weights pass
//! through fake-quant (PyTorch `torch.ao.nn.qat`, `torch.ao.quantization.fake_quantize`).
//!
//! A [`FakeQuantSpec`] is the data form of PyTorch's `FakeQuantize.with_args(...)`: a QAT
//! qconfig holds specs, and each place that needs a fake-quant gets a fresh module from it.
//!
//! - [`FakeQuant`]: the trait of the fake-quant modules (toggles, `calculate_qparams`, the
//!   current scale and zero point, the observer inside, a tensor-level [`FakeQuant::apply`]).
//! - [`FakeQuantize`], [`FixedQParamsFakeQuantize`], [`FusedMovingAvgObsFakeQuantize`]: the
//!   three PyTorch fake-quant modules, bit for bit (outputs, scale, zero point, masks).
//! - QAT layers: [`Linear`], [`LinearReLU`], [`Conv1d`], [`Conv2d`], [`ConvReLU2d`]
//!   (all [`QatLayer`]), and [`ConvBn1d`], [`ConvBnReLU1d`], [`ConvBn2d`], [`ConvBnReLU2d`],
//!   [`LinearBn1d`] (all [`QatBnFolded`], the BN scale folded into the fake-quantized weight as
//!   PyTorch's `_ConvBnNd` does, with `freeze_bn_stats` / `update_bn_stats`): float layers whose
//!   weight passes through a weight fake-quant (gradients through its straight-through mask).
//!   Both are generic over the float layer ([`QatFloatLayer`]: Linear, Conv1d, Conv2d), so the
//!   fake-quant and BN-folding logic exists once for every dimension. Built with `from_float` /
//!   `from_fused` / `from_parts` from the float layers and the qconfig's weight spec; converted
//!   back with `to_float()` (Conv+BN folded with the running statistics, as PyTorch does) and
//!   `to_float_with_weight_qparams()` (the float layer plus the weight qparams convert quantizes
//!   with). Toggling observers / fake-quant model-wide is qflow's job; each module has
//!   per-instance toggles.
//!
//! ```
//! use qnn::qat::{FakeQuant, FakeQuantSpec};
//! use qnn::qtensor::observer::{ObserverConfig, ObserverSpec};
//! use qnn::qtensor::{QDType, QScheme, Tensor};
//!
//! // PyTorch's default_fused_act_fake_quant
//! let spec = FakeQuantSpec::FusedMovingAvgObs {
//!     observer: ObserverSpec::MovingAverageMinMax {
//!         config: ObserverConfig::new(QDType::QUInt8, QScheme::PerTensorAffine),
//!         averaging_constant: 0.01,
//!     },
//! };
//! let mut fq = spec.build()?;
//! let x = Tensor::new(&[4], vec![-1.0f32, 0.0, 0.5, 2.0])?;
//! let out = fq.apply(&x)?;
//! assert_eq!(fq.scale().data(), &[3.0f32 / 255.0]);
//! assert_eq!(out.output.data()[3], 2.0);
//! # Ok::<(), qnn::QnnError>(())
//! ```
//!
//! A QAT layer trains like its float layer and hands convert what it needs:
//!
//! ```
//! use qnn::init::Rng;
//! use qnn::optim::{Optimizer, Sgd, SgdConfig};
//! use qnn::qat::{self, FakeQuantSpec};
//! use qnn::qtensor::observer::{ObserverConfig, ObserverSpec};
//! use qnn::qtensor::{QDType, QParams, QScheme, Tensor};
//! use qnn::{Module, Value, float};
//!
//! // PyTorch's default_per_channel_weight_fake_quant
//! let weight_fq = FakeQuantSpec::FakeQuantize {
//!     observer: ObserverSpec::MovingAveragePerChannelMinMax {
//!         config: ObserverConfig {
//!             quant_min: Some(-128),
//!             quant_max: Some(127),
//!             ..ObserverConfig::new(QDType::QInt8, QScheme::PerChannelSymmetric)
//!         },
//!         ch_axis: 0,
//!         averaging_constant: 0.01,
//!     },
//! };
//! let float = float::Linear::new(4, 3, true, &mut Rng::new(0));
//! let mut layer = qat::LinearReLU::from_float(&float, &weight_fq)?;
//! let mut sgd = Sgd::new(SgdConfig::new(0.1))?;
//! let x = Value::F32(Tensor::from_fn(&[2, 4], |i| i as f32 / 8.0 - 0.5));
//! for _ in 0..3 {
//!     let y = layer.forward(&x)?;
//!     layer.zero_grad();
//!     layer.backward(&y)?; // gradient of sum(y^2) / 2
//!     sgd.step(&mut layer)?;
//! }
//! layer.eval();
//! let (linear, weight_qparams) = layer.to_float_with_weight_qparams()?;
//! assert_eq!(linear.weight.shape(), &[3, 4]);
//! assert!(matches!(weight_qparams, QParams::PerChannel { ref scales, .. } if scales.len() == 3));
//! # Ok::<(), qnn::QnnError>(())
//! ```

mod conv;
mod conv_bn;
mod fake_quant;
mod fake_quantize;
mod fixed_qparams;
mod fused_moving_avg;
mod layer;
mod linear;
mod observer_args;
mod observer_state;
mod plain;
mod weight;

pub use conv::{Conv1d, Conv2d, ConvReLU2d, QatConv1d, QatConv2d};
pub use conv_bn::{
    ConvBn1d, ConvBn2d, ConvBnReLU1d, ConvBnReLU2d, LinearBn1d, QatBnFolded, QatConvBn1d,
    QatConvBn2d,
};
pub use layer::{LinearFeatures, QatBatchNorm, QatFloatLayer, QatNames};
pub use linear::{Linear, LinearReLU, QatLinear};
pub use plain::QatLayer;

pub use fake_quant::{FakeQuant, FakeQuantOutput, ZeroPoints};
pub use fake_quantize::FakeQuantize;
pub use fixed_qparams::FixedQParamsFakeQuantize;
pub use fused_moving_avg::FusedMovingAvgObsFakeQuantize;

use qtensor::QDType;
use qtensor::observer::{
    MovingAveragePerChannelMinMaxObserver, Observer, ObserverSpec, PerChannelMinMaxObserver,
};

use crate::error::Result;

/// What fake-quant module to build, with its arguments.
#[derive(Clone, Debug, PartialEq)]
pub enum FakeQuantSpec {
    /// `FakeQuantize(observer=..., quant_min, quant_max)`: observe, then fake-quantize with the
    /// observer's current qparams.
    FakeQuantize {
        /// The observer it drives (its dtype, scheme and range are the fake-quant's).
        observer: ObserverSpec,
    },
    /// `FixedQParamsFakeQuantize`: fixed scale and zero point (sigmoid, tanh, hardsigmoid, softmax).
    FixedQParams {
        /// The scale.
        scale: f64,
        /// The zero point.
        zero_point: i64,
        /// Target dtype.
        dtype: QDType,
        /// `quant_min`.
        quant_min: i64,
        /// `quant_max`.
        quant_max: i64,
    },
    /// `FusedMovingAvgObsFakeQuantize`: a moving-average min/max observer fused with fake-quant;
    /// qparams from fbgemm's `ChooseQuantizationParams`.
    FusedMovingAvgObs {
        /// A `MovingAverageMinMax` or `MovingAveragePerChannelMinMax` observer spec.
        observer: ObserverSpec,
    },
}

impl FakeQuantSpec {
    /// A fresh fake-quant module for this spec (PyTorch's `fake_quant_constructor()`).
    ///
    /// `InvalidQParams` for arguments PyTorch rejects: a custom range outside the dtype, an
    /// observer without integer qparams, a fused module without a moving-average observer.
    pub fn build(&self) -> Result<Box<dyn FakeQuant>> {
        Ok(match self {
            FakeQuantSpec::FakeQuantize { observer } => Box::new(FakeQuantize::new(observer)?),
            FakeQuantSpec::FixedQParams {
                scale,
                zero_point,
                dtype,
                quant_min,
                quant_max,
            } => Box::new(FixedQParamsFakeQuantize::new(
                *scale,
                *zero_point,
                *dtype,
                *quant_min,
                *quant_max,
            )?),
            FakeQuantSpec::FusedMovingAvgObs { observer } => {
                Box::new(FusedMovingAvgObsFakeQuantize::new(observer)?)
            }
        })
    }
}

/// Builds an observer from its spec (the single place fake-quant modules do so).
pub(crate) fn build_observer(spec: &ObserverSpec) -> Result<Box<dyn Observer>> {
    Ok(spec.build()?)
}

/// Per-channel `(min_vals, max_vals)` of the per-channel min/max observers.
pub(crate) fn per_channel_range(observer: &dyn Observer) -> Option<(Vec<f32>, Vec<f32>)> {
    let any = observer.as_any();
    if let Some(o) = any.downcast_ref::<PerChannelMinMaxObserver>() {
        return Some((o.min_vals().to_vec(), o.max_vals().to_vec()));
    }
    any.downcast_ref::<MovingAveragePerChannelMinMaxObserver>()
        .map(|o| (o.min_vals().to_vec(), o.max_vals().to_vec()))
}
