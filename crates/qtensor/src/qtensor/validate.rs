//! Validation of quantization parameters against a dtype and a shape.

use crate::dtype::QDType;
use crate::error::{QTensorError, Result};
use crate::qscheme::QParams;

/// A scale must be finite and > 0.
pub(crate) fn check_scale(scale: f64) -> Result<()> {
    if scale.is_finite() && scale > 0.0 {
        Ok(())
    } else {
        Err(QTensorError::InvalidScale { scale })
    }
}

/// A float-qparams scale must be finite and >= 0 (torch uses `inv = 1` for a zero scale).
pub(crate) fn check_float_qparams_scale(scale: f32) -> Result<()> {
    if scale.is_finite() && scale >= 0.0 {
        Ok(())
    } else {
        Err(QTensorError::InvalidScale {
            scale: f64::from(scale),
        })
    }
}

/// The zero point must lie in `[qmin, qmax]`.
pub(crate) fn check_zero_point_in(zero_point: i64, qmin: i64, qmax: i64) -> Result<()> {
    if (qmin..=qmax).contains(&zero_point) {
        Ok(())
    } else {
        Err(QTensorError::ZeroPointOutOfRange {
            zero_point,
            qmin,
            qmax,
        })
    }
}

/// The zero point must lie in the dtype's range.
pub(crate) fn check_zero_point(zero_point: i64, dtype: QDType) -> Result<()> {
    check_zero_point_in(zero_point, dtype.qmin(), dtype.qmax())
}

/// `axis < ndim` and `count == shape[axis]`.
pub(crate) fn check_axis(shape: &[usize], axis: usize, count: usize) -> Result<()> {
    let Some(&channels) = shape.get(axis) else {
        return Err(QTensorError::AxisOutOfRange {
            axis,
            ndim: shape.len(),
        });
    };
    if channels == count {
        Ok(())
    } else {
        Err(QTensorError::ChannelMismatch {
            expected: channels,
            got: count,
        })
    }
}

/// Scales and zero points come in equal numbers.
pub(crate) fn check_same_len(scales: usize, zero_points: usize) -> Result<()> {
    if scales == zero_points {
        Ok(())
    } else {
        Err(QTensorError::ChannelMismatch {
            expected: scales,
            got: zero_points,
        })
    }
}

/// Float qparams exist only for quint8 and quint4x2.
pub(crate) fn check_float_qparams_dtype(dtype: QDType) -> Result<()> {
    match dtype {
        QDType::QUInt8 | QDType::QUInt4x2 => Ok(()),
        other => Err(QTensorError::Unsupported(format!(
            "float qparams need quint8 or quint4x2, got {other}"
        ))),
    }
}

/// Integer per-channel quantization is not defined for quint4x2 (as in torch).
pub(crate) fn check_per_channel_dtype(dtype: QDType) -> Result<()> {
    if dtype == QDType::QUInt4x2 {
        Err(QTensorError::Unsupported(
            "per-channel quantization with integer zero points is not defined for quint4x2".into(),
        ))
    } else {
        Ok(())
    }
}

/// Validates `qparams` for a tensor of `shape` and `dtype`.
pub(crate) fn check_qparams(shape: &[usize], dtype: QDType, qparams: &QParams) -> Result<()> {
    match qparams {
        QParams::PerTensor { scale, zero_point } => {
            check_scale(*scale)?;
            check_zero_point(*zero_point, dtype)
        }
        QParams::PerChannel {
            scales,
            zero_points,
            axis,
        } => {
            check_per_channel_dtype(dtype)?;
            check_same_len(scales.len(), zero_points.len())?;
            check_axis(shape, *axis, scales.len())?;
            scales.iter().try_for_each(|&s| check_scale(s))?;
            zero_points
                .iter()
                .try_for_each(|&z| check_zero_point(z, dtype))
        }
        QParams::PerChannelFloat {
            scales,
            zero_points,
            axis,
        } => {
            check_float_qparams_dtype(dtype)?;
            check_same_len(scales.len(), zero_points.len())?;
            check_axis(shape, *axis, scales.len())?;
            scales
                .iter()
                .try_for_each(|&s| check_float_qparams_scale(s))?;
            match zero_points.iter().find(|z| !z.is_finite()) {
                Some(z) => Err(QTensorError::Unsupported(format!(
                    "float zero point {z} is not finite"
                ))),
                None => Ok(()),
            }
        }
    }
}
