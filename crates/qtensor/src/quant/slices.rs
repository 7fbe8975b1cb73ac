//! Auto-vectorizing slice loops for 8-bit per-tensor quantize/dequantize, parallel (rayon)
//! above a size threshold.

use rayon::prelude::*;

use super::scalar::{F32_BELOW_2POW31, max_ps, min_ps};
use crate::dtype::QDType;
use crate::error::{QTensorError, Result};

/// Below this many elements the loops run on the calling thread.
const PAR_THRESHOLD: usize = 1 << 18;
/// Elements per rayon task.
const PAR_CHUNK: usize = 1 << 16;
/// `1.5 * 2^23`: adding it to a float of magnitude `< 2^22` rounds it to an integer (ties to
/// even), and the integer can then be read from the low mantissa bits.
const MAGIC: f32 = 12_582_912.0;

/// Runs `f` over matching chunks of `src` and `dst`, in parallel for large inputs.
pub(crate) fn par_zip_chunks<S: Sync, D: Send>(
    src: &[S],
    dst: &mut [D],
    f: impl Fn(&[S], &mut [D]) + Sync + Send,
) {
    if src.len() >= PAR_THRESHOLD {
        src.par_chunks(PAR_CHUNK)
            .zip(dst.par_chunks_mut(PAR_CHUNK))
            .for_each(|(s, d)| f(s, d));
    } else {
        f(src, dst);
    }
}

/// Maps `src` into a new vector. Serial work collects without zero-filling the output first
/// (its pages are written once); parallel work zero-fills and then writes chunks.
pub(crate) fn par_map_to_vec<S: Copy + Sync, D: Copy + Default + Send>(
    src: &[S],
    f: impl Fn(S) -> D + Sync + Send,
) -> Vec<D> {
    if src.len() < PAR_THRESHOLD || rayon::current_num_threads() == 1 {
        return src.iter().map(|&x| f(x)).collect();
    }
    let mut out = vec![D::default(); src.len()];
    par_zip_chunks(src, &mut out, |s, d| {
        for (o, &x) in d.iter_mut().zip(s) {
            *o = f(x);
        }
    });
    out
}

/// Branch-free form of [`quantize_val`](super::quantize_val) for an 8-bit dtype, computed
/// entirely in `f32` so that it vectorizes. Rounding and clamping commute for integer bounds,
/// so the product is clamped to `[qmin - zp, qmax - zp]` first, rounded by adding `MAGIC`
/// (the low byte of the sum's bit pattern is then the integer in two's complement), and the
/// zero point is added after rounding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PerTensor8 {
    inv: f32,
    zero_point: f32,
    t_min: f32,
    t_max: f32,
    wrap: u8,
}

/// torch's 32-bit `r + zp` cannot wrap (`0 <= zp <= 127`).
const NO_WRAP: u8 = 0;
/// `zp > 127`: `r == 2147483520` (NaN, +inf, products `>= 2147483520`) wraps to `qmin`.
const WRAP_HIGH: u8 = 1;
/// `zp < 0`: `r == i32::MIN` (-inf, products `<= -2^31`) wraps to `qmax`.
const WRAP_LOW: u8 = 2;

impl PerTensor8 {
    /// `scale` is the `f32` scale; `[qmin, qmax]` must be the full quint8 or qint8 range and
    /// `zero_point` lie inside it.
    pub(crate) fn new(scale: f32, zero_point: i32, qmin: i32, qmax: i32) -> Self {
        Self {
            inv: 1.0 / scale,
            zero_point: zero_point as f32,
            t_min: (qmin - zero_point) as f32,
            t_max: (qmax - zero_point) as f32,
            wrap: match zero_point {
                z if z > 127 => WRAP_HIGH,
                z if z < 0 => WRAP_LOW,
                _ => NO_WRAP,
            },
        }
    }

    /// Quantized value as a two's-complement byte. `WRAP` must be `self.wrap`.
    ///
    /// Wrapping lanes are fixed up on the bit pattern, which is cheaper than a select:
    /// `WRAP_HIGH` only occurs for quint8, whose `qmin` byte is 0, and `WRAP_LOW` only for
    /// qint8, where the clamp has produced `qmin` (0x80) and flipping all bits gives 0x7f.
    #[inline(always)]
    fn byte<const WRAP: u8>(self, x: f32) -> u8 {
        let t = x * self.inv;
        // min_ps first: a NaN product becomes qmax, as `min(t, 2147483520)` makes it in torch.
        let clamped = max_ps(min_ps(t, self.t_max), self.t_min);
        let bits = ((clamped + MAGIC) + self.zero_point).to_bits();
        let bits = match WRAP {
            // the comparison is false for NaN and for the products >= 2147483520 that wrap
            WRAP_HIGH if t < F32_BELOW_2POW31 => bits,
            WRAP_HIGH => 0,
            WRAP_LOW if t <= -2_147_483_648.0 => bits ^ 0xff,
            _ => bits,
        };
        bits as u8
    }

    fn run_loop<const WRAP: u8>(self, src: &[f32], dst: &mut [u8]) {
        // A plain zip loop: LLVM's loop vectorizer does better here than on unrolled blocks.
        for (o, &x) in dst.iter_mut().zip(src) {
            *o = self.byte::<WRAP>(x);
        }
    }

    /// Quantizes `src` into a new vector of two's-complement bytes.
    pub(crate) fn quantize_to_vec(self, src: &[f32]) -> Vec<u8> {
        match self.wrap {
            WRAP_HIGH => par_map_to_vec(src, |x| self.byte::<WRAP_HIGH>(x)),
            WRAP_LOW => par_map_to_vec(src, |x| self.byte::<WRAP_LOW>(x)),
            _ => par_map_to_vec(src, |x| self.byte::<NO_WRAP>(x)),
        }
    }

    /// Quantizes `src` into two's-complement bytes (`dst.len() == src.len()`).
    pub(crate) fn run(self, src: &[f32], dst: &mut [u8]) {
        match self.wrap {
            WRAP_HIGH => self.run_loop::<WRAP_HIGH>(src, dst),
            WRAP_LOW => self.run_loop::<WRAP_LOW>(src, dst),
            _ => self.run_loop::<NO_WRAP>(src, dst),
        }
    }
}

fn check_len(src: usize, dst: usize) -> Result<()> {
    if src == dst {
        Ok(())
    } else {
        Err(QTensorError::ShapeMismatch {
            expected: vec![src],
            got: vec![dst],
        })
    }
}

fn check_scale(scale: f32) -> Result<()> {
    if scale.is_finite() && scale > 0.0 {
        Ok(())
    } else {
        Err(QTensorError::InvalidScale {
            scale: f64::from(scale),
        })
    }
}

fn check_zero_point(zero_point: i32, dtype: QDType) -> Result<()> {
    let (qmin, qmax) = dtype.range_i32();
    if (qmin..=qmax).contains(&zero_point) {
        Ok(())
    } else {
        Err(QTensorError::ZeroPointOutOfRange {
            zero_point: i64::from(zero_point),
            qmin: i64::from(qmin),
            qmax: i64::from(qmax),
        })
    }
}

fn check_quantize(
    src: usize,
    dst: usize,
    scale: f32,
    zero_point: i32,
    dtype: QDType,
) -> Result<()> {
    check_len(src, dst)?;
    check_scale(scale)?;
    check_zero_point(zero_point, dtype)
}

/// Per-tensor quantize to quint8 (full range 0..=255), bit-exact with
/// [`quantize_val`](super::quantize_val) and torch. Errors on a bad scale, zero point or length.
pub fn quantize_slice_u8(src: &[f32], scale: f32, zero_point: i32, dst: &mut [u8]) -> Result<()> {
    check_quantize(src.len(), dst.len(), scale, zero_point, QDType::QUInt8)?;
    let kernel = PerTensor8::new(scale, zero_point, 0, 255);
    par_zip_chunks(src, dst, |s, d| kernel.run(s, d));
    Ok(())
}

/// Per-tensor quantize to qint8 (full range -128..=127), bit-exact with
/// [`quantize_val`](super::quantize_val) and torch. Errors on a bad scale, zero point or length.
pub fn quantize_slice_i8(src: &[f32], scale: f32, zero_point: i32, dst: &mut [i8]) -> Result<()> {
    check_quantize(src.len(), dst.len(), scale, zero_point, QDType::QInt8)?;
    let kernel = PerTensor8::new(scale, zero_point, -128, 127);
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(dst);
    par_zip_chunks(src, bytes, |s, d| kernel.run(s, d));
    Ok(())
}

/// Per-tensor dequantize of quint8 values: `scale * (q - zero_point)` in `f32`.
pub fn dequantize_slice_u8(src: &[u8], scale: f32, zero_point: i32, dst: &mut [f32]) -> Result<()> {
    check_quantize(src.len(), dst.len(), scale, zero_point, QDType::QUInt8)?;
    par_zip_chunks(src, dst, |s, d| {
        for (o, &q) in d.iter_mut().zip(s) {
            *o = scale * (i32::from(q) - zero_point) as f32;
        }
    });
    Ok(())
}

/// Per-tensor dequantize of qint8 values: `scale * (q - zero_point)` in `f32`.
pub fn dequantize_slice_i8(src: &[i8], scale: f32, zero_point: i32, dst: &mut [f32]) -> Result<()> {
    check_quantize(src.len(), dst.len(), scale, zero_point, QDType::QInt8)?;
    par_zip_chunks(src, dst, |s, d| {
        for (o, &q) in d.iter_mut().zip(s) {
            *o = scale * (i32::from(q) - zero_point) as f32;
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::quantize_val;
    use super::*;

    fn specials() -> Vec<f32> {
        let mut v = vec![
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e30,
            -1e30,
            3e9,
            -3e9,
            2147483520.0,
            2147483392.0,
            2147483648.0,
            -2147483520.0,
            -2147483648.0,
            -2147483904.0,
            0.0,
            -0.0,
            f32::MIN_POSITIVE,
        ];
        v.extend((-600..600).map(|i| i as f32 * 0.5));
        v
    }

    #[test]
    fn u8_loop_equals_oracle_for_every_zero_point() {
        let src = specials();
        let mut dst = vec![0u8; src.len()];
        // Every zero point natively; a spread of them (both ends included) under Miri.
        let step = if cfg!(miri) { 51 } else { 1 };
        for zp in (0..=255).step_by(step) {
            for scale in [1.0f32, 0.37, 3.0] {
                quantize_slice_u8(&src, scale, zp, &mut dst).unwrap();
                for (&x, &q) in src.iter().zip(&dst) {
                    let want = quantize_val(x, 1.0 / scale, zp, 0, 255);
                    assert_eq!(i32::from(q), want, "x={x} scale={scale} zp={zp}");
                }
            }
        }
    }

    #[test]
    fn i8_loop_equals_oracle_for_every_zero_point() {
        let src = specials();
        let mut dst = vec![0i8; src.len()];
        // Every zero point natively; a spread of them under Miri, which is ~1000x slower.
        let step = if cfg!(miri) { 51 } else { 1 };
        for zp in (-128..=127).step_by(step) {
            for scale in [1.0f32, 0.37, 3.0] {
                quantize_slice_i8(&src, scale, zp, &mut dst).unwrap();
                for (&x, &q) in src.iter().zip(&dst) {
                    let want = quantize_val(x, 1.0 / scale, zp, -128, 127);
                    assert_eq!(i32::from(q), want, "x={x} scale={scale} zp={zp}");
                }
            }
        }
    }

    #[test]
    fn dequantize_loops() {
        let mut out = [0.0f32; 3];
        dequantize_slice_u8(&[0, 3, 255], 0.5, 3, &mut out).unwrap();
        assert_eq!(out, [-1.5, 0.0, 126.0]);
        dequantize_slice_i8(&[-128, 0, 127], 0.25, -1, &mut out).unwrap();
        assert_eq!(out, [-31.75, 0.25, 32.0]);
    }
}
