//! The AVX2 depthwise row kernel: one output row (every pixel of one `(n, z, y)`) per call,
//! loop order channel block outer (32 channels), pixels inner, so a block's weights and
//! requantization vectors stay hot across the row.
//!
//! A per-row table holds each pixel's tap pointers (an input pixel, or a vector of input
//! zero points for padding; an odd last tap is paired with a zero weight), so interior and
//! border pixels run the same code. Tap pairs `(2p, 2p + 1)` are multiplied on
//! byte-interleaved operands: on fbgemm's saturating depthwise path
//! ([`super::ConvGeometry::fbgemm_depthwise_saturates`], and always for the saturating AVX2
//! family) with `vpmaddubsw`, whose i16 pair sums saturate exactly as fbgemm's do, then two
//! pairs summed exactly into i32 by `vpmaddwd` with ones; otherwise with `vpmaddwd` on the
//! pairs widened to i16 (exact).
//! The accumulators start at `−za·Σ_t w` and are requantized in registers with the
//! operations of the GEMM's AVX2 epilogue ([`crate::gemm::requantize_one`] is the
//! definition), then packed to 32 output bytes. Symmetric weights only: the caller keeps
//! the per-pixel kernel for weight zero points ≠ 0.

use std::arch::x86_64::*;

use super::geometry::ConvGeometry;
use super::pack::{DW_BLOCK, DepthwiseWeights, dw_lane_channel};
use crate::gemm::Stage;
use crate::isa::Isa;

/// Per-call constants of the row kernel; channel vectors are in accumulator order
/// ([`dw_lane_channel`]) and padded to whole 32-channel blocks.
pub(crate) struct RowKernel<'a> {
    /// Output channels O (per pixel, the row stride of the input taps and of `out`).
    o: usize,
    /// Tap pairs `⌈taps / 2⌉`.
    pairs: usize,
    /// fbgemm's pair saturation.
    saturate: bool,
    w8: &'a [i8],
    w16: &'a [i16],
    init: Vec<i32>,
    mult: Vec<f32>,
    bias_a: Vec<f32>,
    bias_b: Vec<f32>,
    zero_point: i32,
    lo: i32,
    hi: i32,
}

impl<'a> RowKernel<'a> {
    /// The kernel for `w` (symmetric weights) with activation zero point `za`, tap pairs
    /// saturated to i16 if `saturate`, or `None` when the CPU lacks AVX2 + FMA, the weights
    /// are asymmetric or the stage is not a requantization.
    pub(crate) fn new(
        g: &ConvGeometry,
        w: &'a DepthwiseWeights,
        za: i32,
        stage: &Stage,
        saturate: bool,
    ) -> Option<Self> {
        let Stage::Requant(r) = stage else {
            return None;
        };
        if !Self::applies(w) {
            return None;
        }
        let o = g.out_channels;
        let cpad = o.div_ceil(DW_BLOCK) * DW_BLOCK;
        // accumulator order: entry b·32 + 8j + l holds channel b·32 + dw_lane_channel(j, l)
        let channel = |i: usize| (i / DW_BLOCK) * DW_BLOCK + dw_lane_channel((i % 32) / 8, i % 8);
        let gather_f = |v: &[f32]| -> Vec<f32> {
            (0..cpad)
                .map(|i| v.get(channel(i)).copied().unwrap_or(0.0))
                .collect()
        };
        let init = (0..cpad)
            .map(|i| {
                w.col_offsets
                    .get(channel(i))
                    .map_or(0, |&s| s.wrapping_mul(za).wrapping_neg())
            })
            .collect();
        Some(RowKernel {
            o,
            pairs: g.taps().div_ceil(2),
            saturate,
            w8: &w.pairs8,
            w16: &w.pairs16,
            init,
            mult: gather_f(&r.mult[..o]),
            bias_a: gather_f(&r.bias_a[..o]),
            bias_b: gather_f(&r.bias_b[..o]),
            zero_point: r.zero_point,
            lo: r.lo,
            hi: r.hi,
        })
    }

    /// Whether the kernel runs `w` on this CPU (AVX2 + FMA, symmetric weights), given a
    /// requantizing stage.
    pub(crate) fn applies(w: &DepthwiseWeights) -> bool {
        Isa::Avx2.is_supported() && w.zero_points.iter().all(|&z| z == 0)
    }

    /// Computes one output row (`ow·O` bytes of `out`) from the tap pointers `taps` filled
    /// for it.
    pub(crate) fn row(&self, taps: &RowTaps, out: &mut [u8]) {
        let o = self.o;
        let nt = 2 * self.pairs;
        let ow = out.len() / o;
        let (a, b) = taps.interior;
        assert!(out.len().is_multiple_of(o) && taps.tab.len() >= ow * nt);
        assert!(taps.bases.len() == nt && a <= b && b <= ow && taps.o == o);
        assert!(self.w8.len() >= o.div_ceil(DW_BLOCK) * self.pairs * 64);
        assert!(self.w16.len() >= o.div_ceil(DW_BLOCK) * self.pairs * 64);
        // SAFETY: `new` checked AVX2 + FMA; lengths asserted above; `RowTaps::fill` (the
        // only code that sets its pointers) derives each from a slice with O readable bytes
        // for every pixel it serves.
        unsafe {
            match (self.pairs, self.saturate) {
                (5, true) => row_avx2::<5, true>(self, taps, out),
                (13, true) => row_avx2::<13, true>(self, taps, out),
                (5, false) => row_avx2::<5, false>(self, taps, out),
                (13, false) => row_avx2::<13, false>(self, taps, out),
                (_, true) => row_avx2::<0, true>(self, taps, out),
                (_, false) => row_avx2::<0, false>(self, taps, out),
            }
        }
    }
}

/// The tap pointers of one output row, taps in `[tz][ty][tx]` order plus a padding tap
/// (weight zero) when the tap count is odd; a pointer addresses a whole input pixel (O
/// bytes) or a run of input zero points for padding.
pub(crate) struct RowTaps {
    /// Channels O.
    pub(super) o: usize,
    /// Pixels `interior.0..interior.1` have every tap column inside the input.
    pub(super) interior: (usize, usize),
    /// The interior's first pixel's tap pointers; pixel x adds `(x − interior.0)·step`
    /// (padding rows point into a long enough run of zero points).
    pub(super) bases: Vec<*const u8>,
    pub(super) step: usize,
    /// Per pixel, the tap pointers of the border pixels (entries of interior pixels unused).
    pub(super) tab: Vec<*const u8>,
    /// Per `(tz, ty)`, the input line's first pixel and the pixel step (O), or for a
    /// padding line O input zero points with step 0 (the column kernel's row pointers).
    pub(super) line_ptrs: Vec<(*const u8, usize)>,
    /// Input width and left padding (columns `x·sx − px + tx` outside `0..iw` are padding).
    pub(super) iw: usize,
    /// Scratch: the input line of every `(tz, ty)`, or `None` for padding.
    lines: Vec<Option<usize>>,
}

impl RowTaps {
    /// Empty scratch.
    pub(crate) fn new() -> Self {
        RowTaps {
            o: 0,
            interior: (0, 0),
            bases: Vec::new(),
            step: 0,
            tab: Vec::new(),
            line_ptrs: Vec::new(),
            iw: 0,
            lines: Vec::new(),
        }
    }

    /// Zero points the row kernel needs for `g` (a run covering every interior pixel).
    pub(crate) fn zeros_len(g: &ConvGeometry, out_dims: [usize; 3]) -> usize {
        (out_dims[2] * g.stride[2] + 1) * g.out_channels
    }

    /// Fills the pointers of output row `r` (`(n·OD + z)·OH + y`) of `src` (O channels per
    /// pixel); `zeros` holds [`RowTaps::zeros_len`] input zero points.
    pub(crate) fn fill(
        &mut self,
        g: &ConvGeometry,
        out_dims: [usize; 3],
        r: usize,
        src: &[u8],
        zeros: &[u8],
    ) {
        let o = g.out_channels;
        let [od, oh, ow] = out_dims;
        let y = r % oh;
        let z = (r / oh) % od;
        let n = r / (oh * od);
        let [id, ih, iw] = g.input;
        let lines = &mut self.lines;
        lines.clear();
        for tz in 0..g.kernel[0] {
            let iz = g.input_coord(0, z, tz);
            for ty in 0..g.kernel[1] {
                lines.push(match (iz, g.input_coord(1, y, ty)) {
                    (Some(iz), Some(iy)) => Some(((n * id + iz) * ih + iy) * iw),
                    _ => None,
                });
            }
        }
        self.iw = iw;
        self.line_ptrs.clear();
        for line in lines.iter() {
            self.line_ptrs.push(match *line {
                Some(lb) => (src[lb * o..(lb + iw) * o].as_ptr(), o),
                None => (zeros[..o].as_ptr(), 0),
            });
        }
        let odd = !g.taps().is_multiple_of(2);
        let nt = g.taps() + usize::from(odd);
        let (kw, sx, dx, px) = (g.kernel[2], g.stride[2], g.dilation[2], g.padding[2]);
        // interior: x·sx ≥ px and x·sx + (kw − 1)·dx − px < iw
        let a = px.div_ceil(sx).min(ow);
        let b = (iw + px).saturating_sub((kw - 1) * dx).div_ceil(sx).min(ow);
        let (a, b) = if a < b { (a, b) } else { (0, 0) };
        self.o = o;
        self.interior = (a, b);
        self.step = sx * o;
        // the bytes the interior pixels read from each base
        let span = if a < b { (b - 1 - a) * sx * o + o } else { o };
        let zero_run = zeros[..span].as_ptr();
        self.bases.clear();
        for line in lines.iter() {
            for tx in 0..kw {
                self.bases.push(match *line {
                    Some(lb) if a < b => {
                        let first = (lb + a * sx + tx * dx - px) * o;
                        src[first..first + span].as_ptr()
                    }
                    _ => zero_run,
                });
            }
        }
        if odd {
            self.bases.push(zero_run);
        }
        let zero = zeros[..o].as_ptr();
        self.tab.resize(ow * nt, zero);
        for x in (0..a).chain(b..ow) {
            let mut t = x * nt;
            for line in lines.iter() {
                for tx in 0..kw {
                    self.tab[t] = match (line, g.input_coord(2, x, tx)) {
                        (Some(lb), Some(ix)) => src[(lb + ix) * o..(lb + ix + 1) * o].as_ptr(),
                        _ => zero,
                    };
                    t += 1;
                }
            }
            if odd {
                self.tab[t] = zero;
            }
        }
    }
}

/// Loads `min(rem, 32)` bytes at `p` (zero above).
///
/// # Safety
/// AVX2 available; `p` addresses `min(rem, 32)` readable bytes.
#[inline(always)]
unsafe fn load_x(p: *const u8, rem: usize) -> __m256i {
    // SAFETY: the caller guarantees `min(rem, 32)` readable bytes at `p`; each arm reads
    // at most that many.
    unsafe {
        match rem {
            32.. => _mm256_loadu_si256(p.cast()),
            16 => _mm256_zextsi128_si256(_mm_loadu_si128(p.cast())),
            8 => _mm256_zextsi128_si256(_mm_loadl_epi64(p.cast())),
            24 => _mm256_inserti128_si256::<1>(
                _mm256_zextsi128_si256(_mm_loadu_si128(p.cast())),
                _mm_loadl_epi64(p.add(16).cast()),
            ),
            _ => _mm256_loadu_si256(copy_tail(p, rem).as_ptr().cast()),
        }
    }
}

/// The `rem < 32` bytes at `p`, zero-padded (channel tails that are not 8, 16 or 24).
///
/// # Safety
/// `p` addresses `rem` readable bytes.
#[cold]
#[inline(never)]
unsafe fn copy_tail(p: *const u8, rem: usize) -> [u8; 32] {
    let mut buf = [0u8; 32];
    // SAFETY: `rem ≤ 32` bytes are readable at `p` (the caller's contract) and fit `buf`.
    unsafe { std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), rem.min(32)) };
    buf
}

/// Stores the first `rem` bytes of `buf` at `dst`.
///
/// # Safety
/// `dst` addresses `rem ≤ 32` writable bytes.
#[cold]
#[inline(never)]
unsafe fn store_tail(buf: &[u8; 32], dst: *mut u8, rem: usize) {
    // SAFETY: the caller's contract.
    unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), dst, rem.min(32)) };
}

/// `cvt_rne(f32(fma(bias_a, bias_b, f32(acc)))·mult)` of 8 accumulators with the vectors at
/// `at` (accumulator order): the AVX2 GEMM epilogue's operations before the zero point.
///
/// # Safety
/// AVX2 + FMA available; `at + 8 ≤` the vectors' length.
#[inline(always)]
unsafe fn requant8(k: &RowKernel<'_>, x: __m256i, at: usize) -> __m256i {
    // SAFETY: `at + 8` is within `mult`, `bias_a` and `bias_b` (the caller's contract).
    unsafe {
        let xf = _mm256_fmadd_ps(
            _mm256_loadu_ps(k.bias_a.as_ptr().add(at)),
            _mm256_loadu_ps(k.bias_b.as_ptr().add(at)),
            _mm256_cvtepi32_ps(x),
        );
        _mm256_cvtps_epi32(_mm256_mul_ps(xf, _mm256_loadu_ps(k.mult.as_ptr().add(at))))
    }
}

/// The 32 output bytes of the four requantized vectors `q` (accumulator order), in channel
/// order: `clamp(q + zp, lo, hi)`. The i16 packs saturate (|q| ≥ 2¹⁵ stays beyond
/// `[0, 255]` after adding zp ∈ 0..=255 with i16 saturation), then the u8 pack clamps to
/// `[0, 255]` and the byte min/max to `[lo, hi]` ⊂ `[0, 255]`, which equals the scalar
/// `clamp(q + zp, lo, hi)` of [`crate::gemm::requantize_one`].
///
/// # Safety
/// AVX2 available.
#[inline(always)]
unsafe fn pack_out(k: &RowKernel<'_>, q: [__m256i; 4]) -> __m256i {
    // SAFETY: AVX2 is available (the caller's contract).
    unsafe {
        let zp = _mm256_set1_epi16(k.zero_point as i16);
        let lo = _mm256_packs_epi32(q[0], q[1]);
        let hi = _mm256_packs_epi32(q[2], q[3]);
        let v = _mm256_packus_epi16(_mm256_adds_epi16(lo, zp), _mm256_adds_epi16(hi, zp));
        let v = _mm256_max_epu8(v, _mm256_set1_epi8(k.lo as u8 as i8));
        _mm256_min_epu8(v, _mm256_set1_epi8(k.hi as u8 as i8))
    }
}

/// One row (see [`RowKernel::row`]); `NP > 0` fixes the pair count so the tap loop
/// unrolls (3×3 and 5×5), `NP = 0` reads it from `k`.
///
/// # Safety
/// AVX2 + FMA available; the lengths and pointers of [`RowKernel::row`]'s contract.
#[target_feature(enable = "avx2,fma")]
unsafe fn row_avx2<const NP: usize, const SAT: bool>(
    k: &RowKernel<'_>,
    taps: &RowTaps,
    out: &mut [u8],
) {
    let o = k.o;
    let mut c0 = 0;
    while c0 + DW_BLOCK <= o {
        // SAFETY: forwarded contract; c0 + 32 ≤ O.
        unsafe { row_block::<NP, SAT, true>(k, taps, out, c0) };
        c0 += DW_BLOCK;
    }
    if c0 < o {
        // SAFETY: forwarded contract; c0 < O.
        unsafe { row_block::<NP, SAT, false>(k, taps, out, c0) };
    }
}

/// Channels `c0..min(c0 + 32, O)` of one row: border pixels through the table, interior
/// pixels from the bases. `FULL`: `c0 + 32 ≤ O`.
///
/// # Safety
/// AVX2 + FMA available; the lengths and pointers of [`RowKernel::row`]'s contract; c0 < O.
#[inline(always)]
unsafe fn row_block<const NP: usize, const SAT: bool, const FULL: bool>(
    k: &RowKernel<'_>,
    taps: &RowTaps,
    out: &mut [u8],
    c0: usize,
) {
    let np = if NP > 0 { NP } else { k.pairs };
    let nt = 2 * np;
    let ow = out.len() / k.o;
    let (a, b) = taps.interior;
    let tab = taps.tab.as_ptr();
    let bases = taps.bases.as_ptr();
    // SAFETY: border pixels x < a or x ≥ b have nt table entries at x·nt; interior pixels
    // read base + (x − a)·step, inside the run `fill` sliced; the caller's contract
    // covers the rest.
    unsafe {
        for x in 0..a {
            pixels::<NP, SAT, FULL, 1>(k, tab.add(x * nt), 0, 0, out, x, c0);
        }
        let step = taps.step;
        let mut x = a;
        // two pixels per step share the weight loads of many taps (5×5: measured faster);
        // with few taps (3×3) the extra accumulators cost more than they save
        if np > 5 {
            while x + 2 <= b {
                pixels::<NP, SAT, FULL, 2>(k, bases, (x - a) * step, step, out, x, c0);
                x += 2;
            }
        }
        while x < b {
            pixels::<NP, SAT, FULL, 1>(k, bases, (x - a) * step, step, out, x, c0);
            x += 1;
        }
        for x in b..ow {
            pixels::<NP, SAT, FULL, 1>(k, tab.add(x * nt), 0, 0, out, x, c0);
        }
    }
}

/// Loads channels `c0..` of tap `i` (pointer `ptrs[i] + off`), `rem` of them unless `FULL`.
///
/// # Safety
/// AVX2 available; `ptrs[i] + off` addresses O readable bytes, `c0 + min(rem, 32) ≤ O`.
#[inline(always)]
unsafe fn load_tap<const FULL: bool>(
    ptrs: *const *const u8,
    i: usize,
    off: usize,
    c0: usize,
    rem: usize,
) -> __m256i {
    // SAFETY: the caller's contract.
    unsafe {
        let p = (*ptrs.add(i)).add(off + c0);
        if FULL {
            _mm256_loadu_si256(p.cast())
        } else {
            load_x(p, rem)
        }
    }
}

/// The i16 pair sums of tap pair p, saturated as fbgemm's (`vpmaddubsw`): channels
/// 0–7 | 16–23 and 8–15 | 24–31 of the block whose pair weights start at `w`.
///
/// # Safety
/// [`load_tap`]'s contract for taps 2p and 2p + 1; `w + 64·(p + 1)` within the weights.
#[inline(always)]
unsafe fn pair_sat<const FULL: bool>(
    ptrs: *const *const u8,
    p: usize,
    off: usize,
    c0: usize,
    rem: usize,
    w: *const i8,
) -> (__m256i, __m256i) {
    // SAFETY: the caller's contract.
    unsafe {
        let a = load_tap::<FULL>(ptrs, 2 * p, off, c0, rem);
        let b = load_tap::<FULL>(ptrs, 2 * p + 1, off, c0, rem);
        let wl = _mm256_loadu_si256(w.add(p * 64).cast());
        let wh = _mm256_loadu_si256(w.add(p * 64 + 32).cast());
        (
            _mm256_maddubs_epi16(_mm256_unpacklo_epi8(a, b), wl),
            _mm256_maddubs_epi16(_mm256_unpackhi_epi8(a, b), wh),
        )
    }
}

/// Adds two pairs' i16 sums `s`, `t` per channel exactly into the four accumulators.
///
/// # Safety
/// AVX2 available.
#[inline(always)]
unsafe fn add_pairs(
    acc: &mut [__m256i; 4],
    (sl, sh): (__m256i, __m256i),
    (tl, th): (__m256i, __m256i),
) {
    // SAFETY: AVX2 is available (the caller's contract).
    unsafe {
        let ones = _mm256_set1_epi16(1);
        acc[0] = _mm256_add_epi32(
            acc[0],
            _mm256_madd_epi16(_mm256_unpacklo_epi16(sl, tl), ones),
        );
        acc[1] = _mm256_add_epi32(
            acc[1],
            _mm256_madd_epi16(_mm256_unpackhi_epi16(sl, tl), ones),
        );
        acc[2] = _mm256_add_epi32(
            acc[2],
            _mm256_madd_epi16(_mm256_unpacklo_epi16(sh, th), ones),
        );
        acc[3] = _mm256_add_epi32(
            acc[3],
            _mm256_madd_epi16(_mm256_unpackhi_epi16(sh, th), ones),
        );
    }
}

/// Output pixels `x..x + PX`, channels `c0..min(c0 + 32, O)`; tap i of pixel x + j is at
/// `ptrs[i] + off + j·step` (several pixels share the weight, pointer and requantization
/// loads).
///
/// # Safety
/// AVX2 + FMA available; every `ptrs[i] + off + j·step`, i < 2·pairs, j < PX, addresses O
/// readable bytes; `out[(x + j)·O + c0..]` holds `min(O − c0, 32)` bytes; c0 < O.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn pixels<const NP: usize, const SAT: bool, const FULL: bool, const PX: usize>(
    k: &RowKernel<'_>,
    ptrs: *const *const u8,
    off: usize,
    step: usize,
    out: &mut [u8],
    x: usize,
    c0: usize,
) {
    let o = k.o;
    let np = if NP > 0 { NP } else { k.pairs };
    let rem = if FULL { DW_BLOCK } else { o - c0 };
    let wblock = (c0 / DW_BLOCK) * np * 64;
    // SAFETY: every tap addresses O bytes, so min(rem, 32) bytes at offset c0 are
    // readable; the weight block `wblock + 64·np` is within the weights (asserted by
    // `row`) and the channel vectors cover c0 + 32 (padded to whole blocks); out[(x + j)·O
    // + c0..] holds min(rem, 32) bytes.
    unsafe {
        let zero = _mm256_setzero_si256();
        let init = k.init.as_ptr().add(c0);
        let init = [
            _mm256_loadu_si256(init.cast()),
            _mm256_loadu_si256(init.add(8).cast()),
            _mm256_loadu_si256(init.add(16).cast()),
            _mm256_loadu_si256(init.add(24).cast()),
        ];
        let mut acc = [init; PX];
        if SAT {
            let w = k.w8.as_ptr().add(wblock);
            let mut p = 0;
            while p + 1 < np {
                for (j, a) in acc.iter_mut().enumerate() {
                    let s = pair_sat::<FULL>(ptrs, p, off + j * step, c0, rem, w);
                    let t = pair_sat::<FULL>(ptrs, p + 1, off + j * step, c0, rem, w);
                    add_pairs(a, s, t);
                }
                p += 2;
            }
            if p < np {
                for (j, a) in acc.iter_mut().enumerate() {
                    let s = pair_sat::<FULL>(ptrs, p, off + j * step, c0, rem, w);
                    add_pairs(a, s, (zero, zero));
                }
            }
        } else {
            let w = k.w16.as_ptr().add(wblock);
            for p in 0..np {
                for (j, a) in acc.iter_mut().enumerate() {
                    let ta = load_tap::<FULL>(ptrs, 2 * p, off + j * step, c0, rem);
                    let tb = load_tap::<FULL>(ptrs, 2 * p + 1, off + j * step, c0, rem);
                    let (vl, vh) = (_mm256_unpacklo_epi8(ta, tb), _mm256_unpackhi_epi8(ta, tb));
                    let xs = [
                        _mm256_unpacklo_epi8(vl, zero),
                        _mm256_unpackhi_epi8(vl, zero),
                        _mm256_unpacklo_epi8(vh, zero),
                        _mm256_unpackhi_epi8(vh, zero),
                    ];
                    for (i, xi) in xs.into_iter().enumerate() {
                        let wi = _mm256_loadu_si256(w.add(p * 64 + 16 * i).cast());
                        a[i] = _mm256_add_epi32(a[i], _mm256_madd_epi16(xi, wi));
                    }
                }
            }
        }
        for (j, acc) in acc.iter().enumerate() {
            let q = [
                requant8(k, acc[0], c0),
                requant8(k, acc[1], c0 + 8),
                requant8(k, acc[2], c0 + 16),
                requant8(k, acc[3], c0 + 24),
            ];
            let v = pack_out(k, q);
            let dst = out.as_mut_ptr().add((x + j) * o + c0);
            if FULL {
                _mm256_storeu_si256(dst.cast(), v);
            } else if rem == 16 {
                _mm_storeu_si128(dst.cast(), _mm256_castsi256_si128(v));
            } else {
                let mut buf = [0u8; DW_BLOCK];
                _mm256_storeu_si256(buf.as_mut_ptr().cast(), v);
                store_tail(&buf, dst, rem);
            }
        }
    }
}
