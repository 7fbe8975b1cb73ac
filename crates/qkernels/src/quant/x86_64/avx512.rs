//! AVX-512 F/BW: 64 elements per step (four zmm of f32, one zmm of bytes).

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use super::{Avx512Checked, CLIP, prefetch_ahead};

/// Alignment in bytes of the streaming (non-temporal) stores.
const ALIGN: usize = 64;

/// Elements per step.
const BLOCK: usize = 64;

/// Quantizes `src` into `dst` (equal lengths; checked by the caller).
pub(crate) fn quantize<const SIGNED: bool>(
    cpu: Avx512Checked,
    src: &[f32],
    inv_scale: f32,
    zero_point: i32,
    dst: &mut [MaybeUninit<u8>],
    stream: bool,
) {
    let _ = cpu;
    // SAFETY: an `Avx512Checked` exists only after AVX-512 F and BW were detected.
    unsafe { quantize_slice::<SIGNED>(src, inv_scale, zero_point, dst, stream) }
}

/// Dequantizes `src` into `dst` (equal lengths; checked by the caller).
pub(crate) fn dequantize<const SIGNED: bool>(
    cpu: Avx512Checked,
    src: &[u8],
    scale: f32,
    zero_point: i32,
    dst: &mut [MaybeUninit<f32>],
    stream: bool,
) {
    let _ = cpu;
    // SAFETY: an `Avx512Checked` exists only after AVX-512 F and BW were detected.
    unsafe { dequantize_slice::<SIGNED>(src, scale, zero_point, dst, stream) }
}

/// Broadcast constants of a quantize call.
#[derive(Clone, Copy)]
struct QuantConsts {
    inv_scale: __m512,
    clip: __m512,
    zero_point: __m512i,
    /// Dword order that undoes the per-lane interleaving of the packs.
    unpermute: __m512i,
}

#[target_feature(enable = "avx512f,avx512bw")]
fn quantize_slice<const SIGNED: bool>(
    src: &[f32],
    inv_scale: f32,
    zero_point: i32,
    dst: &mut [MaybeUninit<u8>],
    stream: bool,
) {
    let k = QuantConsts {
        inv_scale: _mm512_set1_ps(inv_scale),
        clip: _mm512_set1_ps(CLIP),
        zero_point: _mm512_set1_epi32(zero_point),
        unpermute: _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15),
    };
    // Streaming stores need aligned destinations: the unaligned head goes the padded way.
    let head = if stream {
        dst.as_ptr().align_offset(ALIGN).min(dst.len())
    } else {
        0
    };
    let (src_head, src) = src.split_at(head);
    let (dst_head, dst) = dst.split_at_mut(head);
    quantize_padded::<SIGNED>(src_head, dst_head, &k);
    let (src_blocks, src_tail) = src.as_chunks::<BLOCK>();
    let (dst_blocks, dst_tail) = dst.as_chunks_mut::<BLOCK>();
    if stream {
        for (s, d) in src_blocks.iter().zip(dst_blocks) {
            prefetch_ahead(s);
            quantize_block::<SIGNED, true>(s, d, &k);
        }
        _mm_sfence();
    } else {
        for (s, d) in src_blocks.iter().zip(dst_blocks) {
            prefetch_ahead(s);
            quantize_block::<SIGNED, false>(s, d, &k);
        }
    }
    quantize_padded::<SIGNED>(src_tail, dst_tail, &k);
}

/// Short runs (tails, unaligned heads) through the block code on zero-padded copies.
#[target_feature(enable = "avx512f,avx512bw")]
fn quantize_padded<const SIGNED: bool>(src: &[f32], dst: &mut [MaybeUninit<u8>], k: &QuantConsts) {
    for (src, dst) in src.chunks(BLOCK).zip(dst.chunks_mut(BLOCK)) {
        let mut s = [0.0f32; BLOCK];
        let mut d = [MaybeUninit::<u8>::uninit(); BLOCK];
        s[..src.len()].copy_from_slice(src);
        quantize_block::<SIGNED, false>(&s, &mut d, k);
        dst.copy_from_slice(&d[..dst.len()]);
    }
}

/// `min(x * inv_scale, CLIP)`, rounded to i32 (`vcvtps2dq`, MXCSR round-to-nearest-even),
/// plus the zero point (wrapping).
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn to_i32(x: __m512, k: &QuantConsts) -> __m512i {
    let t = _mm512_min_ps(_mm512_mul_ps(x, k.inv_scale), k.clip);
    _mm512_add_epi32(_mm512_cvtps_epi32(t), k.zero_point)
}

#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn quantize_block<const SIGNED: bool, const STREAM: bool>(
    src: &[f32; BLOCK],
    dst: &mut [MaybeUninit<u8>; BLOCK],
    k: &QuantConsts,
) {
    let p = src.as_ptr();
    // SAFETY: the four 16-lane loads read `src[0..64]`, inside the array.
    let (a, b, c, d) = unsafe {
        (
            _mm512_loadu_ps(p),
            _mm512_loadu_ps(p.add(16)),
            _mm512_loadu_ps(p.add(32)),
            _mm512_loadu_ps(p.add(48)),
        )
    };
    let ab = _mm512_packs_epi32(to_i32(a, k), to_i32(b, k));
    let cd = _mm512_packs_epi32(to_i32(c, k), to_i32(d, k));
    let bytes = if SIGNED {
        _mm512_packs_epi16(ab, cd)
    } else {
        _mm512_packus_epi16(ab, cd)
    };
    let bytes = _mm512_permutexvar_epi32(k.unpermute, bytes);
    if STREAM {
        // SAFETY: the 64-byte store writes `dst[0..64]`, inside the array, which the caller
        // aligned to 64 bytes (`quantize_slice` splits off the unaligned head).
        unsafe { _mm512_stream_si512(dst.as_mut_ptr().cast(), bytes) }
    } else {
        // SAFETY: the 64-byte store writes `dst[0..64]`, inside the array.
        unsafe { _mm512_storeu_si512(dst.as_mut_ptr().cast(), bytes) }
    }
}

#[target_feature(enable = "avx512f,avx512bw")]
fn dequantize_slice<const SIGNED: bool>(
    src: &[u8],
    scale: f32,
    zero_point: i32,
    dst: &mut [MaybeUninit<f32>],
    stream: bool,
) {
    let scale_v = _mm512_set1_ps(scale);
    let zp_v = _mm512_set1_epi32(zero_point);
    // Streaming stores need aligned destinations, and plain vector stores that straddle two
    // cache lines cost ~10 % at 1M elements (a 16-byte-aligned `Vec<f32>` from malloc): the
    // unaligned head goes the padded way.
    let head = dst.as_ptr().align_offset(ALIGN).min(dst.len());
    let (src_head, src) = src.split_at(head);
    let (dst_head, dst) = dst.split_at_mut(head);
    dequantize_padded::<SIGNED>(src_head, dst_head, scale_v, zp_v);
    let (src_blocks, src_tail) = src.as_chunks::<BLOCK>();
    let (dst_blocks, dst_tail) = dst.as_chunks_mut::<BLOCK>();
    if stream {
        for (s, d) in src_blocks.iter().zip(dst_blocks) {
            dequantize_block::<SIGNED, true>(s, d, scale_v, zp_v);
        }
        _mm_sfence();
    } else {
        for (s, d) in src_blocks.iter().zip(dst_blocks) {
            dequantize_block::<SIGNED, false>(s, d, scale_v, zp_v);
        }
    }
    dequantize_padded::<SIGNED>(src_tail, dst_tail, scale_v, zp_v);
}

/// Short runs (tails, unaligned heads) through the block code on zero-padded copies.
#[target_feature(enable = "avx512f,avx512bw")]
fn dequantize_padded<const SIGNED: bool>(
    src: &[u8],
    dst: &mut [MaybeUninit<f32>],
    scale: __m512,
    zero_point: __m512i,
) {
    for (src, dst) in src.chunks(BLOCK).zip(dst.chunks_mut(BLOCK)) {
        let mut s = [0u8; BLOCK];
        let mut d = [MaybeUninit::<f32>::uninit(); BLOCK];
        s[..src.len()].copy_from_slice(src);
        dequantize_block::<SIGNED, false>(&s, &mut d, scale, zero_point);
        dst.copy_from_slice(&d[..dst.len()]);
    }
}

#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn dequantize_block<const SIGNED: bool, const STREAM: bool>(
    src: &[u8; BLOCK],
    dst: &mut [MaybeUninit<f32>; BLOCK],
    scale: __m512,
    zero_point: __m512i,
) {
    for j in 0..BLOCK / 16 {
        // SAFETY: reads the 16 bytes `src[16j..16j + 16]`, inside the array (j < 4).
        let raw = unsafe { _mm_loadu_si128(src.as_ptr().add(16 * j).cast()) };
        let q = if SIGNED {
            _mm512_cvtepi8_epi32(raw)
        } else {
            _mm512_cvtepu8_epi32(raw)
        };
        let v = _mm512_mul_ps(scale, _mm512_cvtepi32_ps(_mm512_sub_epi32(q, zero_point)));
        if STREAM {
            // SAFETY: writes the 16 floats `dst[16j..16j + 16]`, inside the array (j < 4),
            // which the caller aligned to 64 bytes, so each store is aligned.
            unsafe { _mm512_stream_ps(dst.as_mut_ptr().add(16 * j).cast(), v) }
        } else {
            // SAFETY: writes the 16 floats `dst[16j..16j + 16]`, inside the array (j < 4).
            unsafe { _mm512_storeu_ps(dst.as_mut_ptr().add(16 * j).cast(), v) }
        }
    }
}

/// `(min, max)` of a non-empty `src` ([`crate::quant::min_max`]), the portable lane loop
/// compiled for AVX-512 F.
pub(crate) fn min_max(cpu: Avx512Checked, src: &[f32]) -> (f32, f32) {
    let _ = cpu;
    assert!(!src.is_empty(), "min_max of an empty slice");
    // SAFETY: `cpu` proves the CPU has the features `min_max_simd` is compiled for.
    unsafe { min_max_simd(src) }
}

/// # Safety
/// AVX-512 F available.
#[target_feature(enable = "avx512f")]
unsafe fn min_max_simd(src: &[f32]) -> (f32, f32) {
    crate::quant::min_max::lanes(src)
}
