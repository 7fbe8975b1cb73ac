//! Float tensor -> quantized tensor.

use super::validate::{
    check_axis, check_float_qparams_dtype, check_float_qparams_scale, check_per_channel_dtype,
    check_same_len, check_scale, check_zero_point,
};
use super::{IntRepr, QTensor, for_each_channel_block, repr_from_values};
use crate::choose_qparams::choose_qparams_quant_utils;
use crate::dtype::QDType;
use crate::error::{QTensorError, Result};
use crate::qscheme::QParams;
use crate::quant::{
    PerTensor8, par_map_to_vec, quantize_val_float_qparams, quantize_val_scalar_path,
    quantize_val_sub_byte,
};
use crate::tensor::Tensor;

/// `torch.quantize_per_tensor(x, scale, zero_point, dtype)`, bit-exact with the fbgemm engine.
///
/// The scale must be finite and > 0 and the zero point inside the dtype's range. The result
/// keeps the input's shape and layout.
pub fn quantize_per_tensor(
    x: &Tensor<f32>,
    scale: f64,
    zero_point: i64,
    dtype: QDType,
) -> Result<QTensor> {
    check_scale(scale)?;
    check_zero_point(zero_point, dtype)?;
    let (shape, layout, src) = (x.shape(), x.layout(), x.data());
    let (s, zp) = (scale as f32, zero_point as i32);
    let (qmin, qmax) = dtype.range_i32();
    let repr = match dtype {
        QDType::QUInt8 | QDType::QInt8 => {
            let kernel = PerTensor8::new(s, zp, qmin, qmax);
            let out = kernel.quantize_to_vec(src);
            if dtype == QDType::QUInt8 {
                IntRepr::U8(Tensor::from_parts(shape, out, layout))
            } else {
                let out: Vec<i8> = bytemuck::allocation::cast_vec(out);
                IntRepr::I8(Tensor::from_parts(shape, out, layout))
            }
        }
        QDType::QInt32 => {
            let inv = 1.0 / s;
            let out = par_map_to_vec(src, |v| quantize_val_scalar_path(v, inv, zp, qmin, qmax));
            IntRepr::I32(Tensor::from_parts(shape, out, layout))
        }
        QDType::QUInt4x2 => {
            let inv = if s == 0.0 { 1.0 } else { 1.0 / s };
            let values: Vec<i32> = src
                .iter()
                .map(|&v| quantize_val_sub_byte(v, inv, zp, qmin, qmax))
                .collect();
            repr_from_values(shape, layout, &values, dtype)
        }
    };
    let qparams = QParams::PerTensor { scale, zero_point };
    Ok(QTensor::from_parts(repr, dtype, shape, layout, qparams))
}

/// `torch.quantize_per_channel(x, scales, zero_points, axis, dtype)` with integer zero points:
/// each channel uses its scale rounded to `f32` (the scalar fbgemm path, see
/// [`quantize_val_scalar_path`]). quint4x2 is not supported, as in torch.
pub fn quantize_per_channel(
    x: &Tensor<f32>,
    scales: &[f64],
    zero_points: &[i64],
    axis: usize,
    dtype: QDType,
) -> Result<QTensor> {
    check_per_channel_dtype(dtype)?;
    check_same_len(scales.len(), zero_points.len())?;
    check_axis(x.shape(), axis, scales.len())?;
    scales.iter().try_for_each(|&s| check_scale(s))?;
    zero_points
        .iter()
        .try_for_each(|&z| check_zero_point(z, dtype))?;
    let inv: Vec<f32> = scales.iter().map(|&s| 1.0 / s as f32).collect();
    let zps: Vec<i32> = zero_points.iter().map(|&z| z as i32).collect();
    let (qmin, qmax) = dtype.range_i32();
    let mut values = vec![0i32; x.numel()];
    for_each_channel_block(
        x.shape(),
        x.layout(),
        axis,
        x.data(),
        &mut values,
        |c, s, d| {
            for (o, &v) in d.iter_mut().zip(s) {
                *o = quantize_val_scalar_path(v, inv[c], zps[c], qmin, qmax);
            }
        },
    );
    // 8-bit stores truncate, as torch's do (a NaN's i32::MIN becomes 0).
    let repr = repr_from_values(x.shape(), x.layout(), &values, dtype);
    let qparams = QParams::PerChannel {
        scales: scales.to_vec(),
        zero_points: zero_points.to_vec(),
        axis,
    };
    Ok(QTensor::from_parts(
        repr,
        dtype,
        x.shape(),
        x.layout(),
        qparams,
    ))
}

/// `torch.quantize_per_channel` with float zero points (`per_channel_affine_float_qparams`),
/// for quint8 or quint4x2 (packed low nibble first, in flat memory order).
pub fn quantize_per_channel_float_qparams(
    x: &Tensor<f32>,
    scales: &[f32],
    zero_points: &[f32],
    axis: usize,
    dtype: QDType,
) -> Result<QTensor> {
    check_float_qparams_dtype(dtype)?;
    check_same_len(scales.len(), zero_points.len())?;
    check_axis(x.shape(), axis, scales.len())?;
    scales
        .iter()
        .try_for_each(|&s| check_float_qparams_scale(s))?;
    if let Some(z) = zero_points.iter().find(|z| !z.is_finite()) {
        return Err(QTensorError::Unsupported(format!(
            "float zero point {z} is not finite"
        )));
    }
    let (qmin, qmax) = dtype.range_i32();
    let mut values = vec![0i32; x.numel()];
    for_each_channel_block(
        x.shape(),
        x.layout(),
        axis,
        x.data(),
        &mut values,
        |c, s, d| {
            for (o, &v) in d.iter_mut().zip(s) {
                *o = quantize_val_float_qparams(v, scales[c], zero_points[c], qmin, qmax);
            }
        },
    );
    let repr = repr_from_values(x.shape(), x.layout(), &values, dtype);
    let qparams = QParams::PerChannelFloat {
        scales: scales.to_vec(),
        zero_points: zero_points.to_vec(),
        axis,
    };
    Ok(QTensor::from_parts(
        repr,
        dtype,
        x.shape(),
        x.layout(),
        qparams,
    ))
}

/// `min()` and `max()` of the data with torch's NaN propagation; `None` if empty.
fn min_max(data: &[f32]) -> Option<(f32, f32)> {
    let first = *data.first()?;
    Some(data.iter().fold((first, first), |(lo, hi), &v| {
        if v.is_nan() || lo.is_nan() {
            (f32::NAN, f32::NAN)
        } else {
            (lo.min(v), hi.max(v))
        }
    }))
}

/// `torch.quantize_per_tensor_dynamic(x, dtype, reduce_range)` (fbgemm engine): qparams from
/// the data's min/max via [`choose_qparams_quant_utils`], then [`quantize_per_tensor`].
/// quint8 or qint8 only; an empty tensor is an error, as in torch.
pub fn quantize_per_tensor_dynamic(
    x: &Tensor<f32>,
    dtype: QDType,
    reduce_range: bool,
) -> Result<QTensor> {
    let (qmin, qmax) = match dtype {
        QDType::QUInt8 => (0, 255),
        QDType::QInt8 => (-128, 127),
        other => {
            return Err(QTensorError::Unsupported(format!(
                "quantize_per_tensor_dynamic supports quint8 and qint8, got {other}"
            )));
        }
    };
    let (min, max) = min_max(x.data()).ok_or_else(|| {
        QTensorError::Unsupported("quantize_per_tensor_dynamic of an empty tensor".into())
    })?;
    let (scale, zero_point) =
        choose_qparams_quant_utils(min, max, qmin, qmax, false, false, reduce_range);
    quantize_per_tensor(x, scale, i64::from(zero_point), dtype)
}

/// `torch._choose_qparams_per_tensor(x, reduce_range)`: the quant_utils qparams for the quint8
/// range `0..=255` (halved by `reduce_range`). An empty tensor is treated as all zeros.
pub fn choose_qparams_per_tensor(x: &Tensor<f32>, reduce_range: bool) -> (f64, i64) {
    let (min, max) = min_max(x.data()).unwrap_or((0.0, 0.0));
    let (scale, zero_point) =
        choose_qparams_quant_utils(min, max, 0, 255, false, false, reduce_range);
    (scale, i64::from(zero_point))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_tensor_known_values() {
        let x = Tensor::new(&[4], vec![0.5, f32::NAN, -1.0, 1000.0]).unwrap();
        let q = quantize_per_tensor(&x, 1.0, 1, QDType::QUInt8).unwrap();
        assert_eq!(q.int_values(), vec![1, 255, 0, 255]);
        let q = quantize_per_tensor(&x, 0.5, 3, QDType::QUInt4x2).unwrap();
        assert_eq!(q.int_values(), vec![4, 0, 1, 15]);
        assert_eq!(
            q.int_repr(),
            IntRepr::U8(Tensor::new(&[2], vec![0x04, 0xf1]).unwrap())
        );
    }

    #[test]
    fn per_channel_uses_each_channel_scale() {
        let x = Tensor::new(&[2, 2], vec![1.0, 2.0, 1.0, 2.0]).unwrap();
        let q = quantize_per_channel(&x, &[1.0, 0.5], &[0, 10], 0, QDType::QInt8).unwrap();
        assert_eq!(q.int_values(), vec![1, 2, 12, 14]);
        let x = Tensor::new(&[1], vec![f32::NAN]).unwrap();
        let q = quantize_per_channel(&x, &[1.0], &[5], 0, QDType::QUInt8).unwrap();
        assert_eq!(q.int_values(), vec![0]);
    }

    #[test]
    fn dynamic_all_zero_input() {
        let x = Tensor::<f32>::zeros(&[3]);
        assert_eq!(choose_qparams_per_tensor(&x, false), (0.1, 0));
        let q = quantize_per_tensor_dynamic(&x, QDType::QInt8, false).unwrap();
        assert_eq!(q.q_scale(), Ok(0.1));
    }
}
