//! K×K (and 1×1) convolution on AVX-512 VNNI (`vpdpbusd`) reading activations through a
//! pointer table.
//!
//! With one group and width dilation 1, the `kw·C` reduction values of kernel row `(tz, ty)`
//! of output pixel `m` are one contiguous run of the NDHWC input. The weights are packed per
//! kernel row with the run zero-padded to `run4` (a multiple of 4, [`RowRunWeights`]), so a
//! tile of `R` pixels × `16·V` output channels walks each run 4 bytes at a time: one
//! broadcast dword of u8 activations per pixel, `V` zmm of s8 weights, `R·V` `vpdpbusd`
//! (each adds four exact u8·s8 products to an i32 lane). Bytes read past a run's end meet zero
//! weights, so they only need to be readable: a run is read in place when its window row is
//! inside the input and `run4` bytes from its start stay inside the input slice; otherwise
//! it is gathered (zero point for padding) into the task's scratch, and a kernel row entirely
//! in the padding points at one shared zero-point row. Nothing like an im2col row is copied
//! for interior pixels.
//!
//! Each task owns a block of M tiles: it builds their pointer tables, then for each panel of
//! up to 64 output channels, for each K block (whole runs, or chunks of one long run, whose
//! weights fit in [`K_BLOCK_BYTES`]), runs every tile of the block (accumulating in memory
//! across blocks), and requantizes with the GEMM epilogue's formula and operation order.
//! The zero-point correction is the GEMM's (`corr`, and `Σx·zw` per pixel for asymmetric
//! weights). Every output is one exact integer sum over all of K, so results do not depend
//! on the blocking, the task split or the thread count.

use std::arch::x86_64::*;

use crate::par;

use super::implicit::Plan;
use super::indirect::Requant;
use super::pack::{ROW_RUN_PANEL, RowRunWeights};
use crate::gemm::{OutRow, RowFix};

/// Multiply-accumulates above which tasks are spread over rayon's threads.
const PARALLEL_MACS: usize = 1 << 19;
/// Weight bytes of one panel's K block (kept in L1 while the task's tiles reuse it).
const K_BLOCK_BYTES: usize = 16 * 1024;
/// Most M tiles per task (its accumulators: up to 24 × 8 × 64 i32 = 48 KiB).
const TASK_TILES: usize = 24;
/// Accumulator row stride of a tile (one panel).
pub(super) const ACC_LD: usize = ROW_RUN_PANEL;

/// Whether the row-run kernel runs `plan` (weights packed as [`RowRunWeights`], the AVX-512
/// VNNI family, width dilation 1; width-dilated calls take the implicit GEMM).
pub(crate) fn applies(plan: &Plan<'_>) -> bool {
    plan.kernel.kind().has_avx512_vnni() && plan.groups.len() == 1 && plan.g.dilation[2] == 1
}

/// One `R × 16V` tile over a K block: for each of the `ptrs.len() / R` runs `t`, for
/// `q < nq`: `acc[r·64 + c] (+)= Σ_{i<4} A_r,t[off + 4q + i]·B[t·b_run + q·wq + 4c + i]`.
///
/// # Safety
/// AVX-512 F/BW/VNNI are available; `ptrs.len()` is a multiple of `R`, each pointer valid for
/// reading `off + 4·nq` bytes; `b` valid for reading runs `t < ptrs.len()/R` of `nq·wq`
/// bytes at `t·b_run`, with `wq ≥ 64·V`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
unsafe fn tile<const R: usize, const V: usize>(
    ptrs: &[*const u8],
    off: usize,
    nq: usize,
    b: *const i8,
    b_run: usize,
    wq: usize,
    acc: &mut [i32; 8 * ACC_LD],
    accumulate: bool,
) {
    let mut c = [[_mm512_setzero_si512(); V]; R];
    // SAFETY: every offset below stays inside the extents of the function's contract.
    unsafe {
        if accumulate {
            for r in 0..R {
                for v in 0..V {
                    c[r][v] = _mm512_loadu_si512(acc.as_ptr().add(r * ACC_LD + 16 * v).cast());
                }
            }
        }
        for (t, rows) in ptrs.chunks_exact(R).enumerate() {
            let mut a = [std::ptr::null::<u8>(); R];
            for r in 0..R {
                a[r] = rows[r].add(off);
            }
            let bt = b.add(t * b_run);
            for q in 0..nq {
                let mut bv = [_mm512_setzero_si512(); V];
                for v in 0..V {
                    bv[v] = _mm512_loadu_si512(bt.add(q * wq + 64 * v).cast());
                }
                for r in 0..R {
                    let av = _mm512_set1_epi32(a[r].add(4 * q).cast::<i32>().read_unaligned());
                    for v in 0..V {
                        c[r][v] = _mm512_dpbusd_epi32(c[r][v], av, bv[v]);
                    }
                }
            }
        }
        for r in 0..R {
            for v in 0..V {
                _mm512_storeu_si512(acc.as_mut_ptr().add(r * ACC_LD + 16 * v).cast(), c[r][v]);
            }
        }
    }
}

/// Dispatches [`tile`] on `(rows, vectors)`.
///
/// # Safety
/// As [`tile`], with `(rows, vectors)` one of the instantiated pairs.
#[allow(clippy::too_many_arguments)]
unsafe fn tile_dyn(
    rows: usize,
    vectors: usize,
    ptrs: &[*const u8],
    off: usize,
    nq: usize,
    b: *const i8,
    b_run: usize,
    wq: usize,
    acc: &mut [i32; 8 * ACC_LD],
    accumulate: bool,
) {
    macro_rules! go {
        ($(($r:literal, $v:literal))*) => {
            match (rows, vectors) {
                // SAFETY: the caller's contract.
                $(($r, $v) => unsafe {
                    tile::<$r, $v>(ptrs, off, nq, b, b_run, wq, acc, accumulate)
                },)*
                _ => unreachable!("tile {rows}×{vectors}"),
            }
        };
    }
    go!((8, 1)(8, 2)(8, 3)(6, 1)(6, 2)(6, 3)(6, 4));
}

/// Requantizes a tile's `rows × nc` accumulators (output channels `n0..n0 + nc`, `nc ≤ 64`)
/// into the NDHWC `dst` (pixel `r` at `r·o`) with the formula and operation order of the
/// GEMM's AVX-512 `requant_row_512` (`+ corr`, `fma(bias_a, bias_b, x)`, `× mult`,
/// `cvtps2dq`, clamp to −256..=511, `+ zp`, clamp to `lo..=hi`), channel tails masked.
/// Symmetric weights only (no row-sum term).
///
/// # Safety
/// AVX-512 F/BW/VL are available.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn requant_tile(
    acc: &[i32; 8 * ACC_LD],
    rows: usize,
    nc: usize,
    rq: &Requant<'_>,
    corr: &[i32],
    n0: usize,
    o: usize,
    dst: &mut [u8],
) {
    assert!(nc <= ACC_LD && rows <= 8 && n0 + nc <= corr.len() && n0 + nc <= rq.mult.len());
    assert!(rq.bias_a.len() >= n0 + nc && rq.bias_b.len() >= n0 + nc);
    assert!(rows == 0 || dst.len() >= (rows - 1) * o + n0 + nc);
    let zp = _mm512_set1_epi32(rq.zero_point);
    let lo = _mm512_set1_epi32(rq.lo);
    let hi = _mm512_set1_epi32(rq.hi);
    let floor = _mm512_set1_epi32(-256);
    let ceil = _mm512_set1_epi32(511);
    for v in 0..nc.div_ceil(16) {
        let c = n0 + 16 * v;
        let mask = ((1u32 << (nc - 16 * v).min(16)) - 1) as __mmask16;
        // SAFETY: the lanes under `mask` are indices `c..n0 + nc` of slices asserted to be
        // that long; masked-off lanes are not read.
        let (cv, ba, bb, mult) = unsafe {
            (
                _mm512_maskz_loadu_epi32(mask, corr.as_ptr().add(c)),
                _mm512_maskz_loadu_ps(mask, rq.bias_a.as_ptr().add(c)),
                _mm512_maskz_loadu_ps(mask, rq.bias_b.as_ptr().add(c)),
                _mm512_maskz_loadu_ps(mask, rq.mult.as_ptr().add(c)),
            )
        };
        for r in 0..rows {
            // SAFETY: `acc` row r holds 64 i32 (16·v + 16 ≤ 64); the masked store writes
            // bytes `r·o + c .. r·o + n0 + nc` of `dst`, asserted in bounds.
            unsafe {
                let a = _mm512_loadu_si512(acc.as_ptr().add(r * ACC_LD + 16 * v).cast());
                let x = _mm512_add_epi32(a, cv);
                let xf = _mm512_fmadd_ps(ba, bb, _mm512_cvtepi32_ps(x));
                let q = _mm512_cvtps_epi32(_mm512_mul_ps(xf, mult));
                let q = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(q, floor), ceil), zp);
                let q = _mm512_min_epi32(_mm512_max_epi32(q, lo), hi);
                // q is in [lo, hi] ⊂ [0, 255]: truncating to bytes is exact.
                _mm512_mask_cvtepi32_storeu_epi8(dst.as_mut_ptr().add(r * o + c).cast(), mask, q);
            }
        }
    }
}

/// A K block: runs `t0..t0 + runs`, 4-byte groups `q0..q0 + nq` of each.
#[derive(Clone, Copy)]
struct KBlock {
    t0: usize,
    runs: usize,
    q0: usize,
    nq: usize,
}

/// The K blocks of a panel whose 4-byte groups are `wq` bytes wide.
fn k_blocks(w: &RowRunWeights, wq: usize) -> Vec<KBlock> {
    let qrun = w.run4 / 4;
    let run_bytes = qrun * wq;
    if run_bytes <= K_BLOCK_BYTES {
        let per = (K_BLOCK_BYTES / run_bytes).max(1);
        (0..w.runs)
            .step_by(per)
            .map(|t0| KBlock {
                t0,
                runs: per.min(w.runs - t0),
                q0: 0,
                nq: qrun,
            })
            .collect()
    } else {
        let per = (K_BLOCK_BYTES / wq).max(1);
        (0..w.runs)
            .flat_map(|t| {
                (0..qrun).step_by(per).map(move |q0| KBlock {
                    t0: t,
                    runs: 1,
                    q0,
                    nq: per.min(qrun - q0),
                })
            })
            .collect()
    }
}

/// `Σ v` (wrapping, like the GEMM's row sums).
fn byte_sum(v: &[u8]) -> i32 {
    v.iter().fold(0i32, |s, &x| s.wrapping_add(i32::from(x)))
}

/// Where the runs of a task's pixels are read.
struct Entries<'p, 'a> {
    plan: &'p Plan<'a>,
    w: &'p RowRunWeights,
    /// Input offset of kernel row `t` from its window's first element.
    tap_rows: Vec<usize>,
    /// Output coordinates, per dim, whose window is inside the input.
    inside: [std::ops::Range<usize>; 3],
    /// Whether row sums are needed (asymmetric weights).
    sums: bool,
}

impl<'p, 'a> Entries<'p, 'a> {
    fn new(plan: &'p Plan<'a>, w: &'p RowRunWeights, sums: bool) -> Self {
        let g = plan.g;
        let [_, ih, iw] = g.input;
        let c = g.in_channels;
        let tap_rows = (0..g.kernel[0])
            .flat_map(|tz| {
                (0..g.kernel[1])
                    .map(move |ty| (tz * g.dilation[0] * ih + ty * g.dilation[1]) * iw * c)
            })
            .collect();
        let inside = [0, 1, 2].map(|d| g.inside_range(d, plan.out_dims[d]));
        Entries {
            plan,
            w,
            tap_rows,
            inside,
            sums,
        }
    }

    /// Fills the pointer table of pixels `first..first + count` (pixel `i` of the block at
    /// `ptrs[(i / rows)·runs·rows + t·rows + i % rows]` for each run `t`) and their row sums
    /// when `sums`: pointers into the input, or for runs gathered into `scratch` (whose first
    /// `run4` bytes are the shared zero-point row) a `(table index, scratch offset)` entry
    /// of `patches`, to be pointed once `scratch` stops growing.
    #[allow(clippy::too_many_arguments)]
    fn fill(
        &self,
        first: usize,
        count: usize,
        rows: usize,
        ptrs: &mut [*const u8],
        row_sums: &mut [i32],
        scratch: &mut Vec<u8>,
        patches: &mut Vec<(usize, usize)>,
    ) {
        let g = self.plan.g;
        let [od, oh, ow] = self.plan.out_dims;
        let [id, ih, iw] = g.input;
        let c = g.in_channels;
        let (runs, run4) = (self.w.runs, self.w.run4);
        let input = self.plan.input;
        let last = self.tap_rows[runs - 1] + run4;
        let (mut x, mut y, mut z, mut n) = (
            first % ow,
            (first / ow) % oh,
            (first / (ow * oh)) % od,
            first / (ow * oh * od),
        );
        let (mut i, mut r) = (0, 0);
        for idx in 0..count {
            if idx > 0 {
                r += 1;
                if r == rows {
                    (r, i) = (0, i + 1);
                }
                x += 1;
                if x == ow {
                    (x, y) = (0, y + 1);
                    if y == oh {
                        (y, z) = (0, z + 1);
                        if z == od {
                            (z, n) = (0, n + 1);
                        }
                    }
                }
            }
            let at = i * runs * rows + r;
            let [zr, yr, xr] = &self.inside;
            if zr.contains(&z) && yr.contains(&y) && xr.contains(&x) {
                let base = (((n * id + z * g.stride[0] - g.padding[0]) * ih + y * g.stride[1]
                    - g.padding[1])
                    * iw
                    + x * g.stride[2]
                    - g.padding[2])
                    * c;
                if base + last <= input.len() {
                    let from = input[base..].as_ptr();
                    for (e, &off) in ptrs[at..].iter_mut().step_by(rows).zip(&self.tap_rows) {
                        *e = from.wrapping_add(off);
                    }
                    if self.sums {
                        let run = self.w.run;
                        row_sums[i * rows + r] = self.tap_rows.iter().fold(0i32, |s, &off| {
                            s.wrapping_add(byte_sum(&input[base + off..base + off + run]))
                        });
                    }
                    continue;
                }
            }
            row_sums[i * rows + r] = self.gather([n, z, y, x], at, rows, ptrs, scratch, patches);
        }
    }

    /// The general case of [`Entries::fill`] for pixel `[n, z, y, x]` (table entries
    /// `at + t·stride`): per run, the input in place if its window row is inside and `run4`
    /// bytes fit in the input, the shared zero-point row if the row is padding, else a
    /// gathered copy. Returns the row sum (0 unless `sums`).
    fn gather(
        &self,
        [n, z, y, x]: [usize; 4],
        at: usize,
        stride: usize,
        ptrs: &mut [*const u8],
        scratch: &mut Vec<u8>,
        patches: &mut Vec<(usize, usize)>,
    ) -> i32 {
        let g = self.plan.g;
        let [id, ih, iw] = g.input;
        let (c, kw) = (g.in_channels, g.kernel[2]);
        let (run, run4, za) = (self.w.run, self.w.run4, self.plan.za);
        let input = self.plan.input;
        let x0 = (x * g.stride[2]) as isize - g.padding[2] as isize;
        // the window's columns inside the input: lo..hi
        let lo = (-x0).clamp(0, kw as isize) as usize;
        let hi = (iw as isize - x0).clamp(lo as isize, kw as isize) as usize;
        let mut sum = 0i32;
        let mut e = at;
        for tz in 0..g.kernel[0] {
            let iz = g.input_coord(0, z, tz);
            for ty in 0..g.kernel[1] {
                let here = e;
                e += stride;
                let (Some(iz), Some(iy)) = (iz, g.input_coord(1, y, ty)) else {
                    patches.push((here, 0));
                    sum = sum.wrapping_add(za.wrapping_mul(run as i32));
                    continue;
                };
                let line = ((n * id + iz) * ih + iy) * iw;
                // x0 ≥ 0 when lo = 0
                let start = (lo == 0 && hi == kw).then(|| (line + x0 as usize) * c);
                let seg = if let Some(start) = start
                    && start + run4 <= input.len()
                {
                    ptrs[here] = input[start..].as_ptr();
                    &input[start..start + run]
                } else {
                    let off = scratch.len();
                    scratch.resize(off + run4, za as u8);
                    if hi > lo {
                        let from = (line + (x0 + lo as isize) as usize) * c;
                        scratch[off + lo * c..off + hi * c]
                            .copy_from_slice(&input[from..from + (hi - lo) * c]);
                    }
                    patches.push((here, off));
                    &scratch[off..off + run]
                };
                if self.sums {
                    sum = sum.wrapping_add(byte_sum(seg));
                }
            }
        }
        sum
    }
}

/// Runs `plan` ([`applies`] holds, so the kernel object proves AVX-512 VNNI) with the
/// row-run weights `w` into the NDHWC `out`.
pub(crate) fn run(plan: &Plan<'_>, w: &RowRunWeights, out: &mut [u8]) {
    let g = plan.g;
    let m = g.batch * plan.out_dims.iter().product::<usize>();
    let o = g.out_channels;
    let rows = if o > 48 { 6 } else { 8 };
    let m_tiles = m.div_ceil(rows);
    let macs = m.saturating_mul(o).saturating_mul(g.k());
    let threads = rayon::current_num_threads();
    let parallel = threads > 1 && macs >= PARALLEL_MACS && m_tiles > 1;
    let per_task = if parallel {
        m_tiles.div_ceil(8 * threads).clamp(1, TASK_TILES)
    } else {
        TASK_TILES.min(m_tiles)
    };
    let chunk = per_task * rows * o;
    let task = |(ti, dst): (usize, &mut [u8])| {
        let t0 = ti * per_task;
        run_task(plan, w, rows, t0..(t0 + per_task).min(m_tiles), m, dst);
    };
    par::for_each_chunk_if(parallel, out, chunk, task);
}

/// Runs M tiles `tiles` (`rows` pixels each; pixels from `tiles.start · rows`) into `dst`.
fn run_task(
    plan: &Plan<'_>,
    w: &RowRunWeights,
    rows: usize,
    tiles: std::ops::Range<usize>,
    m: usize,
    dst: &mut [u8],
) {
    let gp = &plan.groups[0];
    let o = plan.g.out_channels;
    let symmetric = gp.w.is_symmetric();
    let runs = w.runs;
    let per_tile = runs * rows;
    let count = tiles.len();
    let m_first = tiles.start * rows;
    let mut ptrs = vec![std::ptr::null::<u8>(); count * per_tile];
    let mut row_sums = vec![0i32; count * rows];
    let mut scratch = vec![plan.za as u8; w.run4];
    let mut patches = Vec::new();
    let real = (count * rows).min(m - m_first);
    Entries::new(plan, w, !symmetric).fill(
        m_first,
        real,
        rows,
        &mut ptrs,
        &mut row_sums,
        &mut scratch,
        &mut patches,
    );
    for (at, off) in patches {
        ptrs[at] = scratch[off..].as_ptr();
    }
    // tail rows repeat the tile's first pixel's runs; their results are discarded
    for idx in real..count * rows {
        let (i, r) = (idx / rows, idx % rows);
        for t in 0..runs {
            ptrs[i * per_tile + t * rows + r] = ptrs[i * per_tile + t * rows];
        }
    }
    let fused = Requant::of(&gp.stage).filter(|_| symmetric);
    let zw = gp.w.zero_points();
    // one tile's accumulators when K is one block (each tile is finished at once), else
    // every tile's, accumulated over the blocks
    let mut acc: Vec<[i32; 8 * ACC_LD]> = Vec::new();
    for p in 0..o.div_ceil(ROW_RUN_PANEL) {
        let n0 = p * ROW_RUN_PANEL;
        let nc = ROW_RUN_PANEL.min(o - n0);
        let width = RowRunWeights::width_of(o, p);
        let (vectors, wq) = (width / 16, width * 4);
        let panel = w.panel(p);
        let qrun = w.run4 / 4;
        let blocks = k_blocks(w, wq);
        let compute = |i: usize, bi: usize, a: &mut [i32; 8 * ACC_LD]| {
            let kb = blocks[bi];
            let b = &panel[(kb.t0 * qrun + kb.q0) * wq..];
            let tp = &ptrs[i * per_tile + kb.t0 * rows..i * per_tile + (kb.t0 + kb.runs) * rows];
            // SAFETY: `applies` checked the family, whose kernel object exists only on CPUs
            // with AVX-512 F/BW/VL/VNNI. Each pointer covers `run4 ≥ 4·(q0 + nq)` bytes: an
            // input run with `start + run4 ≤ input.len()` (checked when the entry was made)
            // or a `run4`-byte scratch segment. `b` holds the weights of runs
            // `t0..t0 + runs` from group `q0`: `(t·qrun + q0 + nq)·wq ≤ panel.len()` since
            // `q0 + nq ≤ qrun` and `t0 + runs ≤ w.runs`; `wq = 64·vectors`.
            unsafe {
                tile_dyn(
                    rows,
                    vectors,
                    tp,
                    4 * kb.q0,
                    kb.nq,
                    b.as_ptr(),
                    qrun * wq,
                    wq,
                    a,
                    bi > 0,
                )
            };
        };
        let finish = |i: usize, a: &mut [i32; 8 * ACC_LD], dst: &mut [u8]| {
            let r_real = rows.min(m - (m_first + i * rows));
            let tile_dst = &mut dst[i * rows * o..];
            if let Some(rq) = &fused {
                // SAFETY: AVX-512 F/BW/VL (the family's kernel object proves them).
                unsafe { requant_tile(a, r_real, nc, rq, &gp.corr, n0, o, tile_dst) };
                return;
            }
            for r in 0..r_real {
                let fix = RowFix {
                    corr: &gp.corr[n0..n0 + nc],
                    row: (!symmetric).then(|| (row_sums[i * rows + r], &zw[n0..n0 + nc])),
                };
                plan.kernel.finish_fixed(
                    &gp.stage,
                    n0,
                    &mut a[r * ACC_LD..r * ACC_LD + nc],
                    fix,
                    OutRow::U8(&mut tile_dst[r * o + n0..r * o + n0 + nc]),
                );
            }
        };
        let held = if blocks.len() == 1 { 1 } else { count };
        if acc.len() < held {
            acc.resize(held, [0; 8 * ACC_LD]);
        }
        if blocks.len() == 1 {
            for i in 0..count {
                compute(i, 0, &mut acc[0]);
                finish(i, &mut acc[0], dst);
            }
        } else {
            for bi in 0..blocks.len() {
                for (i, a) in acc.iter_mut().enumerate().take(count) {
                    compute(i, bi, a);
                }
            }
            for (i, a) in acc.iter_mut().enumerate().take(count) {
                finish(i, a, dst);
            }
        }
    }
}
