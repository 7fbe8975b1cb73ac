//! PyTorch's ready-made observers (the module-level `default_*` partials at the end of
//! `torch/ao/quantization/observer.py`) as [`ObserverSpec`] constructors.

use crate::dtype::QDType;
use crate::qscheme::QScheme;

use super::{ObserverConfig, ObserverSpec, PlaceholderDtype};

fn config(dtype: QDType, qscheme: QScheme, range: Option<(i64, i64)>, eps: f32) -> ObserverConfig {
    let mut c = ObserverConfig::new(dtype, qscheme);
    if let Some((lo, hi)) = range {
        (c.quant_min, c.quant_max) = (Some(lo), Some(hi));
    }
    c.eps = eps;
    c
}

/// `2 ** -12`, the `eps` of the `_range_neg_127_to_127` observers.
const EPS_2_POW_NEG_12: f32 = 1.0 / 4096.0;

impl ObserverSpec {
    /// `default_observer`: `MinMaxObserver(quant_min=0, quant_max=127)` (quint8, affine).
    pub fn default_observer() -> Self {
        let c = config(
            QDType::QUInt8,
            QScheme::PerTensorAffine,
            Some((0, 127)),
            f32::EPSILON,
        );
        ObserverSpec::MinMax(c)
    }

    /// `default_weight_observer`: `MinMaxObserver(dtype=qint8, qscheme=per_tensor_symmetric)`.
    pub fn default_weight_observer() -> Self {
        let c = config(
            QDType::QInt8,
            QScheme::PerTensorSymmetric,
            None,
            f32::EPSILON,
        );
        ObserverSpec::MinMax(c)
    }

    /// `weight_observer_range_neg_127_to_127`: symmetric qint8 MinMax over `[-127, 127]`,
    /// `eps = 2^-12`.
    pub fn weight_observer_range_neg_127_to_127() -> Self {
        let c = config(
            QDType::QInt8,
            QScheme::PerTensorSymmetric,
            Some((-127, 127)),
            EPS_2_POW_NEG_12,
        );
        ObserverSpec::MinMax(c)
    }

    /// `default_histogram_observer`: `HistogramObserver(quant_min=0, quant_max=127)`.
    pub fn default_histogram_observer() -> Self {
        let c = config(
            QDType::QUInt8,
            QScheme::PerTensorAffine,
            Some((0, 127)),
            f32::EPSILON,
        );
        ObserverSpec::Histogram {
            config: c,
            bins: 2048,
            upsample_rate: 16,
        }
    }

    /// `default_per_channel_weight_observer`: `PerChannelMinMaxObserver(dtype=qint8,
    /// qscheme=per_channel_symmetric)` along axis 0.
    pub fn default_per_channel_weight_observer() -> Self {
        let c = config(
            QDType::QInt8,
            QScheme::PerChannelSymmetric,
            None,
            f32::EPSILON,
        );
        ObserverSpec::PerChannelMinMax {
            config: c,
            ch_axis: 0,
        }
    }

    /// `per_channel_weight_observer_range_neg_127_to_127`: symmetric qint8 per-channel MinMax
    /// over `[-127, 127]`, `eps = 2^-12`, axis 0.
    pub fn per_channel_weight_observer_range_neg_127_to_127() -> Self {
        let c = config(
            QDType::QInt8,
            QScheme::PerChannelSymmetric,
            Some((-127, 127)),
            EPS_2_POW_NEG_12,
        );
        ObserverSpec::PerChannelMinMax {
            config: c,
            ch_axis: 0,
        }
    }

    /// `default_dynamic_quant_observer`: `PlaceholderObserver(dtype=quint8, quant_min=0,
    /// quant_max=255, is_dynamic=True)`.
    pub fn default_dynamic_quant_observer() -> Self {
        ObserverSpec::Placeholder {
            dtype: PlaceholderDtype::Quantized(QDType::QUInt8),
            is_dynamic: true,
        }
    }

    /// `default_float_qparams_observer`: `PerChannelMinMaxObserver(dtype=quint8,
    /// qscheme=per_channel_affine_float_qparams, ch_axis=0)` (embedding weights).
    pub fn default_float_qparams_observer() -> Self {
        let c = config(
            QDType::QUInt8,
            QScheme::PerChannelAffineFloatQParams,
            None,
            f32::EPSILON,
        );
        ObserverSpec::PerChannelMinMax {
            config: c,
            ch_axis: 0,
        }
    }

    /// `default_float_qparams_observer_4bit`: as [`Self::default_float_qparams_observer`] with
    /// quint4x2.
    pub fn default_float_qparams_observer_4bit() -> Self {
        let c = config(
            QDType::QUInt4x2,
            QScheme::PerChannelAffineFloatQParams,
            None,
            f32::EPSILON,
        );
        ObserverSpec::PerChannelMinMax {
            config: c,
            ch_axis: 0,
        }
    }

    /// `default_fixed_qparams_range_neg1to1_observer` (tanh): scale `2/256`, zero point 128,
    /// quint8 over `[0, 255]`.
    pub fn default_fixed_qparams_range_neg1to1_observer() -> Self {
        ObserverSpec::FixedQParams {
            scale: 2.0 / 256.0,
            zero_point: 128,
            dtype: QDType::QUInt8,
            quant_min: 0,
            quant_max: 255,
        }
    }

    /// `default_fixed_qparams_range_0to1_observer` (sigmoid, hardsigmoid, softmax): scale
    /// `1/256`, zero point 0, quint8 over `[0, 255]`.
    pub fn default_fixed_qparams_range_0to1_observer() -> Self {
        ObserverSpec::FixedQParams {
            scale: 1.0 / 256.0,
            zero_point: 0,
            dtype: QDType::QUInt8,
            quant_min: 0,
            quant_max: 255,
        }
    }

    /// `default_placeholder_observer`: `PlaceholderObserver()` (float32, not dynamic).
    pub fn default_placeholder_observer() -> Self {
        ObserverSpec::Placeholder {
            dtype: PlaceholderDtype::Float32,
            is_dynamic: false,
        }
    }

    /// `default_debug_observer`: `RecordingObserver()` (quint8).
    pub fn default_debug_observer() -> Self {
        ObserverSpec::Recording {
            dtype: QDType::QUInt8,
        }
    }
}
