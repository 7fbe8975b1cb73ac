//! QConfig: what observer or fake-quant each activation and weight gets (PyTorch's
//! `torch.ao.quantization.qconfig`), the mapping that assigns them to nodes, and the named
//! defaults with PyTorch 2.15's exact arguments.

use qnn::qat::FakeQuantSpec;
use qnn::qtensor::observer::ObserverSpec;

/// How one tensor (an activation or a weight) is observed: by an observer (post-training
/// quantization) or by a fake-quant module (quantization-aware training).
#[derive(Clone, Debug, PartialEq)]
pub enum QuantSpec {
    /// An observer (`MinMaxObserver.with_args(...)`, …).
    Observer(ObserverSpec),
    /// A fake-quant module (`FakeQuantize.with_args(...)`, …).
    FakeQuant(FakeQuantSpec),
}

/// PyTorch's `QConfig(activation=..., weight=...)`.
#[derive(Clone, Debug, PartialEq)]
pub struct QConfig {
    /// For the layer's output (and the graph input).
    pub activation: QuantSpec,
    /// For the layer's weight.
    pub weight: QuantSpec,
}
