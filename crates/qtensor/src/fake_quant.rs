//! Fake quantization (quantize then dequantize in float) with straight-through masks.
//!
//! Each function returns `(output, mask)`; `mask[i] == 1` where the gradient passes, i.e. where
//! the rounded value **before clamping** lies in `[qmin, qmax]`.

use crate::error::{QTensorError, Result};
use crate::qtensor::for_each_channel_block;
use crate::qtensor::validate::{check_axis, check_same_len, check_scale, check_zero_point_in};
use crate::tensor::Tensor;

/// x86 conversion of a float to `i64`: NaN and out-of-range values give `i64::MIN`.
fn to_int64(v: f64) -> i64 {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if (-TWO_POW_63..TWO_POW_63).contains(&v) {
        v as i64
    } else {
        i64::MIN
    }
}

/// C `lrintf` on x86-64 (round half to even; NaN and out-of-range give `i64::MIN`).
fn lrintf(v: f32) -> i64 {
    to_int64(f64::from(v.round_ties_even()))
}

fn check_range(qmin: i64, qmax: i64) -> Result<()> {
    if qmin <= qmax {
        Ok(())
    } else {
        Err(QTensorError::InvalidQuantRange {
            qmin,
            qmax,
            reason: "qmin must not exceed qmax",
        })
    }
}

fn check_f32_scale(scale: f32) -> Result<()> {
    check_scale(f64::from(scale))
}

/// `fmin(fmax(q, qmin), qmax)` evaluated in `f64`, as the C++ mixed-type calls are.
fn clamp_f64(q: f64, qmin: i64, qmax: i64) -> f64 {
    q.max(qmin as f64).min(qmax as f64)
}

/// One element of `torch.fake_quantize_per_tensor_affine` (cachemask kernel):
/// `qf = f32(zp) + rint(f32(x * inv))`; `q = i64(fmin(fmax(qf, qmin), qmax))` (NaN -> qmin);
/// `y = f32(q - zp) * scale`; mask `qmin <= qf <= qmax` compared in `f32`.
fn fake_quant_per_tensor_val(
    x: f32,
    scale: f32,
    inv: f32,
    zp: i64,
    qmin: i64,
    qmax: i64,
) -> (f32, u8) {
    let qf = zp as f32 + (x * inv).round_ties_even();
    let q = clamp_f64(f64::from(qf), qmin, qmax) as i64;
    let y = q.wrapping_sub(zp) as f32 * scale;
    let pass = qmin as f32 <= qf && qf <= qmax as f32;
    (y, u8::from(pass))
}

/// One element of the per-channel kernel with an integer zero point:
/// `q = i64(f32(zp) + rint(f32(x * inv)))` (NaN and ±inf give `i64::MIN`); mask from `q`;
/// `y = f32(f64(fmin(fmax(q, qmin), qmax) - zp) * scale)`.
fn fake_quant_int_zp_val(x: f32, scale: f32, zp: i32, qmin: i64, qmax: i64) -> (f32, u8) {
    let inv = 1.0 / scale;
    let q = to_int64(f64::from(zp as f32 + (x * inv).round_ties_even()));
    let y = ((clamp_f64(q as f64, qmin, qmax) - f64::from(zp)) * f64::from(scale)) as f32;
    (y, u8::from(qmin <= q && q <= qmax))
}

/// One element of the per-channel kernel with a float zero point: `q = lrintf(fma(x, inv, zp))`
/// (torch's AVX2 build contracts it), mask from `q`,
/// `y = f32((fmin(fmax(q, qmin), qmax) - zp) * scale)` evaluated in `f64`.
fn fake_quant_float_zp_val(x: f32, scale: f32, zp: f32, qmin: i64, qmax: i64) -> (f32, u8) {
    let inv = 1.0 / scale;
    let q = lrintf(x.mul_add(inv, zp));
    let y = ((clamp_f64(q as f64, qmin, qmax) - f64::from(zp)) * f64::from(scale)) as f32;
    (y, u8::from(qmin <= q && q <= qmax))
}

/// Output and mask tensors shaped (and laid out) like `x`.
fn outputs(x: &Tensor<f32>, y: Vec<f32>, mask: Vec<u8>) -> (Tensor<f32>, Tensor<u8>) {
    (
        Tensor::from_parts(x.shape(), y, x.layout()),
        Tensor::from_parts(x.shape(), mask, x.layout()),
    )
}

/// `torch.fake_quantize_per_tensor_affine(x, scale, zero_point, qmin, qmax)` with its
/// straight-through mask. The scale is used as `f32`; `zero_point` must lie in `[qmin, qmax]`.
///
/// ```
/// use qtensor::{fake_quantize_per_tensor_affine, Tensor};
/// let x = Tensor::new(&[2], vec![1.554, 1.555]).unwrap();
/// let (y, mask) = fake_quantize_per_tensor_affine(&x, 0.01, 100, 0, 255).unwrap();
/// assert_eq!(mask.data(), &[1, 0]); // 1.555 rounds to 156 + 100 = 256 > 255
/// assert_eq!(y.data()[0], y.data()[1]);
/// ```
pub fn fake_quantize_per_tensor_affine(
    x: &Tensor<f32>,
    scale: f64,
    zero_point: i64,
    qmin: i64,
    qmax: i64,
) -> Result<(Tensor<f32>, Tensor<u8>)> {
    check_range(qmin, qmax)?;
    check_scale(scale)?;
    check_zero_point_in(zero_point, qmin, qmax)?;
    let s = scale as f32;
    let inv = 1.0 / s;
    let (y, mask) = x
        .data()
        .iter()
        .map(|&v| fake_quant_per_tensor_val(v, s, inv, zero_point, qmin, qmax))
        .unzip();
    Ok(outputs(x, y, mask))
}

/// Runs a per-channel element function over `x` along `axis`.
fn per_channel(
    x: &Tensor<f32>,
    axis: usize,
    f: impl Fn(usize, f32) -> (f32, u8),
) -> (Tensor<f32>, Tensor<u8>) {
    let mut pairs = vec![(0.0f32, 0u8); x.numel()];
    for_each_channel_block(
        x.shape(),
        x.layout(),
        axis,
        x.data(),
        &mut pairs,
        |c, s, d| {
            for (o, &v) in d.iter_mut().zip(s) {
                *o = f(c, v);
            }
        },
    );
    let (y, mask) = pairs.into_iter().unzip();
    outputs(x, y, mask)
}

/// `torch.fake_quantize_per_channel_affine` with integer zero points (each in `[qmin, qmax]`)
/// and `f32` scales, with its straight-through mask.
pub fn fake_quantize_per_channel_affine(
    x: &Tensor<f32>,
    scales: &[f32],
    zero_points: &[i32],
    axis: usize,
    qmin: i64,
    qmax: i64,
) -> Result<(Tensor<f32>, Tensor<u8>)> {
    check_range(qmin, qmax)?;
    check_same_len(scales.len(), zero_points.len())?;
    check_axis(x.shape(), axis, scales.len())?;
    scales.iter().try_for_each(|&s| check_f32_scale(s))?;
    zero_points
        .iter()
        .try_for_each(|&z| check_zero_point_in(i64::from(z), qmin, qmax))?;
    Ok(per_channel(x, axis, |c, v| {
        fake_quant_int_zp_val(v, scales[c], zero_points[c], qmin, qmax)
    }))
}

/// `torch.fake_quantize_per_channel_affine` with float zero points (the FMA form of
/// numerics §2.7), with its straight-through mask. Zero points must be finite.
pub fn fake_quantize_per_channel_affine_float_zp(
    x: &Tensor<f32>,
    scales: &[f32],
    zero_points: &[f32],
    axis: usize,
    qmin: i64,
    qmax: i64,
) -> Result<(Tensor<f32>, Tensor<u8>)> {
    check_range(qmin, qmax)?;
    check_same_len(scales.len(), zero_points.len())?;
    check_axis(x.shape(), axis, scales.len())?;
    scales.iter().try_for_each(|&s| check_f32_scale(s))?;
    if let Some(z) = zero_points.iter().find(|z| !z.is_finite()) {
        return Err(QTensorError::Unsupported(format!(
            "float zero point {z} is not finite"
        )));
    }
    Ok(per_channel(x, axis, |c, v| {
        fake_quant_float_zp_val(v, scales[c], zero_points[c], qmin, qmax)
    }))
}

/// Straight-through backward: `dx = dy * mask` (in `f32`, so `inf * 0` is NaN as in torch).
/// `ShapeMismatch` if the shapes differ.
pub fn fake_quantize_backward(grad_out: &Tensor<f32>, mask: &Tensor<u8>) -> Result<Tensor<f32>> {
    if grad_out.shape() != mask.shape() || grad_out.layout() != mask.layout() {
        return Err(QTensorError::ShapeMismatch {
            expected: grad_out.shape().to_vec(),
            got: mask.shape().to_vec(),
        });
    }
    let dx = grad_out
        .data()
        .iter()
        .zip(mask.data())
        .map(|(&dy, &m)| dy * f32::from(m))
        .collect();
    Ok(Tensor::from_parts(grad_out.shape(), dx, grad_out.layout()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_tensor_mask_uses_unclamped_value() {
        let x = Tensor::new(&[4], vec![1.554, 1.555, f32::NAN, f32::INFINITY]).unwrap();
        let (y, mask) = fake_quantize_per_tensor_affine(&x, 0.01, 100, 0, 255).unwrap();
        assert_eq!(mask.data(), &[1, 0, 0, 0]);
        assert_eq!(y.data()[0], 155.0f32 * 0.01);
        assert_eq!(y.data()[2], -100.0f32 * 0.01);
        assert_eq!(y.data()[3], 155.0f32 * 0.01);
    }

    #[test]
    fn per_channel_int_zp_inf_goes_to_qmin() {
        let x = Tensor::new(&[1, 2], vec![f32::INFINITY, 0.26]).unwrap();
        let (y, mask) = fake_quantize_per_channel_affine(&x, &[0.1], &[3], 0, 0, 255).unwrap();
        assert_eq!(mask.data(), &[0, 1]);
        assert_eq!(y.data()[0], (-3.0 * f64::from(0.1f32)) as f32);
        assert_eq!(y.data()[1], (3.0 * f64::from(0.1f32)) as f32);
        assert!(fake_quantize_per_channel_affine(&x, &[0.1], &[3], 1, 0, 255).is_err());
    }

    #[test]
    fn extreme_ranges_do_not_panic() {
        let x = Tensor::new(&[3], vec![f32::NAN, f32::MAX, f32::MIN]).unwrap();
        let (lo, hi) = (i64::MIN, i64::MAX);
        let (_, mask) = fake_quantize_per_tensor_affine(&x, 1.0, hi, lo, hi).unwrap();
        assert_eq!(mask.data()[0], 0);
        let x = x.reshape(&[1, 3]).unwrap();
        assert!(fake_quantize_per_channel_affine(&x, &[1e-30], &[i32::MAX], 0, lo, hi).is_ok());
        assert!(
            fake_quantize_per_channel_affine_float_zp(&x, &[1e-30], &[3e38], 0, lo, hi).is_ok()
        );
    }

    #[test]
    fn backward_multiplies_by_mask() {
        let g = Tensor::new(&[3], vec![2.0, f32::INFINITY, 1.0]).unwrap();
        let m = Tensor::new(&[3], vec![1, 0, 0]).unwrap();
        let dx = fake_quantize_backward(&g, &m).unwrap();
        assert_eq!(dx.data()[0], 2.0);
        assert!(dx.data()[1].is_nan());
        assert_eq!(dx.data()[2], 0.0);
    }
}
