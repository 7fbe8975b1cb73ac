//! NEON: 16 elements per step. The same function as [`qtensor::quantize_val`] with aarch64
//! instructions: `fmul` (no FMA), `min(t, 2147483520)` as a compare-and-select so a NaN `t`
//! gives the bound (as x86 `minps` does), `fcvtns` (round half to even, saturating: values below
//! `-2^31` give `i32::MIN`), a wrapping 32-bit add of the zero point, then saturating narrows
//! (i32 -> i16 -> u8/i8) that clamp to `[qmin, qmax]` exactly. Dequantize widens, subtracts
//! the zero point in i32, converts exactly and multiplies once in f32.

use std::arch::aarch64::*;
use std::mem::MaybeUninit;

/// Elements per step.
const BLOCK: usize = 16;

/// Largest `f32` below 2^31, fbgemm's clip before the conversion.
const CLIP: f32 = 2_147_483_520.0;

/// Proof that NEON was detected; only [`NeonChecked::new`] makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NeonChecked(());

impl NeonChecked {
    /// The proof, if this CPU has NEON.
    pub(crate) fn new() -> Option<Self> {
        std::arch::is_aarch64_feature_detected!("neon").then_some(NeonChecked(()))
    }
}

/// Quantizes `src` into `dst` (equal lengths; checked by the caller).
pub(crate) fn quantize<const SIGNED: bool>(
    cpu: NeonChecked,
    src: &[f32],
    inv_scale: f32,
    zero_point: i32,
    dst: &mut [MaybeUninit<u8>],
) {
    let _ = cpu;
    // SAFETY: a `NeonChecked` exists only after NEON was detected.
    unsafe { quantize_slice::<SIGNED>(src, inv_scale, zero_point, dst) }
}

/// Dequantizes `src` into `dst` (equal lengths; checked by the caller).
pub(crate) fn dequantize<const SIGNED: bool>(
    cpu: NeonChecked,
    src: &[u8],
    scale: f32,
    zero_point: i32,
    dst: &mut [MaybeUninit<f32>],
) {
    let _ = cpu;
    // SAFETY: a `NeonChecked` exists only after NEON was detected.
    unsafe { dequantize_slice::<SIGNED>(src, scale, zero_point, dst) }
}

/// Broadcast constants of a quantize call.
#[derive(Clone, Copy)]
struct QuantConsts {
    inv_scale: float32x4_t,
    clip: float32x4_t,
    zero_point: int32x4_t,
}

#[target_feature(enable = "neon")]
fn quantize_slice<const SIGNED: bool>(
    src: &[f32],
    inv_scale: f32,
    zero_point: i32,
    dst: &mut [MaybeUninit<u8>],
) {
    let k = QuantConsts {
        inv_scale: vdupq_n_f32(inv_scale),
        clip: vdupq_n_f32(CLIP),
        zero_point: vdupq_n_s32(zero_point),
    };
    let (src_blocks, src_tail) = src.as_chunks::<BLOCK>();
    let (dst_blocks, dst_tail) = dst.as_chunks_mut::<BLOCK>();
    for (s, d) in src_blocks.iter().zip(dst_blocks) {
        quantize_block::<SIGNED>(s, d, &k);
    }
    if !src_tail.is_empty() {
        // The tail runs through the same block code on a zero-padded copy.
        let mut s = [0.0f32; BLOCK];
        let mut d = [MaybeUninit::<u8>::uninit(); BLOCK];
        s[..src_tail.len()].copy_from_slice(src_tail);
        quantize_block::<SIGNED>(&s, &mut d, &k);
        dst_tail.copy_from_slice(&d[..dst_tail.len()]);
    }
}

/// `min(x * inv_scale, CLIP)` (NaN gives `CLIP`), rounded to i32, plus the zero point.
#[target_feature(enable = "neon")]
#[inline]
fn to_i32(x: float32x4_t, k: &QuantConsts) -> int32x4_t {
    let t = vmulq_f32(x, k.inv_scale);
    let t = vbslq_f32(vcltq_f32(t, k.clip), t, k.clip);
    vaddq_s32(vcvtnq_s32_f32(t), k.zero_point)
}

#[target_feature(enable = "neon")]
#[inline]
fn quantize_block<const SIGNED: bool>(
    src: &[f32; BLOCK],
    dst: &mut [MaybeUninit<u8>; BLOCK],
    k: &QuantConsts,
) {
    let p = src.as_ptr();
    // SAFETY: the four 4-lane loads read `src[0..16]`, inside the array.
    let (a, b, c, d) = unsafe {
        (
            vld1q_f32(p),
            vld1q_f32(p.add(4)),
            vld1q_f32(p.add(8)),
            vld1q_f32(p.add(12)),
        )
    };
    let ab = vcombine_s16(vqmovn_s32(to_i32(a, k)), vqmovn_s32(to_i32(b, k)));
    let cd = vcombine_s16(vqmovn_s32(to_i32(c, k)), vqmovn_s32(to_i32(d, k)));
    let bytes = if SIGNED {
        vreinterpretq_u8_s8(vcombine_s8(vqmovn_s16(ab), vqmovn_s16(cd)))
    } else {
        vcombine_u8(vqmovun_s16(ab), vqmovun_s16(cd))
    };
    // SAFETY: the 16-byte store writes `dst[0..16]`, inside the array.
    unsafe { vst1q_u8(dst.as_mut_ptr().cast(), bytes) }
}

#[target_feature(enable = "neon")]
fn dequantize_slice<const SIGNED: bool>(
    src: &[u8],
    scale: f32,
    zero_point: i32,
    dst: &mut [MaybeUninit<f32>],
) {
    let scale_v = vdupq_n_f32(scale);
    let zp_v = vdupq_n_s32(zero_point);
    let (src_blocks, src_tail) = src.as_chunks::<BLOCK>();
    let (dst_blocks, dst_tail) = dst.as_chunks_mut::<BLOCK>();
    for (s, d) in src_blocks.iter().zip(dst_blocks) {
        dequantize_block::<SIGNED>(s, d, scale_v, zp_v);
    }
    if !src_tail.is_empty() {
        let mut s = [0u8; BLOCK];
        let mut d = [MaybeUninit::<f32>::uninit(); BLOCK];
        s[..src_tail.len()].copy_from_slice(src_tail);
        dequantize_block::<SIGNED>(&s, &mut d, scale_v, zp_v);
        dst_tail.copy_from_slice(&d[..dst_tail.len()]);
    }
}

/// The 16 bytes widened to four vectors of i32 (sign- or zero-extended).
#[target_feature(enable = "neon")]
#[inline]
fn widen<const SIGNED: bool>(raw: uint8x16_t) -> [int32x4_t; 4] {
    let (lo, hi) = if SIGNED {
        let s = vreinterpretq_s8_u8(raw);
        (vmovl_s8(vget_low_s8(s)), vmovl_s8(vget_high_s8(s)))
    } else {
        (
            vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(raw))),
            vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(raw))),
        )
    };
    // every value fits in i16, so sign-extending to i32 is exact for both dtypes
    [
        vmovl_s16(vget_low_s16(lo)),
        vmovl_s16(vget_high_s16(lo)),
        vmovl_s16(vget_low_s16(hi)),
        vmovl_s16(vget_high_s16(hi)),
    ]
}

#[target_feature(enable = "neon")]
#[inline]
fn dequantize_block<const SIGNED: bool>(
    src: &[u8; BLOCK],
    dst: &mut [MaybeUninit<f32>; BLOCK],
    scale: float32x4_t,
    zero_point: int32x4_t,
) {
    // SAFETY: the 16-byte load reads `src[0..16]`, inside the array.
    let raw = unsafe { vld1q_u8(src.as_ptr()) };
    for (j, q) in widen::<SIGNED>(raw).into_iter().enumerate() {
        let v = vmulq_f32(scale, vcvtq_f32_s32(vsubq_s32(q, zero_point)));
        // SAFETY: writes the 4 floats `dst[4j..4j + 4]`, inside the array (j < 4).
        unsafe { vst1q_f32(dst.as_mut_ptr().add(4 * j).cast(), v) }
    }
}
