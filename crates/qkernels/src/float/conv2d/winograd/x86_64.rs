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
        // (a hint only: the address need not be inside `src`)
        _mm_prefetch::<_MM_HINT_T0>(src.as_ptr().wrapping_add(4 * 144 + 16 * line).cast());
    }
    for (t, gt) in g.iter_mut().enumerate() {
        // SAFETY: the 16 indices `9l + t ≤ 143` stay inside `src`; `gt` holds 16 floats.
        unsafe {
            let v = _mm512_i32gather_ps::<4>(idx, src.as_ptr().add(t));
            _mm512_storeu_ps(gt.as_mut_ptr(), v);
        }
    }
}

/// `g[t][l] = src[l·stride + t]`: the taps of 16 filters `stride` floats apart, tap-major, by
/// 9 gathers.
///
/// Panics unless `src` holds `15·stride + 9` floats and the offsets fit in `i32`.
///
/// # Safety
/// AVX-512F available.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn gather_taps_strided(src: &[f32], stride: usize, g: &mut [[f32; 16]; 9]) {
    assert!(src.len() >= 15 * stride + 9 && 15 * stride + 8 <= i32::MAX as usize);
    let idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(stride as i32),
    );
    for (t, gt) in g.iter_mut().enumerate() {
        // SAFETY: the 16 indices `l·stride + t ≤ 15·stride + 8` stay inside `src` (asserted);
        // `gt` holds 16 floats.
        unsafe {
            let v = _mm512_i32gather_ps::<4>(idx, src.as_ptr().add(t));
            _mm512_storeu_ps(gt.as_mut_ptr(), v);
        }
    }
}

/// `taps[i][l] = src[l·stride + i]` for `i < 144`: the taps of 16 runs of 16 consecutive
/// filters (`stride` floats apart), tap-major, by nine 16 × 16 register transposes of plain
/// loads (the strided gathers of [`gather_taps_strided`] ran at ≈ 25 cycles each).
///
/// Panics unless `src` holds `15·stride + 144` floats.
///
/// # Safety
/// AVX-512F available.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn transpose_taps(src: &[f32], stride: usize, taps: &mut [[f32; 16]; 144]) {
    assert!(src.len() >= 15 * stride + 144);
    for j in 0..9 {
        let mut r = [_mm512_setzero_ps(); 16];
        for (l, rl) in r.iter_mut().enumerate() {
            // SAFETY: `l·stride + 16j + 15 < 15·stride + 144 ≤ src.len()` (asserted).
            *rl = unsafe { _mm512_loadu_ps(src.as_ptr().add(l * stride + 16 * j)) };
        }
        // 32-bit, then 64-bit interleaves within 128-bit lanes: `s[4i + k]` holds rows
        // `4i .. 4i + 4` of columns `k, k + 4, k + 8, k + 12` in its four 128-bit lanes
        let mut t = [_mm512_setzero_ps(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        let mut s = [_mm512_setzero_ps(); 16];
        for i in 0..4 {
            let q = |x: __m512| _mm512_castps_pd(x);
            let (a, b) = (q(t[4 * i]), q(t[4 * i + 2]));
            let (c, d) = (q(t[4 * i + 1]), q(t[4 * i + 3]));
            s[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
            s[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
            s[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
            s[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
        }
        // then the 128-bit lanes: column `k + 4L` is lane `L` of `s[k]`, `s[4 + k]`,
        // `s[8 + k]`, `s[12 + k]`
        for k in 0..4 {
            let even_a = _mm512_shuffle_f32x4::<0x88>(s[k], s[4 + k]);
            let even_b = _mm512_shuffle_f32x4::<0x88>(s[8 + k], s[12 + k]);
            let odd_a = _mm512_shuffle_f32x4::<0xDD>(s[k], s[4 + k]);
            let odd_b = _mm512_shuffle_f32x4::<0xDD>(s[8 + k], s[12 + k]);
            let cols = [
                (k, _mm512_shuffle_f32x4::<0x88>(even_a, even_b)),
                (k + 8, _mm512_shuffle_f32x4::<0xDD>(even_a, even_b)),
                (k + 4, _mm512_shuffle_f32x4::<0x88>(odd_a, odd_b)),
                (k + 12, _mm512_shuffle_f32x4::<0xDD>(odd_a, odd_b)),
            ];
            for (col, v) in cols {
                // SAFETY: `taps[16j + col]` holds 16 floats.
                unsafe { _mm512_storeu_ps(taps[16 * j + col].as_mut_ptr(), v) };
            }
        }
    }
}
