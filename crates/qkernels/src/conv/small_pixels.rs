//! The x86 small-C kernel vectorized over output pixels (AVX2 + FMA): 8 horizontally
//! adjacent output pixels per ymm register, one register per output channel, for 2-d
//! convolutions with width stride 1 (LeNet's first layer: C = 1..4, O ≤ 8, 5×5).
//!
//! Per image plane every input line is turned once into "pair lines":
//! `P[c][xx] = L[xx] | L[xx + dw] << 16` (i16 halves), where `L` is the input line of channel
//! `c` padded left and right with the input zero point. Output pixel `p`'s taps `2j` and
//! `2j + 1` of kernel row `ty` are then the i32 at `P[c][p + 2j·dw]`, so 8 consecutive pixels
//! are one unaligned load, and one `vpmaddwd` against the broadcast weight pair
//! `(W[o, ty, 2j, c], W[o, ty, 2j + 1, c])` adds both exact products (u8·i8 fits i16) to 8
//! i32 accumulators. An odd kernel width pairs its last tap with a zero weight. Lines above
//! or below the input read a line of zero points. Asymmetric weights add one more
//! accumulator with weights 1 (the window sum). The requantization is the fbgemm formula of
//! [`crate::gemm::requantize_one`] on 8 lanes (`vfmadd`, `vcvtps2dq`, clamp), and the lanes
//! are scattered to the NHWC output.

use std::arch::x86_64::*;

use crate::par;

use super::geometry::ConvGeometry;
use super::implicit::Plan;
use crate::gemm::Stage;

/// Accumulator columns: up to 8 outputs plus the window sum.
const COLS: usize = 9;

/// Whether the pixel kernel handles `g` (the caller checked AVX2 and FMA): 2-d (or 1-d)
/// with width stride 1.
pub(crate) fn applies(g: &ConvGeometry) -> bool {
    g.kernel[0] == 1 && g.stride[0] == 1 && g.padding[0] == 0 && g.stride[2] == 1
}

fn pair(lo: i32, hi: i32) -> i32 {
    ((lo as u16 as u32) | ((hi as u16 as u32) << 16)) as i32
}

/// One block of 8 pixels: `acc[col] = init[col] + Σ_rows madd(P, wpair[row][col])`.
/// `lines[ty]` is the pair line of kernel row `ty` (at pixel 0) and its per-channel stride;
/// the block starts at pixel `p0`. With `SPLIT`, lanes 4..8 instead read the 4 pixels from
/// `hi_p0` of the lines `hi_lines` (the next output row's), so two rows' short tails share
/// one block.
///
/// # Safety
/// AVX2 is available; every `lines[ty].0 + p0 + ci·stride + 2j·dw + 8` (ci < c, j < jn) is
/// inside one allocation, and with `SPLIT` every `lines[ty].0 + p0 + … + 4` and
/// `hi_lines[ty].0 + hi_p0 + ci·stride + 2j·dw + 4` (`hi_lines.len() == lines.len()`);
/// `wpair` holds `lines.len()·c·jn·COLS` values.
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn block<const N: usize, const SPLIT: bool>(
    lines: &[(*const i32, usize)],
    p0: usize,
    hi_lines: &[(*const i32, usize)],
    hi_p0: usize,
    c: usize,
    jn: usize,
    dw: usize,
    wpair: &[i32],
    init: &[i32; COLS],
    out: &mut [[i32; 8]; COLS],
) {
    let mut acc = [_mm256_setzero_si256(); N];
    for (a, &i) in acc.iter_mut().zip(init) {
        *a = _mm256_set1_epi32(i);
    }
    let mut wr = wpair.as_ptr();
    for (t, &(base, cs)) in lines.iter().enumerate() {
        let (hbase, hcs) = if SPLIT { hi_lines[t] } else { (base, cs) };
        for ci in 0..c {
            for j in 0..jn {
                let at = ci * cs + 2 * j * dw;
                // SAFETY: in bounds by the function's contract.
                let x = unsafe {
                    if SPLIT {
                        let lo = _mm_loadu_si128(base.add(p0 + at).cast());
                        let hi = _mm_loadu_si128(hbase.add(hi_p0 + ci * hcs + 2 * j * dw).cast());
                        _mm256_set_m128i(hi, lo)
                    } else {
                        _mm256_loadu_si256(base.add(p0 + at).cast())
                    }
                };
                for (col, a) in acc.iter_mut().enumerate() {
                    // SAFETY: `wr` walks the rows of `wpair` in loop order (contract).
                    let wv = _mm256_set1_epi32(unsafe { *wr.add(col) });
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(x, wv));
                }
                // SAFETY: stays within (or one past the end of) `wpair`.
                wr = unsafe { wr.add(COLS) };
            }
        }
    }
    for (o, a) in out.iter_mut().zip(&acc) {
        // SAFETY: `o` is 8 i32; unaligned store.
        unsafe { _mm256_storeu_si256(o.as_mut_ptr().cast(), *a) };
    }
}

/// The requantization constants of up to 8 output channels, broadcast once per call.
struct ColVecs {
    bias_a: [__m256; 8],
    bias_b: [__m256; 8],
    mult: [__m256; 8],
    zw: [__m256i; 8],
    lo: __m256i,
    hi: __m256i,
    zp: __m256i,
}

impl ColVecs {
    /// Broadcasts the stage's vectors of output channels `0..o` (`o ≤ 8`).
    #[target_feature(enable = "avx2")]
    #[allow(clippy::needless_range_loop)] // col indexes five arrays
    fn new(stage: &Stage, o: usize, zw: &[i32]) -> Self {
        let Stage::Requant(rq) = stage else {
            unreachable!("the conv entry point prepares a requantize stage")
        };
        let mut v = ColVecs {
            bias_a: [_mm256_setzero_ps(); 8],
            bias_b: [_mm256_setzero_ps(); 8],
            mult: [_mm256_setzero_ps(); 8],
            zw: [_mm256_setzero_si256(); 8],
            lo: _mm256_set1_epi32(rq.lo - rq.zero_point),
            hi: _mm256_set1_epi32(rq.hi - rq.zero_point),
            zp: _mm256_set1_epi32(rq.zero_point),
        };
        for col in 0..o {
            v.bias_a[col] = _mm256_set1_ps(rq.bias_a[col]);
            v.bias_b[col] = _mm256_set1_ps(rq.bias_b[col]);
            v.mult[col] = _mm256_set1_ps(rq.mult[col]);
            v.zw[col] = _mm256_set1_epi32(zw[col]);
        }
        v
    }
}

/// Requantizes the `O` accumulator columns of one block (window sum in column `O` when
/// `asym`) to 8 bytes per pixel (`O` channels, then don't-care bytes), little-endian.
///
/// The up to 8 clamped columns are packed to bytes and transposed in registers.
#[target_feature(enable = "avx2,fma")]
fn requant_pixels<const O: usize>(acc: &[[i32; 8]; COLS], asym: bool, cv: &ColVecs) -> [i64; 8] {
    // SAFETY: every load is of an [i32; 8] of 32 bytes, unaligned.
    let (first, second) = unsafe {
        let rs = _mm256_loadu_si256(acc[O.min(COLS - 1)].as_ptr().cast());
        let mut v = [_mm256_setzero_si256(); 8];
        for col in 0..O {
            let mut a = _mm256_loadu_si256(acc[col].as_ptr().cast());
            if asym {
                a = _mm256_sub_epi32(a, _mm256_mullo_epi32(rs, cv.zw[col]));
            }
            let xf = _mm256_fmadd_ps(cv.bias_a[col], cv.bias_b[col], _mm256_cvtepi32_ps(a));
            let q = _mm256_cvtps_epi32(_mm256_mul_ps(xf, cv.mult[col]));
            // clamp(q + zp, lo, hi) without overflowing q + zp; the result is in 0..=255
            v[col] = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(q, cv.lo), cv.hi), cv.zp);
        }
        // per 128-bit lane L (pixels 4L..4L+4): bytes c·4 + p of columns 0..4 and 4..8
        let c03 = _mm256_packus_epi16(
            _mm256_packus_epi32(v[0], v[1]),
            _mm256_packus_epi32(v[2], v[3]),
        );
        let c47 = _mm256_packus_epi16(
            _mm256_packus_epi32(v[4], v[5]),
            _mm256_packus_epi32(v[6], v[7]),
        );
        // 4×4 byte transpose per lane: byte p·4 + c ← c·4 + p
        let t = _mm256_setr_epi8(
            0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, //
            0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
        );
        let (a, b) = (_mm256_shuffle_epi8(c03, t), _mm256_shuffle_epi8(c47, t));
        // lane 0: pixels 0, 1 | lane 1: pixels 4, 5 (8 bytes each), and 2, 3 | 6, 7
        let p01 = _mm256_unpacklo_epi32(a, b);
        let p23 = _mm256_unpackhi_epi32(a, b);
        (
            _mm256_permute2x128_si256::<0x20>(p01, p23),
            _mm256_permute2x128_si256::<0x31>(p01, p23),
        )
    };
    [
        _mm256_extract_epi64::<0>(first),
        _mm256_extract_epi64::<1>(first),
        _mm256_extract_epi64::<2>(first),
        _mm256_extract_epi64::<3>(first),
        _mm256_extract_epi64::<0>(second),
        _mm256_extract_epi64::<1>(second),
        _mm256_extract_epi64::<2>(second),
        _mm256_extract_epi64::<3>(second),
    ]
}

/// Stores pixels `px[..n]` (from [`requant_pixels`]) to `dst` at `i·O`: one 8-byte store
/// per pixel (its bytes `O..8` are overwritten by the next pixel's store), except where
/// fewer than 8 bytes remain in `dst`.
#[inline(always)]
fn store_pixels<const O: usize>(px: &[i64], n: usize, dst: &mut [u8]) {
    if n == 8 && px.len() == 8 && 7 * O + 8 <= dst.len() {
        let d = &mut dst[..7 * O + 8];
        for (i, &p) in px.iter().enumerate() {
            d[i * O..i * O + 8].copy_from_slice(&p.to_le_bytes());
        }
        return;
    }
    for (i, &p) in px.iter().enumerate().take(n) {
        let at = i * O;
        let src = p.to_le_bytes();
        match dst.get_mut(at..at + 8) {
            Some(d) => d.copy_from_slice(&src),
            None => dst[at..at + O].copy_from_slice(&src[..O]),
        }
    }
}

/// [`requant_pixels`] then [`store_pixels`] of pixels `0..n` to `dst`.
#[target_feature(enable = "avx2,fma")]
fn requant_block<const O: usize>(
    acc: &[[i32; 8]; COLS],
    asym: bool,
    cv: &ColVecs,
    n: usize,
    dst: &mut [u8],
) {
    store_pixels::<O>(&requant_pixels::<O>(acc, asym, cv), n, dst);
}

/// [`requant_pixels`] of a split block: pixels `0..n` to `lo`, pixels `4..4 + n` to `hi`.
#[target_feature(enable = "avx2,fma")]
fn requant_split<const O: usize>(
    acc: &[[i32; 8]; COLS],
    asym: bool,
    cv: &ColVecs,
    n: usize,
    lo: &mut [u8],
    hi: &mut [u8],
) {
    let px = requant_pixels::<O>(acc, asym, cv);
    store_pixels::<O>(&px[..4], n, lo);
    store_pixels::<O>(&px[4..], n, hi);
}

/// [`requant_block`] for `o` (1..=8) output channels.
#[target_feature(enable = "avx2,fma")]
fn requant_block_dyn(
    o: usize,
    acc: &[[i32; 8]; COLS],
    asym: bool,
    cv: &ColVecs,
    n: usize,
    dst: &mut [u8],
) {
    macro_rules! go {
        ($($o:literal)*) => {
            match o {
                $($o => requant_block::<$o>(acc, asym, cv, n, dst),)*
                _ => unreachable!("O ≤ 8"),
            }
        };
    }
    go!(1 2 3 4 5 6 7 8)
}

/// [`requant_split`] for `o` (1..=8) output channels.
#[target_feature(enable = "avx2,fma")]
fn requant_split_dyn(
    o: usize,
    acc: &[[i32; 8]; COLS],
    asym: bool,
    cv: &ColVecs,
    n: usize,
    lo: &mut [u8],
    hi: &mut [u8],
) {
    macro_rules! go {
        ($($o:literal)*) => {
            match o {
                $($o => requant_split::<$o>(acc, asym, cv, n, lo, hi),)*
                _ => unreachable!("O ≤ 8"),
            }
        };
    }
    go!(1 2 3 4 5 6 7 8)
}

/// Builds the pair lines of one image plane `src` (`[ih, iw, c]`, NHWC) into `lines`
/// (`ih·c` lines of `wp` values): each input line of one channel is padded with `pw` zero
/// points on the left and zero points up to `wp + dw` bytes, then
/// `P[xx] = L[xx] | L[xx + dw] << 16`. Compiled for AVX2 so the pairing vectorizes.
#[target_feature(enable = "avx2")]
fn pair_lines(
    src: &[u8],
    [ih, iw, c]: [usize; 3],
    pw: usize,
    dw: usize,
    za: u8,
    wp: usize,
    lines: &mut [i32],
) {
    let mut padded = vec![za; wp + dw];
    let inside = pw.min(wp + dw)..(pw + iw).min(wp + dw);
    for iy in 0..ih {
        let row = &src[iy * iw * c..(iy + 1) * iw * c];
        for ci in 0..c {
            let dst = &mut padded[inside.clone()];
            if c == 1 {
                dst.copy_from_slice(&row[..dst.len()]);
            } else {
                for (d, s) in dst.iter_mut().zip(row[ci..].iter().step_by(c)) {
                    *d = *s;
                }
            }
            let l = &mut lines[(iy * c + ci) * wp..(iy * c + ci + 1) * wp];
            for ((v, &a), &b) in l.iter_mut().zip(&padded).zip(&padded[dw..]) {
                *v = i32::from(a) | (i32::from(b) << 16);
            }
        }
    }
}

/// Runs `plan` (one group, O ≤ 8, [`applies`]) with `[k][8]` weights `w`; `corr` is the
/// activation zero point's correction per output channel, `zw` the weight zero points.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn run(
    plan: &Plan<'_>,
    w: &[i32],
    corr: &[i32],
    zw: &[i32],
    symmetric: bool,
    parallel: bool,
    out: &mut [u8],
) {
    let g = plan.g;
    let (o, c) = (g.out_channels, g.in_channels);
    let [_, oh, ow] = plan.out_dims;
    let [_, ih, iw] = g.input;
    let [_, kh, kw] = g.kernel;
    let (dh, dw) = (g.dilation[1], g.dilation[2]);
    let (sh, ph, pw) = (g.stride[1], g.padding[1], g.padding[2]);
    let za = plan.za;
    let jn = kw.div_ceil(2);
    let cols = o + usize::from(!symmetric);
    let mut wpair = vec![0i32; kh * c * jn * COLS];
    for ty in 0..kh {
        for ci in 0..c {
            for j in 0..jn {
                let r = (ty * c + ci) * jn + j;
                for col in 0..cols {
                    let get = |tx: usize| match (tx < kw, col == o) {
                        (false, _) => 0,
                        (true, true) => 1,
                        (true, false) => w[((ty * kw + tx) * c + ci) * 8 + col],
                    };
                    wpair[r * COLS + col] = pair(get(2 * j), get(2 * j + 1));
                }
            }
        }
    }
    let mut init = [0i32; COLS];
    init[..o].copy_from_slice(&corr[..o]);
    let owp = ow.div_ceil(8) * 8;
    // pair-line length: the last block reads up to owp − 1 + (kw − 1)·dw
    let wp = owp + (kw - 1) * dw + 8;
    let plane_in = ih * iw * c;
    let za_line = vec![pair(za, za); wp];
    // SAFETY: AVX2 (the caller's contract); `zw` has `o` entries.
    let cv = unsafe { ColVecs::new(&plan.groups[0].stage, o, zw) };
    let task = |(pl, dst): (usize, &mut [u8])| {
        let src = &plan.input[pl * plane_in..(pl + 1) * plane_in];
        let mut lines = vec![0i32; ih * c * wp];
        // SAFETY: AVX2 (the caller's contract).
        unsafe { pair_lines(src, [ih, iw, c], pw, dw, za as u8, wp, &mut lines) };
        let row_ptrs = |y: usize, rows: &mut Vec<(*const i32, usize)>| {
            rows.clear();
            for ty in 0..kh {
                rows.push(
                    match (y * sh + ty * dh).checked_sub(ph).filter(|&i| i < ih) {
                        Some(iy) => (lines[iy * c * wp..].as_ptr(), wp),
                        // channel stride 0: every channel reads the zero-point line
                        None => (za_line.as_ptr(), 0),
                    },
                );
            }
        };
        let mut rows: Vec<(*const i32, usize)> = Vec::with_capacity(kh);
        let mut rows_b: Vec<(*const i32, usize)> = Vec::with_capacity(kh);
        let mut acc = [[0i32; 8]; COLS];
        macro_rules! go {
            ($split:literal, $lines:expr, $p0:expr, $hi:expr, $hp0:expr; $($n:literal)*) => {
                match cols {
                    // SAFETY: AVX2 (the caller's contract); each row pointer is the start
                    // of line iy of channel 0 in `lines` (channel stride wp, c lines) or of
                    // `za_line`, and each load reads at most p0 + 2j·dw + 8 ≤ owp +
                    // (kw − 1)·dw + 8 = wp values of a line (split halves start at
                    // p0 ≤ owp − 8 and read 4); `wpair` has kh·c·jn rows.
                    $($n => unsafe {
                        block::<$n, $split>(
                            $lines, $p0, $hi, $hp0, c, jn, dw, &wpair, &init, &mut acc,
                        )
                    },)*
                    _ => unreachable!("O ≤ 8"),
                }
            };
        }
        // a tail of at most 4 pixels per row: two rows' tails share one split block
        let tail = ow % 8;
        let merge = (1..=4).contains(&tail);
        let full = ow - tail;
        let row_len = ow * o;
        let mut rest: &mut [u8] = dst;
        let mut y = 0;
        while !rest.is_empty() {
            let pair = merge && rest.len() >= 2 * row_len;
            let (cur, next) =
                std::mem::take(&mut rest).split_at_mut(if pair { 2 * row_len } else { row_len });
            rest = next;
            let (row_a, row_b) = cur.split_at_mut(row_len);
            row_ptrs(y, &mut rows);
            let end = if pair { full } else { ow };
            for p0 in (0..end).step_by(8) {
                go!(false, &rows, p0, &rows, 0; 1 2 3 4 5 6 7 8 9);
                let n = (ow - p0).min(8);
                // SAFETY: AVX2 and FMA (the caller's contract).
                unsafe { requant_block_dyn(o, &acc, !symmetric, &cv, n, &mut row_a[p0 * o..]) };
            }
            if pair {
                row_ptrs(y + 1, &mut rows_b);
                for p0 in (0..full).step_by(8) {
                    go!(false, &rows_b, p0, &rows_b, 0; 1 2 3 4 5 6 7 8 9);
                    // SAFETY: AVX2 and FMA (the caller's contract).
                    unsafe { requant_block_dyn(o, &acc, !symmetric, &cv, 8, &mut row_b[p0 * o..]) };
                }
                go!(true, &rows, full, &rows_b, full; 1 2 3 4 5 6 7 8 9);
                let (lo, hi) = (&mut row_a[full * o..], &mut row_b[full * o..]);
                // SAFETY: AVX2 and FMA (the caller's contract).
                unsafe { requant_split_dyn(o, &acc, !symmetric, &cv, tail, lo, hi) };
            }
            y += if pair { 2 } else { 1 };
        }
        let _ = oh;
    };
    let plane_out = oh * ow * o;
    if parallel {
        par::for_each_chunk(out, plane_out, task);
    } else {
        out.chunks_mut(plane_out).enumerate().for_each(task);
    }
}
