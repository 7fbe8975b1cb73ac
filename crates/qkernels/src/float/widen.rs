//! Exact f16 -> f32 widening of slices: F16C on x86-64 when the CPU has it (8 lanes per
//! instruction), `half`'s conversion elsewhere. Every f16 is exactly representable in f32, so
//! all paths give identical results.

use half::f16;
use half::slice::HalfFloatSliceExt;

/// Widens `src` into `dst`, element for element, over the shorter of the two lengths.
pub fn widen_f16_slice(src: &[f16], dst: &mut [f32]) {
    let n = src.len().min(dst.len());
    let (src, dst) = (&src[..n], &mut dst[..n]);
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("f16c") && std::arch::is_x86_feature_detected!("avx")
        {
            // SAFETY: the CPU supports F16C and AVX (checked on the line above), the only
            // precondition of calling a function compiled with those target features.
            unsafe { x86::widen_f16c(src, dst) };
            return;
        }
    }
    src.convert_to_f32_slice(dst);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm256_cvtph_ps, _mm256_storeu_ps};

    use half::f16;

    /// F16C widening, 8 lanes at a time, scalar tail. `src` and `dst` have equal lengths.
    #[target_feature(enable = "avx,f16c")]
    pub(super) fn widen_f16c(src: &[f16], dst: &mut [f32]) {
        let n = src.len().min(dst.len());
        let body = n / 8 * 8;
        let mut i = 0;
        while i < body {
            // SAFETY: i + 8 <= body <= n <= src.len(), so the 16 bytes read are inside `src`;
            // `_mm_loadu_si128` has no alignment requirement.
            let halves = unsafe { _mm_loadu_si128(src.as_ptr().add(i).cast::<__m128i>()) };
            let floats = _mm256_cvtph_ps(halves);
            // SAFETY: i + 8 <= n <= dst.len(), so the 32 bytes written are inside `dst`;
            // `_mm256_storeu_ps` has no alignment requirement.
            unsafe { _mm256_storeu_ps(dst.as_mut_ptr().add(i), floats) };
            i += 8;
        }
        for (d, s) in dst[body..n].iter_mut().zip(&src[body..n]) {
            *d = s.to_f32();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_is_exact_for_every_f16_bit_pattern() {
        let src: Vec<f16> = (0..=u16::MAX).map(f16::from_bits).collect();
        let mut dst = vec![0.0f32; src.len() + 3];
        widen_f16_slice(&src, &mut dst);
        for (h, f) in src.iter().zip(&dst) {
            let want = h.to_f32();
            assert!(
                want.to_bits() == f.to_bits() || (want.is_nan() && f.is_nan()),
                "{h:?}: {f} vs {want}"
            );
        }
        assert_eq!(dst[src.len()..], [0.0; 3], "only the overlap is written");
        // odd lengths exercise the tail
        let mut short = [0.0f32; 13];
        widen_f16_slice(&src[1000..1013], &mut short);
        assert_eq!(short[12], src[1012].to_f32());
    }
}
