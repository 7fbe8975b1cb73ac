//! Direct depthwise convolution (one input channel and one or two output channels per
//! group) on NDHWC data.
//!
//! For each output pixel an indirection list holds one channel vector per kernel tap (the
//! input pixel, or a buffer of input zero points for padding taps); then
//! `acc[o] = Σ_t x_t[o]·w[t, o]` on the raw values, and
//! `raw[o] = acc[o] − za·(Σ_t w[t, o] − zw[o]·T) − zw[o]·Σ_t x_t[o]`, which equals
//! `Σ_t (x_t − za)·(w − zw)` exactly. When PyTorch's fbgemm runs the convolution on its
//! depthwise fast path ([`ConvGeometry::fbgemm_depthwise_saturates`]) the products of tap
//! pairs `(2j, 2j+1)` are saturated to i16 before they are added, as `vpmaddubsw` does there.
//! The channel loops are compiled once portably and once per x86 level (AVX2, AVX-512BW);
//! the family's epilogue requantizes.

use crate::par;

#[cfg(target_arch = "x86_64")]
use super::depthwise_avx2::{RowKernel, RowTaps};
#[cfg(target_arch = "x86_64")]
use super::depthwise_avx512::RowKernel512;
use super::geometry::ConvGeometry;
use super::pack::{DepthwiseWeights, Form, PackedConvWeights};
use crate::gemm::{KernelKind, Microkernel, OutRow, Stage};

/// Multiply-accumulates above which output rows are spread over rayon's threads.
const PARALLEL_MACS: usize = 1 << 18;

/// `acc[o] = Σ_t x_t[o]·w[t·O + o]` (or the pair-saturated sum); the vector versions inline it.
#[inline(always)]
fn accumulate(taps: &[&[u8]], w: &[i16], saturate: bool, acc: &mut [i32]) {
    let c = acc.len();
    acc.fill(0);
    // u8·i8 products fit in i16 exactly (|255·−128| < 2¹⁵), so products are formed in i16
    // and, on the saturating path, each tap pair is added with i16 saturation.
    for (j, pair) in taps.chunks(2).enumerate() {
        let w0 = &w[2 * j * c..(2 * j + 1) * c];
        let x0 = &pair[0][..c];
        if let [_, x1] = pair {
            let w1 = &w[(2 * j + 1) * c..(2 * j + 2) * c];
            let x1 = &x1[..c];
            for o in 0..c {
                let p0 = i16::from(x0[o]).wrapping_mul(w0[o]);
                let p1 = i16::from(x1[o]).wrapping_mul(w1[o]);
                acc[o] += if saturate {
                    i32::from(p0.saturating_add(p1))
                } else {
                    i32::from(p0) + i32::from(p1)
                };
            }
        } else {
            for o in 0..c {
                acc[o] += i32::from(i16::from(x0[o]).wrapping_mul(w0[o]));
            }
        }
    }
}

/// `acc[o] = init[o] + Σ_t x_t[o]·w[t·O + o]` (or the pair-saturated sum), wrapping.
#[inline(always)]
fn accumulate_init(taps: &[&[u8]], w: &[i16], saturate: bool, init: &[i32], acc: &mut [i32]) {
    accumulate(taps, w, saturate, acc);
    for (a, &i) in acc.iter_mut().zip(init) {
        *a = a.wrapping_add(i);
    }
}

/// AVX2 channel loop: 16 channels per step, products formed in i16 (`vpmullw`, exact for
/// u8·i8), tap pairs added with i16 saturation (`vpaddsw`) on the saturating path or widened
/// to i32 first otherwise, accumulators kept in two ymm registers over all taps; the channel
/// tail (O mod 16) runs the portable loop. Every tap slice and `init` hold at least O =
/// `acc.len()` values and `w` holds `taps.len()·O`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn accumulate_avx2(
    taps: &[&[u8]],
    w: &[i16],
    saturate: bool,
    init: &[i32],
    acc: &mut [i32],
    from: usize,
) {
    use std::arch::x86_64::*;
    let c = acc.len();
    let nt = taps.len();
    assert!(w.len() >= nt * c && init.len() >= c && taps.iter().all(|t| t.len() >= c));
    let blocks = c.saturating_sub(from) / 16;
    let wp = w.as_ptr();
    for b in 0..blocks {
        let off = from + b * 16;
        // SAFETY: off + 16 ≤ c, and every tap slice has ≥ c bytes, `w` ≥ nt·c values and
        // `init`/`acc` ≥ c values (asserted above); all loads and stores are unaligned.
        unsafe {
            let load_x =
                |t: usize| _mm256_cvtepu8_epi16(_mm_loadu_si128(taps[t].as_ptr().add(off).cast()));
            let load_w = |t: usize| _mm256_loadu_si256(wp.add(t * c + off).cast());
            let mut lo = _mm256_loadu_si256(init.as_ptr().add(off).cast());
            let mut hi = _mm256_loadu_si256(init.as_ptr().add(off + 8).cast());
            let mut t = 0;
            while t + 1 < nt {
                let p0 = _mm256_mullo_epi16(load_x(t), load_w(t));
                let p1 = _mm256_mullo_epi16(load_x(t + 1), load_w(t + 1));
                if saturate {
                    let s = _mm256_adds_epi16(p0, p1);
                    lo = _mm256_add_epi32(lo, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s)));
                    hi =
                        _mm256_add_epi32(hi, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s, 1)));
                } else {
                    let s_lo = _mm256_add_epi32(
                        _mm256_cvtepi16_epi32(_mm256_castsi256_si128(p0)),
                        _mm256_cvtepi16_epi32(_mm256_castsi256_si128(p1)),
                    );
                    let s_hi = _mm256_add_epi32(
                        _mm256_cvtepi16_epi32(_mm256_extracti128_si256(p0, 1)),
                        _mm256_cvtepi16_epi32(_mm256_extracti128_si256(p1, 1)),
                    );
                    lo = _mm256_add_epi32(lo, s_lo);
                    hi = _mm256_add_epi32(hi, s_hi);
                }
                t += 2;
            }
            if t < nt {
                let p0 = _mm256_mullo_epi16(load_x(t), load_w(t));
                lo = _mm256_add_epi32(lo, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(p0)));
                hi = _mm256_add_epi32(hi, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(p0, 1)));
            }
            _mm256_storeu_si256(acc.as_mut_ptr().add(off).cast(), lo);
            _mm256_storeu_si256(acc.as_mut_ptr().add(off + 8).cast(), hi);
        }
    }
    let done = from + blocks * 16;
    if done < c {
        // the portable loop on the channel tail: reindex the weights to a `[tap][tail]` run
        let tail = c - done;
        let mut wt = [0i16; 16 * 25];
        let mut tt: [&[u8]; 25] = [&[]; 25];
        if nt <= 25 {
            for t in 0..nt {
                wt[t * tail..(t + 1) * tail].copy_from_slice(&w[t * c + done..t * c + c]);
                tt[t] = &taps[t][done..c];
            }
            accumulate_init(
                &tt[..nt],
                &wt[..nt * tail],
                saturate,
                &init[done..c],
                &mut acc[done..],
            );
        } else {
            let wt: Vec<i16> = (0..nt)
                .flat_map(|t| w[t * c + done..t * c + c].iter().copied())
                .collect();
            let tt: Vec<&[u8]> = taps.iter().map(|x| &x[done..c]).collect();
            accumulate_init(&tt, &wt, saturate, &init[done..c], &mut acc[done..]);
        }
    }
}

/// AVX-512BW channel loop: the AVX2 loop's arithmetic on 32 channels per step (two zmm
/// accumulators), then at most one 16-channel ymm step, then the AVX2 loop's scalar tail.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f,avx512bw")]
fn accumulate_avx512<const NT: usize>(
    taps: &[&[u8]],
    w: &[i16],
    saturate: bool,
    init: &[i32],
    acc: &mut [i32],
) {
    use std::arch::x86_64::*;
    let c = acc.len();
    // NT > 0: the tap count is a constant (3×3, 5×5), so the tap loop unrolls
    let nt = if NT > 0 { NT } else { taps.len() };
    assert!(taps.len() == nt);
    assert!(w.len() >= nt * c && init.len() >= c && taps.iter().all(|t| t.len() >= c));
    let blocks = c / 32;
    let wp = w.as_ptr();
    for b in 0..blocks {
        let off = b * 32;
        // SAFETY: off + 32 ≤ c, and every tap slice has ≥ c bytes, `w` ≥ nt·c values and
        // `init`/`acc` ≥ c values (asserted above); all loads and stores are unaligned.
        unsafe {
            let load_x = |t: usize| {
                _mm512_cvtepu8_epi16(_mm256_loadu_si256(taps[t].as_ptr().add(off).cast()))
            };
            let load_w = |t: usize| _mm512_loadu_si512(wp.add(t * c + off).cast());
            let lo16 = |v: __m512i| _mm512_cvtepi16_epi32(_mm512_castsi512_si256(v));
            let hi16 = |v: __m512i| _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(v, 1));
            let mut lo = _mm512_loadu_si512(init.as_ptr().add(off).cast());
            let mut hi = _mm512_loadu_si512(init.as_ptr().add(off + 16).cast());
            let mut t = 0;
            while t + 1 < nt {
                let p0 = _mm512_mullo_epi16(load_x(t), load_w(t));
                let p1 = _mm512_mullo_epi16(load_x(t + 1), load_w(t + 1));
                if saturate {
                    let s = _mm512_adds_epi16(p0, p1);
                    lo = _mm512_add_epi32(lo, lo16(s));
                    hi = _mm512_add_epi32(hi, hi16(s));
                } else {
                    lo = _mm512_add_epi32(lo, _mm512_add_epi32(lo16(p0), lo16(p1)));
                    hi = _mm512_add_epi32(hi, _mm512_add_epi32(hi16(p0), hi16(p1)));
                }
                t += 2;
            }
            if t < nt {
                let p0 = _mm512_mullo_epi16(load_x(t), load_w(t));
                lo = _mm512_add_epi32(lo, lo16(p0));
                hi = _mm512_add_epi32(hi, hi16(p0));
            }
            _mm512_storeu_si512(acc.as_mut_ptr().add(off).cast(), lo);
            _mm512_storeu_si512(acc.as_mut_ptr().add(off + 16).cast(), hi);
        }
    }
    let mut done = blocks * 32;
    if done + 16 <= c {
        // one 16-channel block on ymm, unrolled like the loop above
        let off = done;
        // SAFETY: off + 16 ≤ c; the bounds are those of the 32-channel blocks (asserted
        // above); all loads and stores are unaligned.
        unsafe {
            let load_x =
                |t: usize| _mm256_cvtepu8_epi16(_mm_loadu_si128(taps[t].as_ptr().add(off).cast()));
            let load_w = |t: usize| _mm256_loadu_si256(wp.add(t * c + off).cast());
            let lo16 = |v: __m256i| _mm256_cvtepi16_epi32(_mm256_castsi256_si128(v));
            let hi16 = |v: __m256i| _mm256_cvtepi16_epi32(_mm256_extracti128_si256(v, 1));
            let mut lo = _mm256_loadu_si256(init.as_ptr().add(off).cast());
            let mut hi = _mm256_loadu_si256(init.as_ptr().add(off + 8).cast());
            let mut t = 0;
            while t + 1 < nt {
                let p0 = _mm256_mullo_epi16(load_x(t), load_w(t));
                let p1 = _mm256_mullo_epi16(load_x(t + 1), load_w(t + 1));
                if saturate {
                    let s = _mm256_adds_epi16(p0, p1);
                    lo = _mm256_add_epi32(lo, lo16(s));
                    hi = _mm256_add_epi32(hi, hi16(s));
                } else {
                    lo = _mm256_add_epi32(lo, _mm256_add_epi32(lo16(p0), lo16(p1)));
                    hi = _mm256_add_epi32(hi, _mm256_add_epi32(hi16(p0), hi16(p1)));
                }
                t += 2;
            }
            if t < nt {
                let p0 = _mm256_mullo_epi16(load_x(t), load_w(t));
                lo = _mm256_add_epi32(lo, lo16(p0));
                hi = _mm256_add_epi32(hi, hi16(p0));
            }
            _mm256_storeu_si256(acc.as_mut_ptr().add(off).cast(), lo);
            _mm256_storeu_si256(acc.as_mut_ptr().add(off + 8).cast(), hi);
        }
        done += 16;
    }
    if done < c {
        accumulate_avx2(taps, w, saturate, init, acc, done)
    }
}

/// Runs the channel loop compiled for `kind`.
fn accumulate_for(
    kind: KernelKind,
    taps: &[&[u8]],
    w: &[i16],
    saturate: bool,
    init: &[i32],
    acc: &mut [i32],
) {
    match kind {
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx2 | KernelKind::Avx2Saturating | KernelKind::AvxVnni => {
            // SAFETY: the weights were packed for `kind`, which `kernel_for` (called by the
            // pack) only accepts when the CPU supports its level, which includes AVX2.
            unsafe { accumulate_avx2(taps, w, saturate, init, acc, 0) }
        }
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx512Vnni | KernelKind::Amx => {
            // SAFETY: as above; the Avx512Vnni level (which Amx includes) requires AVX2 and AVX-512 F and BW.
            unsafe {
                match taps.len() {
                    9 => accumulate_avx512::<9>(taps, w, saturate, init, acc),
                    25 => accumulate_avx512::<25>(taps, w, saturate, init, acc),
                    _ => accumulate_avx512::<0>(taps, w, saturate, init, acc),
                }
            }
        }
        _ => accumulate_init(taps, w, saturate, init, acc),
    }
}

/// The row kernels of x86 hosts (symmetric weights, requantized output).
#[cfg(target_arch = "x86_64")]
enum Rows<'a> {
    /// `depthwise_avx512` (weights packed for the `Avx512Vnni` family).
    Avx512(RowKernel512<'a>),
    /// `depthwise_avx2` (every other x86 family but the scalar one).
    Avx2(RowKernel<'a>),
}

#[cfg(target_arch = "x86_64")]
impl<'a> Rows<'a> {
    /// The row kernel for weights packed for `kind`, or `None` for the per-pixel kernel.
    fn new(
        kind: KernelKind,
        g: &ConvGeometry,
        w: &'a DepthwiseWeights,
        za: i32,
        stage: &Stage,
        saturate: bool,
    ) -> Option<Self> {
        match kind {
            KernelKind::Scalar => None,
            KernelKind::Avx512Vnni | KernelKind::Amx => {
                RowKernel512::new(g, w, za, stage, saturate).map(Rows::Avx512)
            }
            _ => RowKernel::new(g, w, za, stage, saturate).map(Rows::Avx2),
        }
    }

    fn row(&self, taps: &RowTaps, out: &mut [u8]) {
        match self {
            Rows::Avx512(k) => k.row(taps, out),
            Rows::Avx2(k) => k.row(taps, out),
        }
    }
}

/// Whether fbgemm saturates tap pairs for `g` run by weights packed for `kind`: on its
/// depthwise fast path on every x86 CPU, and in its im2col path on CPUs without VNNI (what
/// the saturating family reproduces).
fn saturates(g: &ConvGeometry, kind: KernelKind) -> bool {
    g.fbgemm_depthwise_saturates() || kind.saturates_pairs()
}

/// Which depthwise kernel [`super::conv_u8s8`] runs for `geometry` with `weights`, or `None`
/// when the weights are not run by a depthwise kernel: `"avx512-pairs"` / `"avx512-cols"` /
/// `"avx512-exact"` (the AVX-512 row kernel with fbgemm's pair saturation, or exact products
/// when the geometry or the weights rule saturation out: per input column on 3×3 windows
/// at stride 1 or 2, per pixel otherwise), `"avx2-rows"` (the AVX2 row kernel) or
/// `"per-pixel"`. Exposed so tests can prove which kernel ran (e.g. under `QSTACK_ISA`).
pub fn depthwise_kernel(
    geometry: &ConvGeometry,
    weights: &PackedConvWeights,
) -> Option<&'static str> {
    let Form::Depthwise(w) = &weights.form else {
        return None;
    };
    #[cfg(target_arch = "x86_64")]
    {
        let kind = weights.kind();
        let saturate = saturates(geometry, kind);
        match kind {
            KernelKind::Scalar => {}
            KernelKind::Avx512Vnni | KernelKind::Amx => {
                if let Some(product) = RowKernel512::product(geometry, w, saturate) {
                    return Some(RowKernel512::product_name(product));
                }
            }
            _ if RowKernel::applies(w) => return Some("avx2-rows"),
            _ => {}
        }
    }
    let _ = (geometry, w);
    Some("per-pixel")
}

/// Runs a depthwise convolution into the NDHWC `out` (validated by the caller).
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    kernel: &dyn Microkernel,
    g: &ConvGeometry,
    out_dims: [usize; 3],
    input: &[u8],
    za: i32,
    w: &DepthwiseWeights,
    stage: &Stage,
    out: &mut [u8],
) {
    let o = g.out_channels;
    // With a channel multiplier, output channel `oc` reads input channel `oc / mult`: widen
    // the input once so every tap is a contiguous vector of O values.
    let widened: Vec<u8>;
    let src: &[u8] = if w.mult == 1 {
        input
    } else {
        widened = input
            .iter()
            .flat_map(|&v| std::iter::repeat_n(v, w.mult))
            .collect();
        &widened
    };
    let [_, oh, ow] = out_dims;
    let zeros = vec![za as u8; o];
    let kind = kernel.kind();
    let saturate = saturates(g, kind);
    let symmetric = w.zero_points.iter().all(|&z| z == 0);
    let ntaps = g.taps();
    let row_len = ow * o;
    let rows = out.len() / row_len.max(1);
    let parallel = rayon::current_num_threads() > 1
        && out.len().saturating_mul(ntaps) >= PARALLEL_MACS
        && rows > 1;
    #[cfg(target_arch = "x86_64")]
    if let Some(rows_kernel) = Rows::new(kind, g, w, za, stage, saturate) {
        // whole rows: the tap pointers of a row, then the vector row kernel
        let zero_run = vec![za as u8; RowTaps::zeros_len(g, out_dims)];
        let task = |taps: &mut RowTaps, (r, dst): (usize, &mut [u8])| {
            taps.fill(g, out_dims, r, src, &zero_run);
            rows_kernel.row(taps, dst);
        };
        if parallel {
            par::for_each_chunk_init(out, row_len, RowTaps::new, task);
        } else {
            let mut taps = RowTaps::new();
            for item in out.chunks_mut(row_len).enumerate() {
                task(&mut taps, item);
            }
        }
        return;
    }
    // −za·(Σ_t w − zw·T), the accumulators' starting values
    let init: Vec<i32> = w
        .col_offsets
        .iter()
        .map(|&s| s.wrapping_mul(za).wrapping_neg())
        .collect();
    let task = |(r, dst): (usize, &mut [u8])| {
        let y = r % oh;
        let z = (r / oh) % out_dims[0];
        let n = r / (oh * out_dims[0]);
        let [id, ih, iw] = g.input;
        let kw = g.kernel[2];
        let (sx, px0, dx) = (g.stride[2], g.padding[2], g.dilation[2]);
        // the input line (pixel index of x = 0) of every (tz, ty), or None for padding
        let mut lines: Vec<Option<usize>> = Vec::with_capacity(g.kernel[0] * g.kernel[1]);
        for tz in 0..g.kernel[0] {
            let iz = g.input_coord(0, z, tz);
            for ty in 0..g.kernel[1] {
                lines.push(match (iz, g.input_coord(1, y, ty)) {
                    (Some(iz), Some(iy)) => Some(((n * id + iz) * ih + iy) * iw),
                    _ => None,
                });
            }
        }
        let mut taps: Vec<&[u8]> = Vec::with_capacity(ntaps);
        let mut acc = vec![0i32; o];
        for (x, px) in dst.chunks_exact_mut(o).enumerate() {
            taps.clear();
            match (x * sx).checked_sub(px0) {
                // interior along x: every tap column is inside the input
                Some(ix0) if ix0 + (kw - 1) * dx < iw => {
                    for line in &lines {
                        match line {
                            Some(b) => taps.extend((0..kw).map(|tx| {
                                let at = (b + ix0 + tx * dx) * o;
                                &src[at..at + o]
                            })),
                            None => taps.extend((0..kw).map(|_| &zeros[..])),
                        }
                    }
                }
                _ => {
                    for line in &lines {
                        for tx in 0..kw {
                            taps.push(match (line, g.input_coord(2, x, tx)) {
                                (Some(b), Some(ix)) => &src[(b + ix) * o..(b + ix + 1) * o],
                                _ => &zeros[..],
                            });
                        }
                    }
                }
            }
            accumulate_for(kind, &taps, &w.w, saturate, &init, &mut acc);
            if !symmetric {
                for (oc, a) in acc.iter_mut().enumerate() {
                    let rs: i32 = taps.iter().map(|t| i32::from(t[oc])).sum();
                    *a = a.wrapping_sub(rs.wrapping_mul(w.zero_points[oc]));
                }
            }
            kernel.finish(stage, 0, &acc, OutRow::U8(px));
        }
    };
    if parallel {
        par::for_each_chunk(out, row_len, task);
    } else {
        out.chunks_mut(row_len).enumerate().for_each(task);
    }
}
