//! The AVX-512 weight-transform gathers of the Winograd convolution. (Its products run the
//! f32 GEMM's 6 × 4-zmm tile, `crate::fp16::avx512`, on the transformed inputs' rows: one fused
//! multiply-add chain per output over `c` in increasing order from zero, the portable tile's
//! chain.)

use std::arch::x86_64::*;

/// `g[t][l] = src[9l + t]`: the taps of 16 filters, tap-major, by 9 gathers (scalar moves
/// into the array stalled on store forwarding), after a prefetch of the taps four steps on
/// (the gathers do not train the hardware prefetcher: 1,256,14 0.05 ms faster).
///
/// # Safety
/// AVX-512F available.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn gather_taps(src: &[f32; 144], g: &mut [[f32; 16]; 9]) {
    let idx = _mm512_setr_epi32(
        0, 9, 18, 27, 36, 45, 54, 63, 72, 81, 90, 99, 108, 117, 126, 135,
    );
    for line in 0..9 {
        // SAFETY: a prefetch reads nothing architecturally; the address is only a hint.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(src.as_ptr().wrapping_add(4 * 144 + 16 * line).cast());
        }
    }
    for (t, gt) in g.iter_mut().enumerate() {
        // SAFETY: the 16 indices `9l + t ≤ 143` stay inside `src`; `gt` holds 16 floats.
        unsafe {
            let v = _mm512_i32gather_ps::<4>(idx, src.as_ptr().add(t));
            _mm512_storeu_ps(gt.as_mut_ptr(), v);
        }
    }
}
