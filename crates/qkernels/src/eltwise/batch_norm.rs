//! `quantized::batch_norm2d(_relu)` on NHWC quint8 data with PyTorch's (x86, AVX-512 build)
//! numerics.
//!
//! [`BatchNormParams::new`] folds the running statistics as ATen's `compute_fused_params`:
//! `inv_sigma = f32(1.0 / f64(sqrt_f32(var + f32(eps))))`,
//! `alpha = f32(f64(inv_sigma · weight) · (s_in / s_out))`,
//! `beta = f32(f64(bias − mean · inv_sigma · weight) / s_out)` (f32 products, f64 scales).
//! [`batch_norm_nhwc`] then computes, per element, `q = z_out + rne(fma(alpha, x − z_in, beta))`
//! clamped to `[0, 255]` (`[z_out, 255]` with ReLU). Torch runs channel blocks of 64 on its
//! vector path (an FMA, then `cvtps2dq`) and the rest on a scalar `lrintf(alpha·(x − z) +
//! beta)` that its AVX-512 build contracts into the same FMA; qnn's goldens (C = 3, 8, 64, 70,
//! 130) pin both.

use super::check_len;
use crate::error::{GemmError, Result};
use crate::gemm::cvt_rne_x86;

/// The per-channel multiplier and offset of a quantized batch norm.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNormParams {
    /// `alpha[c]`, applied to `x − z_in`.
    pub alpha: Vec<f32>,
    /// `beta[c]`, added after.
    pub beta: Vec<f32>,
}

impl BatchNormParams {
    /// Folds weight, bias (both optional: 1 and 0), running mean and variance, `eps`, the input
    /// scale and the output scale as ATen's `compute_fused_params`.
    ///
    /// Errors: slices of different lengths, or a scale that is not finite and positive.
    pub fn new(
        weight: Option<&[f32]>,
        bias: Option<&[f32]>,
        mean: &[f32],
        var: &[f32],
        eps: f64,
        input_scale: f64,
        output_scale: f64,
    ) -> Result<Self> {
        let c = mean.len();
        check_len("running_var", c, var.len())?;
        if let Some(w) = weight {
            check_len("weight", c, w.len())?;
        }
        if let Some(b) = bias {
            check_len("bias", c, b.len())?;
        }
        for (what, s) in [("input scale", input_scale), ("output scale", output_scale)] {
            if !(s.is_finite() && s > 0.0) {
                return Err(GemmError::InvalidScale {
                    what,
                    scale: s as f32,
                });
            }
        }
        let ratio = input_scale / output_scale;
        let mut alpha = Vec::with_capacity(c);
        let mut beta = Vec::with_capacity(c);
        for ch in 0..c {
            let inv_sigma = (1.0f64 / f64::from((var[ch] + eps as f32).sqrt())) as f32;
            let w = weight.map_or(1.0, |w| w[ch]);
            let b = bias.map_or(0.0, |b| b[ch]);
            alpha.push((f64::from(inv_sigma * w) * ratio) as f32);
            beta.push((f64::from(b - mean[ch] * inv_sigma * w) / output_scale) as f32);
        }
        Ok(Self { alpha, beta })
    }
}

/// One output value (the scalar definition).
#[inline]
pub fn batch_norm_one(x: u8, alpha: f32, beta: f32, in_zp: i32, out_zp: i32, relu: bool) -> u8 {
    let v = alpha.mul_add((i32::from(x) - in_zp) as f32, beta);
    let q = i64::from(cvt_rne_x86(v));
    let q = if q == i64::from(i32::MIN) {
        q
    } else {
        q + i64::from(out_zp)
    };
    let lo = if relu { i64::from(out_zp) } else { 0 };
    q.clamp(lo, 255) as u8
}

/// Batch norm over `x` (NHWC, `C = params.alpha.len()` innermost) into `out`.
///
/// Errors: buffers whose length is not a multiple of C or differ, zero points outside 0..=255.
pub fn batch_norm_nhwc(
    x: &[u8],
    params: &BatchNormParams,
    in_zero_point: i32,
    out_zero_point: i32,
    relu: bool,
    out: &mut [u8],
) -> Result<()> {
    check_len("output", x.len(), out.len())?;
    let c = params.alpha.len();
    for (what, zp) in [
        ("input zero point", in_zero_point),
        ("output zero point", out_zero_point),
    ] {
        if !(0..=255).contains(&zp) {
            return Err(GemmError::ZeroPointOutOfRange {
                what,
                zero_point: zp,
                min: 0,
                max: 255,
            });
        }
    }
    if c == 0 || !x.len().is_multiple_of(c) {
        return Err(GemmError::BufferTooSmall {
            what: "input (a whole number of channel rows)",
            needed: c.max(1),
            got: x.len(),
        });
    }
    for (xr, or) in x.chunks_exact(c).zip(out.chunks_exact_mut(c)) {
        for (ch, (o, &v)) in or.iter_mut().zip(xr).enumerate() {
            *o = batch_norm_one(
                v,
                params.alpha[ch],
                params.beta[ch],
                in_zero_point,
                out_zero_point,
                relu,
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_float_formula_within_one_step() {
        let (mean, var, w, b) = (
            [0.5f32, -1.0, 0.0],
            [2.0f32, 0.5, 1.0],
            [1.5f32, -0.5, 1.0],
            [0.1f32, 0.2, -0.3],
        );
        let (si, so, zi, zo) = (0.05f64, 0.03f64, 100, 120);
        let p = BatchNormParams::new(Some(&w), Some(&b), &mean, &var, 1e-5, si, so).unwrap();
        let x: Vec<u8> = (0..255u8)
            .step_by(3)
            .flat_map(|v| [v, v / 2, 255 - v])
            .collect();
        let mut y = vec![0u8; x.len()];
        batch_norm_nhwc(&x, &p, zi, zo, false, &mut y).unwrap();
        for (i, (&q, &r)) in x.iter().zip(&y).enumerate() {
            let c = i % 3;
            let xf = si * f64::from(i32::from(q) - zi);
            let yf = (xf - f64::from(mean[c])) / f64::from(var[c] + 1e-5).sqrt() * f64::from(w[c])
                + f64::from(b[c]);
            let want = (yf / so).round() + f64::from(zo);
            let want = want.clamp(0.0, 255.0);
            assert!(
                (f64::from(r) - want).abs() <= 1.0,
                "x {q} c {c}: {r} vs {want}"
            );
        }
        let mut yr = vec![0u8; x.len()];
        batch_norm_nhwc(&x, &p, zi, zo, true, &mut yr).unwrap();
        for (a, r) in y.iter().zip(&yr) {
            assert_eq!(*r, (*a).max(zo as u8));
        }
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(BatchNormParams::new(None, None, &[0.0], &[1.0, 2.0], 1e-5, 1.0, 1.0).is_err());
        assert!(BatchNormParams::new(None, None, &[0.0], &[1.0], 1e-5, 0.0, 1.0).is_err());
        let p = BatchNormParams::new(None, None, &[0.0, 0.0], &[1.0, 1.0], 1e-5, 1.0, 1.0).unwrap();
        let mut out = [0u8; 3];
        assert!(batch_norm_nhwc(&[1, 2, 3], &p, 0, 0, false, &mut out).is_err());
        let mut out = [0u8; 2];
        assert!(batch_norm_nhwc(&[1, 2], &p, 256, 0, false, &mut out).is_err());
    }
}
