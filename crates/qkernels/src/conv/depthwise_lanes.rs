//! The vector operations of the AVX-512 depthwise row kernel ([`super::depthwise_avx512`])
//! on one block width, all in 128-bit lanes so every width shares one accumulator layout:
//! [`Zmm`] (64 channels of one pixel), [`Ymm`] (32 channels of one pixel) and [`Ymm2`]
//! (16 channels of two pixels, one per lane, for channel tails of at most 16).

use std::arch::x86_64::*;

/// The vector operations of one block width (zmm: 64 channels, ymm: 32), all in 128-bit
/// lanes, so both widths share one layout.
///
/// # Safety
/// Every method requires AVX-512 F/BW/VL + VNNI; pointer arguments are described per method.
pub(super) trait Lanes {
    type V: Copy;
    /// Bytes per vector.
    const W: usize;
    /// Pixels per vector: 1, or 2 for [`Ymm2`] (128-bit lane k holds pixel k's 16 channels,
    /// its block's per-channel vectors hold lane 0's values in both lanes).
    const PX: usize;
    /// One tap of the vector's pixels, pixel k's bytes at `p + k·delta` (`W / PX` bytes each).
    unsafe fn load_px(p: *const u8, delta: usize) -> Self::V;
    /// [`Self::load_px`] of the bytes selected by `mask` (per pixel; zero elsewhere).
    unsafe fn load_mask_px(p: *const u8, delta: usize, mask: u64) -> Self::V;
    /// Pixel k's bytes of `v` to `p + k·delta` (`W / PX` bytes each).
    unsafe fn store_px(p: *mut u8, delta: usize, v: Self::V);
    /// [`Self::store_px`] of the bytes selected by `mask` (per pixel).
    unsafe fn store_mask_px(p: *mut u8, delta: usize, v: Self::V, mask: u64);
    /// `W` bytes at `p`.
    unsafe fn load(p: *const u8) -> Self::V;
    /// The bytes of `p` selected by `mask` (zero elsewhere); only those are read.
    unsafe fn load_mask(p: *const u8, mask: u64) -> Self::V;
    /// The bytes of `v` selected by `mask` to `p`; only those are written.
    unsafe fn store_mask(p: *mut u8, v: Self::V, mask: u64);
    /// `W` bytes to `p`.
    unsafe fn store(p: *mut u8, v: Self::V);
    unsafe fn zero() -> Self::V;
    unsafe fn splat16(x: i16) -> Self::V;
    unsafe fn splat8(x: i8) -> Self::V;
    unsafe fn unpacklo8(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn unpackhi8(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn unpacklo16(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn unpackhi16(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn maddubs(a: Self::V, w: Self::V) -> Self::V;
    unsafe fn dpwssd(acc: Self::V, a: Self::V, b: Self::V) -> Self::V;
    unsafe fn dpbusd(acc: Self::V, a: Self::V, b: Self::V) -> Self::V;
    unsafe fn shuffle8(a: Self::V, ctl: Self::V) -> Self::V;
    /// `cvt_rne((fma(a, b, f32(x)))·m)` with `a`, `b`, `m` loaded from `W / 4` floats.
    unsafe fn requant(x: Self::V, a: *const f32, b: *const f32, m: *const f32) -> Self::V;
    /// `cvt_rne((f32(x) + b)·m)` with `b`, `m` loaded from `W / 4` floats: [`Self::requant`]
    /// when every `a` is 1 (`fma(1, b, x)` is the rounded sum).
    unsafe fn requant_add(x: Self::V, b: *const f32, m: *const f32) -> Self::V;
    /// `W / 4` i32 at `p`.
    unsafe fn load_i32(p: *const i32) -> Self::V;
    /// [`Self::load_i32`] performed at every call: an `asm!` load, which LLVM does not hoist
    /// out of a loop, so the loop reads the vector from memory instead of keeping it in a
    /// register (the row kernel's registers are its weights').
    unsafe fn load_i32_each(p: *const i32) -> Self::V;
    /// Saturating i32 → i16 packs of `(a, b)` in lanes.
    unsafe fn packs32(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn adds16(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn packus16(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn clamp8(v: Self::V, lo: Self::V, hi: Self::V) -> Self::V;
}

/// 64 channels per vector.
pub(super) struct Zmm;
/// 32 channels of one pixel (`P = 1`), or 16 channels of each of two pixels (`P = 2`).
pub(super) struct YmmPx<const P: usize>;
/// 32 channels of one pixel per vector.
pub(super) type Ymm = YmmPx<1>;
/// 16 channels of each of two pixels per vector (lane k: pixel k).
pub(super) type Ymm2 = YmmPx<2>;

impl Lanes for Zmm {
    type V = __m512i;
    const W: usize = 64;
    const PX: usize = 1;
    #[inline(always)]
    unsafe fn load_px(p: *const u8, _: usize) -> __m512i {
        // SAFETY: the caller's contract (one pixel).
        unsafe { Self::load(p) }
    }
    #[inline(always)]
    unsafe fn load_mask_px(p: *const u8, _: usize, mask: u64) -> __m512i {
        // SAFETY: the caller's contract (one pixel).
        unsafe { Self::load_mask(p, mask) }
    }
    #[inline(always)]
    unsafe fn store_px(p: *mut u8, _: usize, v: __m512i) {
        // SAFETY: the caller's contract (one pixel).
        unsafe { Self::store(p, v) }
    }
    #[inline(always)]
    unsafe fn store_mask_px(p: *mut u8, _: usize, v: __m512i, mask: u64) {
        // SAFETY: the caller's contract (one pixel).
        unsafe { Self::store_mask(p, v, mask) }
    }
    #[inline(always)]
    unsafe fn load(p: *const u8) -> __m512i {
        // SAFETY: the caller guarantees 64 readable bytes at `p`.
        unsafe { _mm512_loadu_si512(p.cast()) }
    }
    #[inline(always)]
    unsafe fn load_mask(p: *const u8, mask: u64) -> __m512i {
        // SAFETY: the caller guarantees the masked bytes readable; the others are not read.
        unsafe { _mm512_maskz_loadu_epi8(mask, p.cast()) }
    }
    #[inline(always)]
    unsafe fn store_mask(p: *mut u8, v: __m512i, mask: u64) {
        // SAFETY: the caller guarantees the masked bytes writable; the others are untouched.
        unsafe { _mm512_mask_storeu_epi8(p.cast(), mask, v) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut u8, v: __m512i) {
        // SAFETY: the caller guarantees 64 writable bytes at `p`.
        unsafe { _mm512_storeu_si512(p.cast(), v) }
    }
    #[inline(always)]
    unsafe fn zero() -> __m512i {
        // SAFETY: AVX-512F (the trait's contract).
        unsafe { _mm512_setzero_si512() }
    }
    #[inline(always)]
    unsafe fn splat16(x: i16) -> __m512i {
        // SAFETY: AVX-512F (the trait's contract).
        unsafe { _mm512_set1_epi16(x) }
    }
    #[inline(always)]
    unsafe fn splat8(x: i8) -> __m512i {
        // SAFETY: AVX-512F (the trait's contract).
        unsafe { _mm512_set1_epi8(x) }
    }
    #[inline(always)]
    unsafe fn unpacklo8(a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: AVX-512BW (the trait's contract).
        unsafe { _mm512_unpacklo_epi8(a, b) }
    }
    #[inline(always)]
    unsafe fn unpackhi8(a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: AVX-512BW (the trait's contract).
        unsafe { _mm512_unpackhi_epi8(a, b) }
    }
    #[inline(always)]
    unsafe fn unpacklo16(a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: AVX-512BW (the trait's contract).
        unsafe { _mm512_unpacklo_epi16(a, b) }
    }
    #[inline(always)]
    unsafe fn unpackhi16(a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: AVX-512BW (the trait's contract).
        unsafe { _mm512_unpackhi_epi16(a, b) }
    }
    #[inline(always)]
    unsafe fn maddubs(a: __m512i, w: __m512i) -> __m512i {
        // SAFETY: AVX-512BW (the trait's contract).
        unsafe { _mm512_maddubs_epi16(a, w) }
    }
    #[inline(always)]
    unsafe fn dpwssd(acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: AVX-512 VNNI (the trait's contract).
        unsafe { _mm512_dpwssd_epi32(acc, a, b) }
    }
    #[inline(always)]
    unsafe fn dpbusd(acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: AVX-512 VNNI (the trait's contract).
        unsafe { _mm512_dpbusd_epi32(acc, a, b) }
    }
    #[inline(always)]
    unsafe fn shuffle8(a: __m512i, ctl: __m512i) -> __m512i {
        // SAFETY: AVX-512BW (the trait's contract).
        unsafe { _mm512_shuffle_epi8(a, ctl) }
    }
    #[inline(always)]
    unsafe fn requant(x: __m512i, a: *const f32, b: *const f32, m: *const f32) -> __m512i {
        // SAFETY: the caller guarantees 16 readable floats at `a`, `b` and `m`.
        unsafe {
            let f = _mm512_fmadd_ps(
                _mm512_loadu_ps(a),
                _mm512_loadu_ps(b),
                _mm512_cvtepi32_ps(x),
            );
            _mm512_cvtps_epi32(_mm512_mul_ps(f, _mm512_loadu_ps(m)))
        }
    }
    #[inline(always)]
    unsafe fn requant_add(x: __m512i, b: *const f32, m: *const f32) -> __m512i {
        // SAFETY: the caller guarantees 16 readable floats at `b` and `m`.
        unsafe {
            let f = _mm512_add_ps(_mm512_cvtepi32_ps(x), _mm512_loadu_ps(b));
            _mm512_cvtps_epi32(_mm512_mul_ps(f, _mm512_loadu_ps(m)))
        }
    }
    #[inline(always)]
    unsafe fn load_i32(p: *const i32) -> __m512i {
        // SAFETY: the caller guarantees 16 readable i32 at `p`.
        unsafe { _mm512_loadu_si512(p.cast()) }
    }
    #[inline(always)]
    unsafe fn load_i32_each(p: *const i32) -> __m512i {
        // SAFETY: the caller's contract (16 readable i32 at `p`; AVX-512F).
        unsafe { load_each_zmm(p) }
    }
    #[inline(always)]
    unsafe fn packs32(a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: AVX-512BW (the trait's contract).
        unsafe { _mm512_packs_epi32(a, b) }
    }
    #[inline(always)]
    unsafe fn adds16(a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: AVX-512BW (the trait's contract).
        unsafe { _mm512_adds_epi16(a, b) }
    }
    #[inline(always)]
    unsafe fn packus16(a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: AVX-512BW (the trait's contract).
        unsafe { _mm512_packus_epi16(a, b) }
    }
    #[inline(always)]
    unsafe fn clamp8(v: __m512i, lo: __m512i, hi: __m512i) -> __m512i {
        // SAFETY: AVX-512BW (the trait's contract).
        unsafe { _mm512_min_epu8(_mm512_max_epu8(v, lo), hi) }
    }
}

impl<const P: usize> Lanes for YmmPx<P> {
    type V = __m256i;
    const W: usize = 32;
    const PX: usize = P;
    #[inline(always)]
    unsafe fn load_px(p: *const u8, delta: usize) -> __m256i {
        // SAFETY: the caller guarantees 32 (one pixel) or 2 × 16 readable bytes.
        unsafe {
            if P == 1 {
                Self::load(p)
            } else {
                _mm256_inserti128_si256::<1>(
                    _mm256_castsi128_si256(_mm_loadu_si128(p.cast())),
                    _mm_loadu_si128(p.add(delta).cast()),
                )
            }
        }
    }
    #[inline(always)]
    unsafe fn load_mask_px(p: *const u8, delta: usize, mask: u64) -> __m256i {
        // SAFETY: the caller guarantees the masked bytes of each pixel readable.
        unsafe {
            if P == 1 {
                Self::load_mask(p, mask)
            } else {
                _mm256_inserti128_si256::<1>(
                    _mm256_castsi128_si256(_mm_maskz_loadu_epi8(mask as u16, p.cast())),
                    _mm_maskz_loadu_epi8(mask as u16, p.add(delta).cast()),
                )
            }
        }
    }
    #[inline(always)]
    unsafe fn store_px(p: *mut u8, delta: usize, v: __m256i) {
        // SAFETY: the caller guarantees 32 (one pixel) or 2 × 16 writable bytes.
        unsafe {
            if P == 1 {
                Self::store(p, v)
            } else {
                _mm_storeu_si128(p.cast(), _mm256_castsi256_si128(v));
                _mm_storeu_si128(p.add(delta).cast(), _mm256_extracti128_si256::<1>(v));
            }
        }
    }
    #[inline(always)]
    unsafe fn store_mask_px(p: *mut u8, delta: usize, v: __m256i, mask: u64) {
        // SAFETY: the caller guarantees the masked bytes of each pixel writable.
        unsafe {
            if P == 1 {
                Self::store_mask(p, v, mask)
            } else {
                _mm_mask_storeu_epi8(p.cast(), mask as u16, _mm256_castsi256_si128(v));
                _mm_mask_storeu_epi8(
                    p.add(delta).cast(),
                    mask as u16,
                    _mm256_extracti128_si256::<1>(v),
                );
            }
        }
    }
    #[inline(always)]
    unsafe fn load(p: *const u8) -> __m256i {
        // SAFETY: the caller guarantees 32 readable bytes at `p`.
        unsafe { _mm256_loadu_si256(p.cast()) }
    }
    #[inline(always)]
    unsafe fn load_mask(p: *const u8, mask: u64) -> __m256i {
        // SAFETY: the caller guarantees the masked bytes readable (the mask's low 32 bits
        // select them); the others are not read.
        unsafe { _mm256_maskz_loadu_epi8(mask as u32, p.cast()) }
    }
    #[inline(always)]
    unsafe fn store_mask(p: *mut u8, v: __m256i, mask: u64) {
        // SAFETY: the caller guarantees the masked bytes writable; the others are untouched.
        unsafe { _mm256_mask_storeu_epi8(p.cast(), mask as u32, v) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut u8, v: __m256i) {
        // SAFETY: the caller guarantees 32 writable bytes at `p`.
        unsafe { _mm256_storeu_si256(p.cast(), v) }
    }
    #[inline(always)]
    unsafe fn zero() -> __m256i {
        // SAFETY: AVX (the trait's contract).
        unsafe { _mm256_setzero_si256() }
    }
    #[inline(always)]
    unsafe fn splat16(x: i16) -> __m256i {
        // SAFETY: AVX (the trait's contract).
        unsafe { _mm256_set1_epi16(x) }
    }
    #[inline(always)]
    unsafe fn splat8(x: i8) -> __m256i {
        // SAFETY: AVX (the trait's contract).
        unsafe { _mm256_set1_epi8(x) }
    }
    #[inline(always)]
    unsafe fn unpacklo8(a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: AVX2 (the trait's contract).
        unsafe { _mm256_unpacklo_epi8(a, b) }
    }
    #[inline(always)]
    unsafe fn unpackhi8(a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: AVX2 (the trait's contract).
        unsafe { _mm256_unpackhi_epi8(a, b) }
    }
    #[inline(always)]
    unsafe fn unpacklo16(a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: AVX2 (the trait's contract).
        unsafe { _mm256_unpacklo_epi16(a, b) }
    }
    #[inline(always)]
    unsafe fn unpackhi16(a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: AVX2 (the trait's contract).
        unsafe { _mm256_unpackhi_epi16(a, b) }
    }
    #[inline(always)]
    unsafe fn maddubs(a: __m256i, w: __m256i) -> __m256i {
        // SAFETY: AVX2 (the trait's contract).
        unsafe { _mm256_maddubs_epi16(a, w) }
    }
    #[inline(always)]
    unsafe fn dpwssd(acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: AVX-512 VNNI + VL (the trait's contract).
        unsafe { _mm256_dpwssd_epi32(acc, a, b) }
    }
    #[inline(always)]
    unsafe fn dpbusd(acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: AVX-512 VNNI + VL (the trait's contract).
        unsafe { _mm256_dpbusd_epi32(acc, a, b) }
    }
    #[inline(always)]
    unsafe fn shuffle8(a: __m256i, ctl: __m256i) -> __m256i {
        // SAFETY: AVX2 (the trait's contract).
        unsafe { _mm256_shuffle_epi8(a, ctl) }
    }
    #[inline(always)]
    unsafe fn requant(x: __m256i, a: *const f32, b: *const f32, m: *const f32) -> __m256i {
        // SAFETY: the caller guarantees 8 readable floats at `a`, `b` and `m`.
        unsafe {
            let f = _mm256_fmadd_ps(
                _mm256_loadu_ps(a),
                _mm256_loadu_ps(b),
                _mm256_cvtepi32_ps(x),
            );
            _mm256_cvtps_epi32(_mm256_mul_ps(f, _mm256_loadu_ps(m)))
        }
    }
    #[inline(always)]
    unsafe fn requant_add(x: __m256i, b: *const f32, m: *const f32) -> __m256i {
        // SAFETY: the caller guarantees 8 readable floats at `b` and `m`.
        unsafe {
            let f = _mm256_add_ps(_mm256_cvtepi32_ps(x), _mm256_loadu_ps(b));
            _mm256_cvtps_epi32(_mm256_mul_ps(f, _mm256_loadu_ps(m)))
        }
    }
    #[inline(always)]
    unsafe fn load_i32(p: *const i32) -> __m256i {
        // SAFETY: the caller guarantees 8 readable i32 at `p`.
        unsafe { _mm256_loadu_si256(p.cast()) }
    }
    #[inline(always)]
    unsafe fn load_i32_each(p: *const i32) -> __m256i {
        // SAFETY: the caller's contract (8 readable i32 at `p`; AVX).
        unsafe { load_each_ymm(p) }
    }
    #[inline(always)]
    unsafe fn packs32(a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: AVX2 (the trait's contract).
        unsafe { _mm256_packs_epi32(a, b) }
    }
    #[inline(always)]
    unsafe fn adds16(a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: AVX2 (the trait's contract).
        unsafe { _mm256_adds_epi16(a, b) }
    }
    #[inline(always)]
    unsafe fn packus16(a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: AVX2 (the trait's contract).
        unsafe { _mm256_packus_epi16(a, b) }
    }
    #[inline(always)]
    unsafe fn clamp8(v: __m256i, lo: __m256i, hi: __m256i) -> __m256i {
        // SAFETY: AVX2 (the trait's contract).
        unsafe { _mm256_min_epu8(_mm256_max_epu8(v, lo), hi) }
    }
}

/// 16 i32 at `p` by an `asm!` load ([`Lanes::load_i32_each`]).
///
/// # Safety
/// AVX-512F available; 64 readable bytes at `p`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn load_each_zmm(p: *const i32) -> __m512i {
    let v: __m512i;
    // SAFETY: the caller guarantees 64 readable bytes at `p`; the asm only reads them.
    unsafe {
        std::arch::asm!(
            "vmovdqu64 {v}, [{p}]",
            p = in(reg) p,
            v = out(zmm_reg) v,
            options(readonly, nostack, preserves_flags)
        )
    };
    v
}

/// 8 i32 at `p` by an `asm!` load ([`Lanes::load_i32_each`]).
///
/// # Safety
/// AVX available; 32 readable bytes at `p`.
#[target_feature(enable = "avx")]
#[inline]
unsafe fn load_each_ymm(p: *const i32) -> __m256i {
    let v: __m256i;
    // SAFETY: the caller guarantees 32 readable bytes at `p`; the asm only reads them.
    unsafe {
        std::arch::asm!(
            "vmovdqu {v}, [{p}]",
            p = in(reg) p,
            v = out(ymm_reg) v,
            options(readonly, nostack, preserves_flags)
        )
    };
    v
}
