//! `(min, max)` of an `f32` slice: the first pass of dynamic quantization (fbgemm's
//! `FindMinMax`, which PyTorch's dynamic Linear runs over its input before choosing the
//! activation qparams). Lane-wise `min`/`max` over [`LANES`] accumulators started at the first
//! element, then a reduction; large inputs are split over the rayon pool (`crate::par`).
//!
//! Without NaN the result is the exact minimum and maximum, whatever the lane count, ISA or
//! thread split (only which of `-0.0`/`+0.0` is returned may differ, which no qparams choice
//! can see). With NaN the result is unspecified, as in fbgemm, whose result then depends on
//! its vector order.

use super::level::Level;
use super::parallel::PAR_THRESHOLD;

/// Accumulator lanes: two zmm (or four ymm) of mins and as many of maxes.
const LANES: usize = 32;
/// Elements per rayon task.
const PAR_CHUNK: usize = 1 << 16;

/// `a < b ? a : b`, what x86 `minps(a, b)` computes.
#[inline(always)]
fn lesser(a: f32, b: f32) -> f32 {
    if a < b { a } else { b }
}

/// `a > b ? a : b`, what x86 `maxps(a, b)` computes.
#[inline(always)]
fn greater(a: f32, b: f32) -> f32 {
    if a > b { a } else { b }
}

/// The lane loop every family compiles (with its own target features); `src` non-empty.
#[inline(always)]
pub(crate) fn lanes(src: &[f32]) -> (f32, f32) {
    let first = src[0];
    let mut lo = [first; LANES];
    let mut hi = [first; LANES];
    let mut chunks = src.chunks_exact(LANES);
    for c in &mut chunks {
        for j in 0..LANES {
            lo[j] = lesser(c[j], lo[j]);
            hi[j] = greater(c[j], hi[j]);
        }
    }
    // Halve the lanes in vector steps (a scalar chain over all 32 took ~0.1 µs of a 1024-wide
    // dynamic Linear call), then fold the remainder in.
    let mut width = LANES / 2;
    while width > 0 {
        for j in 0..width {
            lo[j] = lesser(lo[j + width], lo[j]);
            hi[j] = greater(hi[j + width], hi[j]);
        }
        width /= 2;
    }
    let (mut l, mut h) = (lo[0], hi[0]);
    for &v in chunks.remainder() {
        l = lesser(v, l);
        h = greater(v, h);
    }
    (l, h)
}

/// `(min, max)` of `src` on `level`; `(0, 0)` when empty.
pub(crate) fn min_max_on(level: Level, src: &[f32]) -> (f32, f32) {
    let Some(&first) = src.first() else {
        return (0.0, 0.0);
    };
    if src.len() >= PAR_THRESHOLD && rayon::current_num_threads() > 1 {
        crate::par::map_reduce_chunks(
            src,
            PAR_CHUNK,
            (first, first),
            |c| level.min_max(c),
            |a, b| (lesser(b.0, a.0), greater(b.1, a.1)),
        )
    } else {
        level.min_max(src)
    }
}
