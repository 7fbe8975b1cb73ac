//! Indirect K×K convolution for the exact AVX2 family: the tile reads its activation rows
//! straight from a u16 copy of the input through per-row pointers, instead of gathering
//! and packing every row of A (LeNet's second layer: C = 6, 5×5, O = 16, K = 150).
//!
//! With one group and width dilation 1, the `kw·C` reduction values of one kernel row
//! `(tz, ty)` of output pixel `m` are one contiguous run of the NDHWC input. The input is
//! widened to u16 once per call (the exact family's packed-A element); each tile of up to 6
//! output pixels gets a table of `kd·kh` run pointers per pixel (into the widened input for
//! windows inside it; into a gathered, zero-point-padded scratch row for border pixels) and
//! walks K run by run: the weight panels (`[K/2][8][2]`, the family's packing) are read
//! continuously, each k pair of A is one broadcast dword, and `vpmaddwd` adds both exact
//! products, as in the GEMM tile. The zero-point correction and requantization are the
//! GEMM's ([`crate::gemm::Microkernel::finish_fixed`]), so results equal the oracle's.
//!
//! Applies when the run length `kw·C` is even (k pairs never straddle two runs) and the
//! weights of one 16-column tile fit easily in L1 (`K ≤ 1024`: 16 KiB) (the whole K is reduced in one pass).

use std::arch::x86_64::*;

use crate::par;

use super::implicit::Plan;
use crate::gemm::{OutRow, RowFix, Stage};

/// Output pixels per tile (the exact AVX2 GEMM tile's rows).
const MR: usize = 6;
/// Panels of 8 output channels per tile.
const NP: usize = 2;
/// Multiply-accumulates above which output pixels are spread over rayon's threads.
const PARALLEL_MACS: usize = 1 << 19;
/// Tiles per task when spread over threads.
const TASK_TILES: usize = 16;

/// Whether the indirect kernel runs `plan` ([`super::indirect_applies`]).
pub(crate) fn applies(plan: &Plan<'_>) -> bool {
    plan.groups.len() == 1 && super::indirect_applies(plan.g, plan.kernel.kind())
}

/// One `R × 8P` tile over all of K: `acc[r·16 + c] = Σ_t Σ_j A_r[t][j]·B[t·run + j, c]`.
///
/// # Safety
/// AVX2 is available; `ptrs` holds `runs` groups of [`MR`] pointers (`ptrs[t·MR + r]`), each
/// of the first `R` valid for reading `run` u16; `b` points at `P` panels (stride
/// `panel_bytes`) of at least `8·runs·run` bytes; `run` is even; `acc` holds `R·16` i32.
#[target_feature(enable = "avx2")]
#[allow(clippy::needless_range_loop)]
unsafe fn tile<const R: usize, const P: usize>(
    ptrs: &[*const u16],
    runs: usize,
    run: usize,
    b: *const i8,
    panel_bytes: usize,
    acc: &mut [i32; MR * 8 * NP],
) {
    let mut c = [[_mm256_setzero_si256(); P]; R];
    let mut bv = [_mm256_setzero_si256(); P];
    let mut bk = b;
    // SAFETY: every offset below stays inside the extents of the function's contract.
    unsafe {
        for t in 0..runs {
            let rows = &ptrs[t * MR..t * MR + R];
            for g in 0..run / 2 {
                for p in 0..P {
                    let raw = _mm_loadu_si128(bk.add(p * panel_bytes).cast());
                    bv[p] = _mm256_cvtepi8_epi16(raw);
                }
                bk = bk.add(16);
                for r in 0..R {
                    let av = _mm256_set1_epi32(rows[r].add(2 * g).cast::<i32>().read_unaligned());
                    for p in 0..P {
                        c[r][p] = _mm256_add_epi32(c[r][p], _mm256_madd_epi16(av, bv[p]));
                    }
                }
            }
        }
        for r in 0..R {
            for p in 0..P {
                _mm256_storeu_si256(acc.as_mut_ptr().add(r * 8 * NP + 8 * p).cast(), c[r][p]);
            }
        }
    }
}

/// The prepared requantization of a call (the GEMM stage's vectors, borrowed); shared with
/// the AVX-512 row-run kernel.
pub(crate) struct Requant<'a> {
    pub mult: &'a [f32],
    pub bias_a: &'a [f32],
    pub bias_b: &'a [f32],
    pub zero_point: i32,
    pub lo: i32,
    pub hi: i32,
}

impl<'a> Requant<'a> {
    /// The vectors of a requantizing `stage` (`None` for the other stages).
    pub(crate) fn of(stage: &'a Stage) -> Option<Self> {
        match stage {
            Stage::Requant(rq) => Some(Requant {
                mult: &rq.mult,
                bias_a: &rq.bias_a,
                bias_b: &rq.bias_b,
                zero_point: rq.zero_point,
                lo: rq.lo,
                hi: rq.hi,
            }),
            _ => None,
        }
    }
}

/// Requantizes a tile's `rows × panels·8` accumulators (output channels `n0..`) into the
/// NDHWC `dst` (pixel `r` at `r·o`) with the GEMM epilogue's formula and operation order
/// (`crate::gemm` x86 `requant_row`: `+ corr`, `fma(bias_a, bias_b, x)`, `× mult`,
/// `cvtps2dq`, clamp to −256..=511, `+ zp`, clamp to `lo..=hi`), the constants of each
/// panel loaded once for all rows. Symmetric weights only (no row-sum term).
///
/// # Safety
/// AVX2 and FMA are available.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn requant_tile(
    acc: &[i32; MR * 8 * NP],
    rows: usize,
    panels: usize,
    rq: &Requant<'_>,
    corr: &[i32],
    n0: usize,
    o: usize,
    dst: &mut [u8],
) {
    let zp = _mm256_set1_epi32(rq.zero_point);
    let lo = _mm256_set1_epi32(rq.lo);
    let hi = _mm256_set1_epi32(rq.hi);
    let floor = _mm256_set1_epi32(-256);
    let ceil = _mm256_set1_epi32(511);
    for p in 0..panels {
        let c = n0 + 8 * p;
        let (cv, ba, bb, mult) = (
            &corr[c..c + 8],
            &rq.bias_a[c..c + 8],
            &rq.bias_b[c..c + 8],
            &rq.mult[c..c + 8],
        );
        // SAFETY: each slice above holds 8 values (32 bytes); unaligned loads.
        let (cv, ba, bb, mult) = unsafe {
            (
                _mm256_loadu_si256(cv.as_ptr().cast()),
                _mm256_loadu_ps(ba.as_ptr()),
                _mm256_loadu_ps(bb.as_ptr()),
                _mm256_loadu_ps(mult.as_ptr()),
            )
        };
        for r in 0..rows {
            let a = &acc[r * 8 * NP + 8 * p..r * 8 * NP + 8 * p + 8];
            let d = &mut dst[r * o + c..r * o + c + 8];
            // SAFETY: `a` is 8 i32 (32 bytes) and `d` 8 bytes; unaligned load and store.
            unsafe {
                let x = _mm256_add_epi32(_mm256_loadu_si256(a.as_ptr().cast()), cv);
                let xf = _mm256_fmadd_ps(ba, bb, _mm256_cvtepi32_ps(x));
                let q = _mm256_cvtps_epi32(_mm256_mul_ps(xf, mult));
                let q = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(q, floor), ceil), zp);
                let q = _mm256_min_epi32(_mm256_max_epi32(q, lo), hi);
                let w16 =
                    _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256::<1>(q));
                _mm_storel_epi64(d.as_mut_ptr().cast(), _mm_packus_epi16(w16, w16));
            }
        }
    }
}

/// Dispatches [`tile`] on `(rows, panels)`.
///
/// # Safety
/// As [`tile`], with `rows ≤ MR` and `panels ≤ NP`.
#[allow(clippy::too_many_arguments)]
unsafe fn tile_dyn(
    rows: usize,
    panels: usize,
    ptrs: &[*const u16],
    runs: usize,
    run: usize,
    b: *const i8,
    panel_bytes: usize,
    acc: &mut [i32; MR * 8 * NP],
) {
    macro_rules! go {
        ($(($r:literal, $p:literal))*) => {
            match (rows, panels) {
                // SAFETY: the caller's contract.
                $(($r, $p) => unsafe { tile::<$r, $p>(ptrs, runs, run, b, panel_bytes, acc) },)*
                _ => unreachable!("tile {rows}×{panels}"),
            }
        };
    }
    go!((1, 1)(2, 1)(3, 1)(4, 1)(5, 1)(6, 1)(1, 2)(2, 2)(3, 2)(4, 2)(5, 2)(6, 2));
}

/// Runs `plan` ([`applies`] holds, so the kernel object proves AVX2) into the NDHWC `out`.
pub(crate) fn run(plan: &Plan<'_>, out: &mut [u8]) {
    let g = plan.g;
    let [od, oh, ow] = plan.out_dims;
    let m = g.batch * od * oh * ow;
    let (o, c, k) = (g.out_channels, g.in_channels, g.k());
    let [_, ih, iw] = g.input;
    let [kd, kh, kw] = g.kernel;
    let (runs, run) = (kd * kh, kw * c);
    let gp = &plan.groups[0];
    let symmetric = gp.w.is_symmetric();
    let zw = gp.w.zero_points();
    let panel_bytes = gp.w.panel_bytes();
    let wide: Vec<u16> = plan.input.iter().map(|&v| u16::from(v)).collect();
    let m_tiles = m.div_ceil(MR);
    let parallel = rayon::current_num_threads() > 1
        && m.saturating_mul(o).saturating_mul(k) >= PARALLEL_MACS
        && m_tiles > TASK_TILES;
    let tiles_per_task = if parallel { TASK_TILES } else { m_tiles };
    // input offset of kernel row (tz, ty) from the window's first element
    let tap_rows: Vec<usize> = (0..kd)
        .flat_map(|tz| {
            (0..kh).map(move |ty| (tz * g.dilation[0] * ih + ty * g.dilation[1]) * iw * c)
        })
        .collect();
    // per dim, the output coordinates whose whole window is inside the input
    let inside = |d: usize| g.inside_range(d, plan.out_dims[d]);
    let (zr, yr, xr) = (inside(0), inside(1), inside(2));
    // symmetric weights: the tile's epilogue requantizes whole panels itself
    let fused = Requant::of(&gp.stage).filter(|_| symmetric);
    let task = |(ti, dst): (usize, &mut [u8])| {
        // locals, not captures: the pointer-table loop below then keeps them in registers
        let (wide_ptr, tap_rows, symmetric) = (wide.as_ptr(), tap_rows.as_slice(), symmetric);
        let mut ptrs = vec![std::ptr::null::<u16>(); runs * MR];
        let mut scratch = vec![0u16; MR * k];
        let mut gathered = vec![0u8; k];
        let mut acc = [0i32; MR * 8 * NP];
        let mut row_sums = [0i32; MR];
        let first = ti * tiles_per_task;
        for mt in first..(first + tiles_per_task).min(m_tiles) {
            let m0 = mt * MR;
            let rows = MR.min(m - m0);
            // output coordinates of pixel m0, then stepped along x (no division per pixel)
            let (mut x, mut y, mut z, mut n) = (
                m0 % ow,
                (m0 / ow) % oh,
                (m0 / (ow * oh)) % od,
                m0 / (ow * oh * od),
            );
            for r in 0..rows {
                let p = m0 + r;
                if r > 0 {
                    x += 1;
                    if x == ow {
                        x = 0;
                        y += 1;
                        if y == oh {
                            y = 0;
                            z += 1;
                            if z == od {
                                z = 0;
                                n += 1;
                            }
                        }
                    }
                }
                if zr.contains(&z) && yr.contains(&y) && xr.contains(&x) {
                    // the whole window is inside: kernel row t starts at base + tap_rows[t]
                    let (iz, iy, ix) = (
                        z * g.stride[0] - g.padding[0],
                        y * g.stride[1] - g.padding[1],
                        x * g.stride[2] - g.padding[2],
                    );
                    let base = (((n * g.input[0] + iz) * ih + iy) * iw + ix) * c;
                    debug_assert!(base + tap_rows[runs - 1] + run <= wide.len());
                    for (p, &off) in ptrs[r..].iter_mut().step_by(MR).zip(tap_rows) {
                        *p = wide_ptr.wrapping_add(base + off);
                    }
                    row_sums[r] = if symmetric {
                        0
                    } else {
                        tap_rows
                            .iter()
                            .flat_map(|&off| &plan.input[base + off..base + off + run])
                            .map(|&v| i32::from(v))
                            .sum()
                    };
                } else {
                    plan.gather_row(p, 0, &mut gathered);
                    let rows_k = &mut scratch[r * k..(r + 1) * k];
                    for (d, &s) in rows_k.iter_mut().zip(&gathered) {
                        *d = u16::from(s);
                    }
                    for t in 0..runs {
                        ptrs[t * MR + r] = rows_k[t * run..(t + 1) * run].as_ptr();
                    }
                    row_sums[r] = gathered.iter().map(|&v| i32::from(v)).sum();
                }
            }
            for n0 in (0..o).step_by(8 * NP) {
                let nc = (8 * NP).min(o - n0);
                let panels = nc.div_ceil(8);
                let b = gp.w.panel_bytes_of(n0 / 8, panels);
                // SAFETY: `applies` checked the family, whose kernel object exists only on
                // AVX2 CPUs; the pointers of rows `0..rows` each cover `run` values (inside
                // windows: kernel row t of a window whose every input coordinate is in
                // bounds, i.e. `base + tap_rows[t] + run ≤ wide.len()`; else a scratch row
                // slice); `b` is `panels` panels of `kp·8 ≥ runs·run·8` bytes.
                unsafe {
                    tile_dyn(
                        rows,
                        panels,
                        &ptrs,
                        runs,
                        run,
                        b.as_ptr(),
                        panel_bytes,
                        &mut acc,
                    )
                };
                if let Some(rq) = &fused
                    && nc.is_multiple_of(8)
                {
                    let tile_dst = &mut dst[(mt - first) * MR * o..];
                    // SAFETY: AVX2 and FMA (the family's kernel object exists only when
                    // `Isa::Avx2`, which includes FMA, was detected).
                    unsafe { requant_tile(&acc, rows, panels, rq, &gp.corr, n0, o, tile_dst) };
                    continue;
                }
                for r in 0..rows {
                    let row = (mt - first) * MR + r;
                    let c0 = row * o + n0;
                    let fix = RowFix {
                        corr: &gp.corr[n0..n0 + nc],
                        row: (!symmetric).then(|| (row_sums[r], &zw[n0..n0 + nc])),
                    };
                    plan.kernel.finish_fixed(
                        &gp.stage,
                        n0,
                        &mut acc[r * 8 * NP..r * 8 * NP + nc],
                        fix,
                        OutRow::U8(&mut dst[c0..c0 + nc]),
                    );
                }
            }
        }
    };
    let chunk = tiles_per_task * MR * o;
    par::for_each_chunk_if(parallel, out, chunk, task);
}
