//! The per-call activation quantization of fbgemm's dynamic linear (numerics §2.10): the
//! input's min and max, `quant_utils::ChooseQuantizationParams` over `0..=255` with
//! `reduce_range` (so the range is `0..=127` and the scale `(max − min) / 127` in double), and
//! the AVX2 quantize with that scale rounded to `f32`.

use qkernels::quant;
use qtensor::choose_qparams_quant_utils;

use crate::error::Result;

/// `(min, max)` of `x` as fbgemm's `FindMinMax` computes it; `(0, 0)` when empty. NaN inputs
/// are not given a meaning (as in fbgemm, whose result then depends on the vector order).
pub(crate) fn min_max(x: &[f32]) -> (f32, f32) {
    quant::min_max(x)
}

/// The activation qparams PyTorch's dynamic linear chooses for `x`: the scale as the kernel
/// uses it (`f32`) and the zero point.
pub(crate) fn dynamic_qparams(x: &[f32]) -> (f32, i32) {
    let (lo, hi) = min_max(x);
    let (scale, zp) = choose_qparams_quant_utils(lo, hi, 0, 255, false, false, true);
    (scale as f32, zp)
}

/// Quantizes `x` into `dst` (resized to `x.len()`) with the dynamic qparams; returns them.
pub(crate) fn quantize_dynamic(x: &[f32], dst: &mut Vec<u8>) -> Result<(f32, i32)> {
    let (scale, zp) = dynamic_qparams(x);
    dst.resize(x.len(), 0);
    quant::quantize_u8(x, scale, zp, dst)?;
    Ok((scale, zp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_max_covers_every_position() {
        for n in 1..40 {
            let x: Vec<f32> = (0..n).map(|i| ((i * 7919) % 23) as f32 - 11.0).collect();
            let want = x
                .iter()
                .fold((x[0], x[0]), |(a, b), &v| (a.min(v), b.max(v)));
            assert_eq!(min_max(&x), want, "n = {n}");
        }
        assert_eq!(min_max(&[]), (0.0, 0.0));
    }

    #[test]
    fn reduce_range_gives_seven_bit_values() {
        let x: Vec<f32> = (0..100).map(|i| (i as f32 - 30.0) * 0.37).collect();
        let mut q = Vec::new();
        let (scale, zp) = quantize_dynamic(&x, &mut q).unwrap();
        assert_eq!(scale, ((f64::from(x[99]) - f64::from(x[0])) / 127.0) as f32);
        assert!(q.iter().all(|&v| v <= 127));
        assert_eq!(q[30], zp as u8);
    }
}
