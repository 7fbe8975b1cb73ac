//! x86-64 families. Both follow fbgemm's `QuantizeAvx2` step for step, which is what
//! [`qtensor::quantize_val`] defines: `t = x * inv_scale` (`mulps`, no FMA), `min(t, 2147483520)`
//! (`minps` returns the bound for a NaN `t`), `cvtps2dq` (round half to even; values below
//! `-2^31` give `i32::MIN`), a wrapping 32-bit add of the zero point, then saturating packs
//! (i32 -> i16 -> u8/i8), which clamp to `[qmin, qmax]` exactly. Dequantize widens, subtracts
//! the zero point in i32, converts exactly (`|q - zp| <= 510`) and multiplies once in f32.

pub(crate) mod avx2;
pub(crate) mod avx512;

/// Largest `f32` below 2^31, fbgemm's clip before the conversion.
const CLIP: f32 = 2_147_483_520.0;

/// How far ahead of the block being quantized its source is prefetched (bytes). One core's
/// hardware prefetchers keep too few DRAM reads in flight for a large f32 source: on the
/// session-20 Xeon a 16M-element quantize read at 13–18 GB/s and took 4.7–5.8 ms, 3.1 ms
/// with this prefetch (an LLC-resident 1M-element source gained 10 %; docs/PERFORMANCE.md).
const PREFETCH_AHEAD: usize = 16 * 1024;

/// Prefetches into L1 the cache lines of the `N` floats [`PREFETCH_AHEAD`] bytes past
/// `block` (`N·4` is a multiple of 64 in both families).
#[target_feature(enable = "sse")]
#[inline]
fn prefetch_ahead<const N: usize>(block: &[f32; N]) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    let ahead = block.as_ptr().cast::<i8>().wrapping_add(PREFETCH_AHEAD);
    for line in 0..N * 4 / 64 {
        // `_mm_prefetch` (SSE, part of the x86-64 baseline) is a hint: it never faults and
        // reads nothing into the program, so the address may lie past the end of the source
        // (formed with `wrapping_add`, never dereferenced).
        _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64 * line));
    }
}

/// Proof that AVX2 was detected; only [`Avx2Checked::new`] makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2Checked(());

impl Avx2Checked {
    /// The proof, if this CPU has AVX2.
    pub(crate) fn new() -> Option<Self> {
        std::arch::is_x86_feature_detected!("avx2").then_some(Avx2Checked(()))
    }
}

/// Proof that AVX-512 F and BW were detected; only [`Avx512Checked::new`] makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512Checked(());

impl Avx512Checked {
    /// The proof, if this CPU has AVX-512 F and BW.
    pub(crate) fn new() -> Option<Self> {
        (std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw"))
        .then_some(Avx512Checked(()))
    }
}
