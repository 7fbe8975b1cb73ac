//! PyTorch 2.15's named QConfigs (`torch/ao/quantization/qconfig.py`, with the fake-quant
//! partials of `fake_quantize.py` and the observer partials of `observer.py`), as data.

use std::fmt;
use std::str::FromStr;

use qnn::qat::FakeQuantSpec;
use qnn::qtensor::observer::{ObserverConfig, ObserverSpec, PlaceholderDtype};
use qnn::qtensor::{QDType, QScheme};

use super::QConfig;
use crate::error::{QflowError, Result};

/// The quantized engines PyTorch's `get_default_qconfig` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// `"fbgemm"`: x86 server CPUs; activations with `reduce_range` (7-bit) for AVX2 kernels.
    Fbgemm,
    /// `"x86"`: PyTorch's default; same QConfigs as fbgemm.
    X86,
    /// `"qnnpack"`: Arm; full-range activations, per-tensor weights.
    Qnnpack,
    /// `"onednn"`: full-range activations, per-channel weights (VNNI CPUs).
    Onednn,
}

impl FromStr for Backend {
    type Err = QflowError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fbgemm" => Ok(Backend::Fbgemm),
            "x86" => Ok(Backend::X86),
            "qnnpack" => Ok(Backend::Qnnpack),
            "onednn" => Ok(Backend::Onednn),
            other => Err(QflowError::Format(format!(
                "backend `{other}` not supported; backend must be one of fbgemm, x86, qnnpack, onednn"
            ))),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Fbgemm => "fbgemm",
            Backend::X86 => "x86",
            Backend::Qnnpack => "qnnpack",
            Backend::Onednn => "onednn",
        })
    }
}

/// The averaging constant of PyTorch's moving-average observers (their default).
const AVERAGING_CONSTANT: f32 = 0.01;

fn cfg(
    dtype: QDType,
    qscheme: QScheme,
    reduce_range: bool,
    range: Option<(i64, i64)>,
) -> ObserverConfig {
    let mut c = ObserverConfig::new(dtype, qscheme);
    c.reduce_range = reduce_range;
    if let Some((lo, hi)) = range {
        (c.quant_min, c.quant_max) = (Some(lo), Some(hi));
    }
    c
}

/// `HistogramObserver.with_args(reduce_range=...)` (quint8, per-tensor affine, 2048 bins).
fn histogram(reduce_range: bool) -> ObserverSpec {
    ObserverSpec::Histogram {
        config: cfg(QDType::QUInt8, QScheme::PerTensorAffine, reduce_range, None),
        bins: 2048,
        upsample_rate: 16,
    }
}

/// `MovingAverageMinMaxObserver` for activations with `quant_min=0, quant_max=255`.
fn moving_avg_act(reduce_range: bool) -> ObserverSpec {
    ObserverSpec::MovingAverageMinMax {
        config: cfg(
            QDType::QUInt8,
            QScheme::PerTensorAffine,
            reduce_range,
            Some((0, 255)),
        ),
        averaging_constant: AVERAGING_CONSTANT,
    }
}

/// `MovingAverageMinMaxObserver` for qint8 symmetric weights over `[-128, 127]`.
fn moving_avg_weight() -> ObserverSpec {
    ObserverSpec::MovingAverageMinMax {
        config: cfg(
            QDType::QInt8,
            QScheme::PerTensorSymmetric,
            false,
            Some((-128, 127)),
        ),
        averaging_constant: AVERAGING_CONSTANT,
    }
}

/// `MovingAveragePerChannelMinMaxObserver` for qint8 symmetric weights over `[-128, 127]`.
fn moving_avg_per_channel_weight() -> ObserverSpec {
    ObserverSpec::MovingAveragePerChannelMinMax {
        config: cfg(
            QDType::QInt8,
            QScheme::PerChannelSymmetric,
            false,
            Some((-128, 127)),
        ),
        ch_axis: 0,
        averaging_constant: AVERAGING_CONSTANT,
    }
}

fn fake_quant(observer: ObserverSpec) -> FakeQuantSpec {
    FakeQuantSpec::FakeQuantize { observer }
}

fn fused(observer: ObserverSpec) -> FakeQuantSpec {
    FakeQuantSpec::FusedMovingAvgObs { observer }
}

/// `default_qconfig`: MinMax activations over `[0, 127]`, per-tensor symmetric qint8 weights.
pub fn default_qconfig() -> QConfig {
    QConfig::new(
        ObserverSpec::default_observer(),
        ObserverSpec::default_weight_observer(),
    )
}

/// `default_per_channel_qconfig`: as [`default_qconfig`] with per-channel weights.
pub fn default_per_channel_qconfig() -> QConfig {
    QConfig::new(
        ObserverSpec::default_observer(),
        ObserverSpec::default_per_channel_weight_observer(),
    )
}

/// `get_default_qconfig(backend)` (version 0, the only one): histogram activations (7-bit for
/// fbgemm/x86), per-channel weights (per-tensor for qnnpack).
pub fn get_default_qconfig(backend: Backend) -> QConfig {
    match backend {
        Backend::Fbgemm | Backend::X86 => QConfig::new(
            histogram(true),
            ObserverSpec::default_per_channel_weight_observer(),
        ),
        Backend::Qnnpack => QConfig::new(histogram(false), ObserverSpec::default_weight_observer()),
        Backend::Onednn => QConfig::new(
            histogram(false),
            ObserverSpec::default_per_channel_weight_observer(),
        ),
    }
}

/// `default_qat_qconfig`: `default_fake_quant` activations (moving-average, `[0, 255]`,
/// reduce_range) and `default_weight_fake_quant` weights.
pub fn default_qat_qconfig() -> QConfig {
    QConfig::new(
        fake_quant(moving_avg_act(true)),
        fake_quant(moving_avg_weight()),
    )
}

/// `default_qat_qconfig_v2`: the fused-observer version (`default_fused_act_fake_quant`,
/// `default_fused_wt_fake_quant`; activations without reduce_range).
pub fn default_qat_qconfig_v2() -> QConfig {
    QConfig::new(fused(moving_avg_act(false)), fused(moving_avg_weight()))
}

/// `get_default_qat_qconfig(backend, version)`: version 0 uses `FakeQuantize`, version 1 (the
/// default in PyTorch) `FusedMovingAvgObsFakeQuantize`. Activations are moving-average
/// min/max over `[0, 255]` with reduce_range for fbgemm/x86; weights are per-channel symmetric
/// qint8 (per-tensor for qnnpack).
pub fn get_default_qat_qconfig(backend: Backend, version: u32) -> Result<QConfig> {
    let reduce = matches!(backend, Backend::Fbgemm | Backend::X86);
    let per_channel = !matches!(backend, Backend::Qnnpack);
    let weight_obs = if per_channel {
        moving_avg_per_channel_weight()
    } else {
        moving_avg_weight()
    };
    match version {
        0 => Ok(QConfig::new(
            fake_quant(moving_avg_act(reduce)),
            fake_quant(weight_obs),
        )),
        1 => Ok(QConfig::new(
            fused(moving_avg_act(reduce)),
            fused(weight_obs),
        )),
        v => Err(QflowError::Format(format!(
            "get_default_qat_qconfig version {v} is not supported; version must be 0 or 1"
        ))),
    }
}

/// `default_dynamic_qconfig`: activations quantized per call (quint8), per-tensor symmetric
/// qint8 weights.
pub fn default_dynamic_qconfig() -> QConfig {
    QConfig::new(
        ObserverSpec::default_dynamic_quant_observer(),
        ObserverSpec::default_weight_observer(),
    )
}

/// `per_channel_dynamic_qconfig`: as [`default_dynamic_qconfig`] with per-channel weights.
pub fn per_channel_dynamic_qconfig() -> QConfig {
    QConfig::new(
        ObserverSpec::default_dynamic_quant_observer(),
        ObserverSpec::default_per_channel_weight_observer(),
    )
}

/// `float16_dynamic_qconfig`: float16 placeholders (dynamic activations, float16 weights).
pub fn float16_dynamic_qconfig() -> QConfig {
    QConfig::new(
        ObserverSpec::Placeholder {
            dtype: PlaceholderDtype::Float16,
            is_dynamic: true,
        },
        ObserverSpec::Placeholder {
            dtype: PlaceholderDtype::Float16,
            is_dynamic: false,
        },
    )
}

/// `float_qparams_weight_only_qconfig`: float32 placeholder activations, per-row quint8
/// weights with float zero points (embeddings).
pub fn float_qparams_weight_only_qconfig() -> QConfig {
    QConfig::new(
        ObserverSpec::default_placeholder_observer(),
        ObserverSpec::default_float_qparams_observer(),
    )
}

/// A full-range static QConfig for CPUs whose int8 dot products do not saturate (AVX-512 VNNI,
/// AVX-VNNI, Arm dotprod/i8mm): histogram activations over the whole `[0, 255]` (no
/// reduce_range) and per-channel symmetric qint8 weights — PyTorch's onednn default.
pub fn full_range_qconfig() -> QConfig {
    get_default_qconfig(Backend::Onednn)
}

/// The QAT counterpart of [`full_range_qconfig`]: PyTorch's `get_default_qat_qconfig("onednn")`
/// (fused moving-average fake-quant over `[0, 255]`, per-channel weights).
pub fn full_range_qat_qconfig() -> QConfig {
    QConfig::new(
        fused(moving_avg_act(false)),
        fused(moving_avg_per_channel_weight()),
    )
}
