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

use rayon::prelude::*;

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
/// `lines[ty]` is the pair line of kernel row `ty` at the block's first pixel and its
/// per-channel stride.
///
/// # Safety
/// AVX2 is available; every `lines[ty].0 + ci·stride + 2j·dw + 8` (ci < c, j < jn) is inside
/// one allocation; `wpair` holds `lines.len()·c·jn·COLS` values.
#[target_feature(enable = "avx2")]
unsafe fn block<const N: usize>(
    lines: &[(*const i32, usize)],
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
    for &(base, cs) in lines {
        for ci in 0..c {
            for j in 0..jn {
                // SAFETY: in bounds by the function's contract.
                let x = unsafe { _mm256_loadu_si256(base.add(ci * cs + 2 * j * dw).cast()) };
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

/// Requantizes the `o` accumulator columns of one block (window sum in column `o` when
/// `asym`) into `dst` pixels `0..n` (NHWC, `o` channels each).
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn requant_block(
    acc: &[[i32; 8]; COLS],
    o: usize,
    asym: bool,
    zw: &[i32],
    stage: &Stage,
    n: usize,
    dst: &mut [u8],
) {
    let Stage::Requant(rq) = stage else {
        unreachable!("the conv entry point prepares a requantize stage")
    };
    let mut q = [[0i32; 8]; 8];
    let zp = rq.zero_point;
    // SAFETY: every load and store is of an [i32; 8] (32 bytes), unaligned.
    unsafe {
        let rs = _mm256_loadu_si256(acc[o.min(COLS - 1)].as_ptr().cast());
        let lo = _mm256_set1_epi32(rq.lo - zp);
        let hi = _mm256_set1_epi32(rq.hi - zp);
        for col in 0..o {
            let mut a = _mm256_loadu_si256(acc[col].as_ptr().cast());
            if asym {
                a = _mm256_sub_epi32(a, _mm256_mullo_epi32(rs, _mm256_set1_epi32(zw[col])));
            }
            let xf = _mm256_fmadd_ps(
                _mm256_set1_ps(rq.bias_a[col]),
                _mm256_set1_ps(rq.bias_b[col]),
                _mm256_cvtepi32_ps(a),
            );
            let v = _mm256_cvtps_epi32(_mm256_mul_ps(xf, _mm256_set1_ps(rq.mult[col])));
            // clamp(v + zp, lo, hi) without overflowing v + zp
            let v = _mm256_add_epi32(
                _mm256_min_epi32(_mm256_max_epi32(v, lo), hi),
                _mm256_set1_epi32(zp),
            );
            _mm256_storeu_si256(q[col].as_mut_ptr().cast(), v);
        }
    }
    for (i, px) in dst.chunks_exact_mut(o).take(n).enumerate() {
        for (col, p) in px.iter_mut().enumerate() {
            *p = q[col][i] as u8;
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
    let task = |(pl, dst): (usize, &mut [u8])| {
        let src = &plan.input[pl * plane_in..(pl + 1) * plane_in];
        let mut lines = vec![0i32; ih * c * wp];
        let at = |xx: usize, ci: usize, iy: usize| -> i32 {
            match xx.checked_sub(pw).filter(|&x| x < iw) {
                Some(x) => i32::from(src[(iy * iw + x) * c + ci]),
                None => za,
            }
        };
        for iy in 0..ih {
            for ci in 0..c {
                let l = &mut lines[(iy * c + ci) * wp..(iy * c + ci + 1) * wp];
                for (xx, v) in l.iter_mut().enumerate() {
                    *v = pair(at(xx, ci, iy), at(xx + dw, ci, iy));
                }
            }
        }
        let mut rows: Vec<(*const i32, usize)> = Vec::with_capacity(kh);
        let mut acc = [[0i32; 8]; COLS];
        for (y, dst_row) in dst.chunks_exact_mut(ow * o).enumerate() {
            for p0 in (0..ow).step_by(8) {
                rows.clear();
                for ty in 0..kh {
                    rows.push(
                        match (y * sh + ty * dh).checked_sub(ph).filter(|&i| i < ih) {
                            // SAFETY: iy < ih and p0 < owp ≤ wp, inside `lines`.
                            Some(iy) => (unsafe { lines.as_ptr().add(iy * c * wp + p0) }, wp),
                            // SAFETY: p0 < wp, inside `za_line` (channel stride 0).
                            None => (unsafe { za_line.as_ptr().add(p0) }, 0),
                        },
                    );
                }
                macro_rules! go {
                    ($($n:literal)*) => {
                        match cols {
                            // SAFETY: AVX2 (the caller's contract); each load reads
                            // p0 + 2j·dw + 8 ≤ owp + (kw − 1)·dw + 8 = wp values of a
                            // line; `wpair` has kh·c·jn rows.
                            $($n => unsafe {
                                block::<$n>(&rows, c, jn, dw, &wpair, &init, &mut acc)
                            },)*
                            _ => unreachable!("O ≤ 8"),
                        }
                    };
                }
                go!(1 2 3 4 5 6 7 8 9);
                let n = (ow - p0).min(8);
                // SAFETY: AVX2 and FMA (the caller's contract).
                unsafe {
                    requant_block(
                        &acc,
                        o,
                        !symmetric,
                        zw,
                        &plan.groups[0].stage,
                        n,
                        &mut dst_row[p0 * o..],
                    )
                };
            }
        }
        let _ = oh;
    };
    let plane_out = oh * ow * o;
    if parallel {
        out.par_chunks_mut(plane_out).enumerate().for_each(task);
    } else {
        out.chunks_mut(plane_out).enumerate().for_each(task);
    }
}
