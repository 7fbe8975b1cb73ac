//! Saturating `f32` <-> `f16` conversion (PyTorch's `HandleWeightsSaturation` + cast).

use half::f16;
use half::slice::HalfFloatSliceExt;

use crate::error::{QTensorError, Result};
use crate::tensor::Tensor;

/// Largest finite `f16`.
const F16_MAX: f32 = 65504.0;

/// Elements converted per stack buffer.
const CHUNK: usize = 256;

/// Rounds to the nearest `f16` (ties to even) after clamping to `±65504`; NaN stays NaN and
/// `±inf` becomes `±65504`.
pub fn f32_to_f16_saturating(x: f32) -> f16 {
    f16::from_f32(x.clamp(-F16_MAX, F16_MAX))
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

/// Converts `src` into `dst` with [`f32_to_f16_saturating`]; `ShapeMismatch` if lengths differ.
pub fn f32_slice_to_f16(src: &[f32], dst: &mut [f16]) -> Result<()> {
    check_len(src.len(), dst.len())?;
    let mut clamped = [0.0f32; CHUNK];
    for (s, d) in src.chunks(CHUNK).zip(dst.chunks_mut(CHUNK)) {
        let buf = &mut clamped[..s.len()];
        for (c, &x) in buf.iter_mut().zip(s) {
            *c = x.clamp(-F16_MAX, F16_MAX);
        }
        d.convert_from_f32_slice(buf);
    }
    Ok(())
}

/// Widens `src` into `dst` (exact); `ShapeMismatch` if lengths differ.
pub fn f16_slice_to_f32(src: &[f16], dst: &mut [f32]) -> Result<()> {
    check_len(src.len(), dst.len())?;
    src.convert_to_f32_slice(dst);
    Ok(())
}

impl Tensor<f32> {
    /// Saturating conversion to `f16`, see [`f32_to_f16_saturating`].
    pub fn to_f16(&self) -> Tensor<f16> {
        let mut out = vec![f16::ZERO; self.numel()];
        // Lengths are equal by construction.
        let _ = f32_slice_to_f16(self.data(), &mut out);
        Tensor::from_parts(self.shape(), out, self.layout())
    }
}

impl Tensor<f16> {
    /// Exact widening to `f32`.
    pub fn to_f32(&self) -> Tensor<f32> {
        let mut out = vec![0.0f32; self.numel()];
        // Lengths are equal by construction.
        let _ = f16_slice_to_f32(self.data(), &mut out);
        Tensor::from_parts(self.shape(), out, self.layout())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates_and_keeps_nan() {
        assert_eq!(f32_to_f16_saturating(1e6).to_f32(), 65504.0);
        assert_eq!(f32_to_f16_saturating(f32::NEG_INFINITY).to_f32(), -65504.0);
        assert_eq!(f32_to_f16_saturating(65519.0).to_f32(), 65504.0);
        assert!(f32_to_f16_saturating(f32::NAN).is_nan());
        // 1 + 2^-11 is a tie between 1 and 1 + 2^-10: ties to even gives 1.
        assert_eq!(f32_to_f16_saturating(1.0 + 2f32.powi(-11)).to_f32(), 1.0);
    }

    #[test]
    fn slices_match_scalar() {
        let src: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) * 173.3).collect();
        let mut dst = vec![f16::ZERO; src.len()];
        f32_slice_to_f16(&src, &mut dst).unwrap();
        for (s, d) in src.iter().zip(&dst) {
            assert_eq!(d.to_bits(), f32_to_f16_saturating(*s).to_bits());
        }
        let mut back = vec![0.0; src.len()];
        f16_slice_to_f32(&dst, &mut back).unwrap();
        assert!(f16_slice_to_f32(&dst, &mut back[1..]).is_err());
    }
}
