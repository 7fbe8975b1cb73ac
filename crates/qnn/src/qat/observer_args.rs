//! Reading a fake-quant's arguments out of an [`ObserverSpec`]: the common observer config,
//! the channel axis, the effective quantization range, and PyTorch's `FakeQuantize.__init__`
//! checks (custom range inside the dtype's bounds).

use qtensor::observer::{ObserverConfig, ObserverSpec};
use qtensor::{QDType, QScheme, calculate_qmin_qmax};

use crate::error::{QnnError, Result};

/// The uniform-quantization arguments of `spec`, or `InvalidQParams` for observers that do not
/// produce integer qparams (placeholders, no-op, recording).
pub(crate) fn config_of(module: &'static str, spec: &ObserverSpec) -> Result<ObserverConfig> {
    match spec {
        ObserverSpec::MinMax(config)
        | ObserverSpec::MovingAverageMinMax { config, .. }
        | ObserverSpec::PerChannelMinMax { config, .. }
        | ObserverSpec::MovingAveragePerChannelMinMax { config, .. }
        | ObserverSpec::Histogram { config, .. } => Ok(config.clone()),
        ObserverSpec::FixedQParams {
            dtype,
            quant_min,
            quant_max,
            ..
        } => Ok(ObserverConfig {
            quant_min: Some(*quant_min),
            quant_max: Some(*quant_max),
            ..ObserverConfig::new(*dtype, QScheme::PerTensorAffine)
        }),
        other => Err(QnnError::InvalidQParams {
            module,
            reason: format!("observer {other:?} cannot drive a fake-quant (no integer qparams)"),
        }),
    }
}

/// The channel axis of a per-channel observer spec.
pub(crate) fn ch_axis_of(spec: &ObserverSpec) -> Option<usize> {
    match spec {
        ObserverSpec::PerChannelMinMax { ch_axis, .. }
        | ObserverSpec::MovingAveragePerChannelMinMax { ch_axis, .. } => Some(*ch_axis),
        _ => None,
    }
}

/// PyTorch's `FakeQuantize.__init__` checks on a custom range (`quant_min <= quant_max`, both
/// inside `torch.iinfo(dtype)`), then the observer's effective range (`calculate_qmin_qmax`,
/// which halves for `reduce_range`).
pub(crate) fn checked_quant_range(
    module: &'static str,
    config: &ObserverConfig,
) -> Result<(i64, i64)> {
    let custom = match (config.quant_min, config.quant_max) {
        (Some(qmin), Some(qmax)) => {
            check_in_dtype(module, config.dtype, qmin, qmax)?;
            Some((qmin, qmax))
        }
        (None, None) => None,
        (qmin, qmax) => {
            return Err(QnnError::InvalidQParams {
                module,
                reason: format!("quant_min {qmin:?} and quant_max {qmax:?} must be given together"),
            });
        }
    };
    if config.qscheme.is_symmetric() && config.reduce_range && config.dtype == QDType::QUInt8 {
        return Err(QnnError::InvalidQParams {
            module,
            reason: "symmetric quint8 with reduce_range is not supported (as in PyTorch)".into(),
        });
    }
    Ok(calculate_qmin_qmax(
        config.dtype,
        config.reduce_range,
        custom,
    )?)
}

/// `quant_min <= quant_max`, both inside the dtype's storable range.
pub(crate) fn check_in_dtype(
    module: &'static str,
    dtype: QDType,
    qmin: i64,
    qmax: i64,
) -> Result<()> {
    if qmin > qmax {
        return Err(QnnError::InvalidQParams {
            module,
            reason: format!("quant_min {qmin} must be less than or equal to quant_max {qmax}"),
        });
    }
    if qmin < dtype.qmin() || qmax > dtype.qmax() {
        return Err(QnnError::InvalidQParams {
            module,
            reason: format!(
                "quant range [{qmin}, {qmax}] is outside {dtype}'s [{}, {}]",
                dtype.qmin(),
                dtype.qmax()
            ),
        });
    }
    Ok(())
}
