//! QConfig: what observer or fake-quant each activation and weight gets (PyTorch's
//! `torch.ao.quantization.qconfig`), the [`QConfigMapping`] that assigns them to nodes (global,
//! per module kind, per node name, `None` to skip), and the named defaults with PyTorch 2.15's
//! exact arguments ([`get_default_qconfig`], [`get_default_qat_qconfig`], …).
//!
//! [`crate::passes::propagate_qconfig`] writes the resolved QConfig into each node.

mod defaults;
mod mapping;

pub use defaults::{
    Backend, default_dynamic_qconfig, default_per_channel_qconfig, default_qat_qconfig,
    default_qat_qconfig_v2, default_qconfig, float_qparams_weight_only_qconfig,
    float16_dynamic_qconfig, full_range_qat_qconfig, full_range_qconfig, get_default_qat_qconfig,
    get_default_qconfig, per_channel_dynamic_qconfig,
};
pub use mapping::QConfigMapping;

use qnn::qat::FakeQuantSpec;
use qnn::qtensor::observer::{ObserverSpec, PlaceholderDtype};

/// How one tensor (an activation or a weight) is observed: by an observer (post-training
/// quantization) or by a fake-quant module (quantization-aware training).
#[derive(Clone, Debug, PartialEq)]
pub enum QuantSpec {
    /// An observer (`MinMaxObserver.with_args(...)`, …).
    Observer(ObserverSpec),
    /// A fake-quant module (`FakeQuantize.with_args(...)`, …).
    FakeQuant(FakeQuantSpec),
}

impl QuantSpec {
    /// The observer behind the spec: the observer itself, or the one a fake-quant drives
    /// (`None` for `FixedQParams` fake-quant, which has no observer spec of its own).
    pub fn observer(&self) -> Option<&ObserverSpec> {
        match self {
            QuantSpec::Observer(o) => Some(o),
            QuantSpec::FakeQuant(
                FakeQuantSpec::FakeQuantize { observer }
                | FakeQuantSpec::FusedMovingAvgObs { observer },
            ) => Some(observer),
            QuantSpec::FakeQuant(_) => None,
        }
    }

    /// True for a fake-quant (quantization-aware training) spec.
    pub fn is_fake_quant(&self) -> bool {
        matches!(self, QuantSpec::FakeQuant(_))
    }
}

impl From<ObserverSpec> for QuantSpec {
    fn from(o: ObserverSpec) -> Self {
        QuantSpec::Observer(o)
    }
}

impl From<FakeQuantSpec> for QuantSpec {
    fn from(f: FakeQuantSpec) -> Self {
        QuantSpec::FakeQuant(f)
    }
}

/// PyTorch's `QConfig(activation=..., weight=...)`.
#[derive(Clone, Debug, PartialEq)]
pub struct QConfig {
    /// For the layer's output (and the graph input).
    pub activation: QuantSpec,
    /// For the layer's weight.
    pub weight: QuantSpec,
}

impl QConfig {
    /// A QConfig from an activation spec and a weight spec.
    pub fn new(activation: impl Into<QuantSpec>, weight: impl Into<QuantSpec>) -> Self {
        Self {
            activation: activation.into(),
            weight: weight.into(),
        }
    }

    /// True when activations are quantized per call (dynamic quantization: a placeholder
    /// activation observer with `is_dynamic`).
    pub fn is_dynamic(&self) -> bool {
        matches!(
            self.activation.observer(),
            Some(ObserverSpec::Placeholder {
                is_dynamic: true,
                ..
            })
        )
    }

    /// True when the weight is kept as float16 (`float16_dynamic_qconfig`).
    pub fn is_float16_weight(&self) -> bool {
        matches!(
            self.weight.observer(),
            Some(
                ObserverSpec::Placeholder {
                    dtype: PlaceholderDtype::Float16,
                    ..
                } | ObserverSpec::Noop {
                    dtype: PlaceholderDtype::Float16
                }
            )
        )
    }
}
