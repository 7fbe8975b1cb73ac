//! Quantization-aware training: fake-quant modules and the QAT layers whose weights pass
//! through fake-quant (PyTorch `torch.ao.nn.qat`, `torch.ao.quantization.fake_quantize`).
//!
//! A [`FakeQuantSpec`] is the data form of PyTorch's `FakeQuantize.with_args(...)`: a QAT
//! qconfig holds specs, and each place that needs a fake-quant gets a fresh module from it.
//!
//! (The modules are being filled in; the spec below is fixed.)

use qtensor::QDType;
use qtensor::observer::ObserverSpec;

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
