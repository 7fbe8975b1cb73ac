//! K×K (and 1×1) convolution on Intel AMX tiles (`tdpbusd`) over kernel-row runs.
//!
//! The one-group, width-dilation-1 convolutions that the AVX-512 VNNI row-run kernel
//! (`conv::row_run`) runs take this kernel when the weights are packed for the AMX family.
//! With [`RowRunWeights`] packed with runs padded to [`RUN_ALIGN`] = 64 bytes (zero weights
//! past each run's `kw·C` values), the reduction is `runs·run4/64` steps of 64 bytes that
//! never straddle two kernel rows, and a 64-channel panel's step is four B tiles of 16
//! k-quads × 16 channels (rows of 64 bytes at stride `width·4`, the packing as it is).
//!
//! A task walks tiles of 16 consecutive output pixels (in NDHWC order, across output rows
//! and images). For each tile it copies the pixels' kernel-row runs into a 64-byte aligned
//! 16-row A buffer (zero point for padding; in place reads of `run4` bytes where they stay
//! inside the input, the bytes past a run meeting zero weights), reused by every output
//! channel panel: unaligned 16-row tile loads straight from the input measured several
//! times slower than aligned ones (h-amx), and the copy is a few 64-byte moves per run.
//! Then per panel of up to 64 channels: C in tmm0..tmm3 (16 rows × 16 i32 each), A in tmm4,
//! B in tmm5..tmm7; every K step is one A load, up to four B loads and four `tdpbusd`.
//! The accumulators are finished by the row-run kernel's AVX-512 requantization (symmetric
//! weights with a requantizing stage) or by the family's epilogue with the row sums, so every
//! output is the oracle's: `tdpbusd` adds exact u8 × i8 products into i32 like `vpdpbusd`.
//!
//! Tile configuration: palette 1, all eight tiles 16 rows × 64 bytes. Each call stores the
//! thread's current configuration and loads this one only if it differs, inside the `asm!`
//! block of the compute (as the AMX GEMM family does), so another AMX user on the thread
//! never leaves a stale shape behind.

use std::arch::asm;

use crate::gemm::amx_config::{TileConfig, load_tile_config_if_changed};
use crate::gemm::{KernelKind, OutRow, RowFix};
use crate::par;

use super::implicit::Plan;
use super::indirect::Requant;
use super::pack::{Line64, ROW_RUN_PANEL, RowRunWeights};
use super::row_run::{ACC_LD, requant_tile};

/// Run padding of [`RowRunWeights`] packed for this kernel (one AMX K step).
pub(crate) const RUN_ALIGN: usize = 64;
/// Tile rows (the AMX maximum).
const ROWS: usize = 16;
/// Pixels per block: two A tiles, so each B tile loaded serves 32 pixels.
const BLOCK: usize = 32;
/// Multiply-accumulates above which tasks are spread over rayon's threads.
const PARALLEL_MACS: usize = 1 << 19;
/// Most pixel blocks per task.
const TASK_BLOCKS: usize = 4;

/// Whether this kernel runs `plan` with the row-run weights `w`: the AMX family (whose kernel
/// object exists only where the CPU has AMX-TILE/AMX-INT8 with the OS permission and
/// AVX-512 F/BW/VL/VNNI), one group, width dilation 1, runs padded to [`RUN_ALIGN`].
pub(crate) fn applies(plan: &Plan<'_>, w: &RowRunWeights) -> bool {
    plan.kernel.kind() == KernelKind::Amx
        && plan.groups.len() == 1
        && plan.g.dilation[2] == 1
        && w.run4.is_multiple_of(RUN_ALIGN)
}

/// Palette 1, tiles tmm0..tmm7 of 16 rows × 64 bytes.
fn all_full() -> TileConfig {
    TileConfig::with_rows([ROWS as u8; 8])
}

/// A block's accumulators: [`BLOCK`] rows of [`ACC_LD`] i32, as 8-row quarters (the shape
/// `requant_tile` takes), 64-byte aligned for the tile stores.
#[repr(C, align(64))]
struct Acc([[i32; 8 * ACC_LD]; BLOCK / 8]);

/// Byte offset in [`Acc`] of the second 16-row pixel tile.
const ACC_HALF: usize = 16 * ACC_LD * 4;

/// The compute of one block and one or two column vectors; see [`steps_fn`].
type StepsFn = unsafe fn(&TileConfig, *const u8, usize, *const i8, usize, usize, *mut i32);

/// Defines `steps_*`: configure the tiles for `cfg` (if the thread's configuration
/// differs), zero the C tiles, run `steps ≥ 1` K steps over two 16-pixel A tiles (rows
/// `0..16` and `16..32` of `a`, advanced 64 bytes per step) and one or two B tiles (16 quad
/// rows of `wq` bytes from `b`, the second at `b + 64`; `b` advanced `16·wq` per step), store
/// the C tiles to `acc` (pixel tile `i`, vector `v` at `acc + i·ACC_HALF + 64·v` bytes, rows
/// of 64 i32 at stride 256 bytes).
///
/// # Safety (of each `steps_*`)
/// AMX-TILE and AMX-INT8 available with the OS permission granted; `steps ≥ 1`; `cfg` made
/// by [`all_full`]; `a` points at 32 rows (stride `a_stride`) of at least
/// `64·steps` readable bytes; `b` at `16·steps` rows (stride `wq`) of at least 64 (one B
/// tile) or 128 (two) readable bytes; `acc` at 32 rows of 64 i32 (stride 256 bytes), of which
/// the first 16 (or 32) of each row are written.
macro_rules! steps_fn {
    ($name:ident; [$($zero:literal),+]; [$($step:literal),+]; [$($store:literal),+]) => {
        unsafe fn $name(
            cfg: &TileConfig,
            a: *const u8,
            a_stride: usize,
            b: *const i8,
            wq: usize,
            steps: usize,
            acc: *mut i32,
        ) {
            debug_assert!(steps >= 1);
            let mut current = TileConfig::zeroed();
            // SAFETY: the function's contract: the memory operands stay inside the extents
            // it names, and `current` is a writable, aligned 64-byte configuration buffer.
            unsafe {
                asm!(
                    load_tile_config_if_changed!(),
                    $($zero,)+
                    "5:",
                    $($step,)+
                    "add {a}, 64",
                    "add {a2}, 64",
                    "add {b}, {bstep}",
                    "dec {n}",
                    "jnz 5b",
                    $($store,)+
                    cur = in(reg) current.0.as_mut_ptr(),
                    cfg = in(reg) cfg.0.as_ptr(),
                    t = out(reg) _,
                    a = inout(reg) a => _,
                    a2 = inout(reg) a.wrapping_add(16 * a_stride) => _,
                    sa = in(reg) a_stride,
                    b = inout(reg) b => _,
                    sb = in(reg) wq,
                    bstep = in(reg) 16 * wq,
                    n = inout(reg) steps => _,
                    c = in(reg) acc,
                    c2 = in(reg) acc.wrapping_byte_add(ACC_HALF),
                    sc = in(reg) 4 * ACC_LD,
                    options(nostack),
                );
            }
        }
    };
}

steps_fn!(steps_pair;
    ["tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3"];
    [
        "tileloadd tmm4, [{a} + {sa}*1]",
        "tileloadd tmm6, [{b} + {sb}*1]",
        "tdpbusd tmm0, tmm4, tmm6",
        "tileloadd tmm7, [{b} + {sb}*1 + 64]",
        "tdpbusd tmm1, tmm4, tmm7",
        "tileloadd tmm5, [{a2} + {sa}*1]",
        "tdpbusd tmm2, tmm5, tmm6",
        "tdpbusd tmm3, tmm5, tmm7"
    ];
    [
        "tilestored [{c} + {sc}*1], tmm0",
        "tilestored [{c} + {sc}*1 + 64], tmm1",
        "tilestored [{c2} + {sc}*1], tmm2",
        "tilestored [{c2} + {sc}*1 + 64], tmm3"
    ]
);

steps_fn!(steps_single;
    ["tilezero tmm0", "tilezero tmm2"];
    [
        "tileloadd tmm4, [{a} + {sa}*1]",
        "tileloadd tmm6, [{b} + {sb}*1]",
        "tdpbusd tmm0, tmm4, tmm6",
        "tileloadd tmm5, [{a2} + {sa}*1]",
        "tdpbusd tmm2, tmm5, tmm6"
    ];
    ["tilestored [{c} + {sc}*1], tmm0", "tilestored [{c2} + {sc}*1], tmm2"]
);

/// `Σ v` (wrapping, like the GEMM's row sums).
fn byte_sum(v: &[u8]) -> i32 {
    v.iter().fold(0i32, |s, &x| s.wrapping_add(i32::from(x)))
}

/// Copies the kernel-row runs of pixel `[n, z, y, x]` into `row` (run `t` at `t·run4`; the
/// bytes past each run are anything readable) and returns its row sum when `sums` (else 0).
fn gather_pixel(
    plan: &Plan<'_>,
    w: &RowRunWeights,
    [n, z, y, x]: [usize; 4],
    row: &mut [u8],
    sums: bool,
) -> i32 {
    let g = plan.g;
    let [id, ih, iw] = g.input;
    let (c, kw) = (g.in_channels, g.kernel[2]);
    let (run, run4, za) = (w.run, w.run4, plan.za as u8);
    let input = plan.input;
    let x0 = (x * g.stride[2]) as isize - g.padding[2] as isize;
    // the window's columns inside the input: lo..hi
    let lo = (-x0).clamp(0, kw as isize) as usize;
    let hi = (iw as isize - x0).clamp(lo as isize, kw as isize) as usize;
    let mut sum = 0i32;
    let mut seg_at = 0;
    for tz in 0..g.kernel[0] {
        let iz = g.input_coord(0, z, tz);
        for ty in 0..g.kernel[1] {
            let seg = &mut row[seg_at..seg_at + run4];
            seg_at += run4;
            let (Some(iz), Some(iy)) = (iz, g.input_coord(1, y, ty)) else {
                seg[..run].fill(za);
                if sums {
                    sum = sum.wrapping_add(i32::from(za).wrapping_mul(run as i32));
                }
                continue;
            };
            let line = ((n * id + iz) * ih + iy) * iw;
            if lo == 0 && hi == kw {
                // x0 ≥ 0 when lo = 0
                let start = (line + x0 as usize) * c;
                if start + run4 <= input.len() {
                    // (an explicit zmm loop measured no faster than this `memcpy`)
                    seg.copy_from_slice(&input[start..start + run4]);
                } else {
                    seg[..run].copy_from_slice(&input[start..start + run]);
                }
            } else {
                seg[..run].fill(za);
                if hi > lo {
                    let from = (line + (x0 + lo as isize) as usize) * c;
                    seg[lo * c..hi * c].copy_from_slice(&input[from..from + (hi - lo) * c]);
                }
            }
            if sums {
                sum = sum.wrapping_add(byte_sum(&seg[..run]));
            }
        }
    }
    sum
}

/// Runs `plan` ([`applies`] holds) with the row-run weights `w` into the NDHWC `out`.
pub(crate) fn run(plan: &Plan<'_>, w: &RowRunWeights, out: &mut [u8]) {
    let g = plan.g;
    let m = g.batch * plan.out_dims.iter().product::<usize>();
    let o = g.out_channels;
    let blocks = m.div_ceil(BLOCK);
    let macs = m.saturating_mul(o).saturating_mul(g.k());
    let threads = rayon::current_num_threads();
    let parallel = threads > 1 && macs >= PARALLEL_MACS && blocks > 1;
    let per_task = if parallel {
        blocks.div_ceil(4 * threads).clamp(1, TASK_BLOCKS)
    } else {
        TASK_BLOCKS.min(blocks)
    };
    let chunk = per_task * BLOCK * o;
    let task = |(ti, dst): (usize, &mut [u8])| {
        let b0 = ti * per_task;
        run_task(plan, w, b0..(b0 + per_task).min(blocks), m, dst);
    };
    par::for_each_chunk_if(parallel, out, chunk, task);
}

/// Runs pixel blocks `blocks` ([`BLOCK`] pixels each, from pixel `blocks.start · BLOCK`)
/// into `dst`.
fn run_task(
    plan: &Plan<'_>,
    w: &RowRunWeights,
    blocks: std::ops::Range<usize>,
    m: usize,
    dst: &mut [u8],
) {
    let gp = &plan.groups[0];
    let o = plan.g.out_channels;
    let [od, oh, ow] = plan.out_dims;
    let symmetric = gp.w.is_symmetric();
    let k4 = w.runs * w.run4;
    let steps = k4 / RUN_ALIGN;
    // A rows one line longer than K (64-byte aligned, not a multiple of 4 KiB apart)
    let a_stride = k4 + 64;
    let mut a_lines = vec![Line64([plan.za as i8; 64]); BLOCK * a_stride / 64];
    let mut acc = Acc([[0; 8 * ACC_LD]; BLOCK / 8]);
    let mut row_sums = [0i32; BLOCK];
    let fused = Requant::of(&gp.stage).filter(|_| symmetric);
    let zw = gp.w.zero_points();
    let cfg = all_full();
    // the next pixel's [n, z, y, x], stepped without divisions
    let p0 = blocks.start * BLOCK;
    let mut px = [
        p0 / (ow * oh * od),
        (p0 / (ow * oh)) % od,
        (p0 / ow) % oh,
        p0 % ow,
    ];
    for (i, block) in blocks.clone().enumerate() {
        let first = block * BLOCK;
        let real = BLOCK.min(m - first);
        {
            let a: &mut [u8] = bytemuck::cast_slice_mut(&mut a_lines);
            for (r, row) in a.chunks_exact_mut(a_stride).take(real).enumerate() {
                row_sums[r] = gather_pixel(plan, w, px, row, !symmetric);
                px[3] += 1;
                if px[3] == ow {
                    px[3] = 0;
                    px[2] += 1;
                    if px[2] == oh {
                        px[2] = 0;
                        px[1] += 1;
                        if px[1] == od {
                            px[1] = 0;
                            px[0] += 1;
                        }
                    }
                }
            }
        }
        let a: &[u8] = bytemuck::cast_slice(&a_lines);
        let block_dst = &mut dst[i * BLOCK * o..];
        for p in 0..o.div_ceil(ROW_RUN_PANEL) {
            let n0 = p * ROW_RUN_PANEL;
            let nc = ROW_RUN_PANEL.min(o - n0);
            let width = RowRunWeights::width_of(o, p);
            let (vectors, wq) = (width / 16, width * 4);
            let panel = w.panel(p);
            assert!(a.len() >= BLOCK * a_stride && panel.len() >= steps * 16 * wq);
            for v in (0..vectors).step_by(2) {
                let f: StepsFn = if v + 1 < vectors {
                    steps_pair
                } else {
                    steps_single
                };
                // SAFETY: `applies` checked the family: its kernel object exists only where
                // the CPU has AMX-TILE/AMX-INT8 with the permission granted. `a` holds 32
                // rows of `a_stride ≥ 64·steps` bytes and the panel `16·steps` quad rows of
                // `wq = 64·vectors` bytes (both asserted), of which bytes `64·v..64·(v + 2)`
                // (or `..64·(v + 1)` for a single vector) are read; `acc` holds 32 rows of
                // 64 i32 at stride 256 bytes, written at columns `16·v..16·(v + 2)` ≤ 64.
                unsafe {
                    f(
                        &cfg,
                        a.as_ptr(),
                        a_stride,
                        panel[64 * v..].as_ptr(),
                        wq,
                        steps,
                        acc.0.as_mut_ptr().cast::<i32>().add(16 * v),
                    )
                };
            }
            if let Some(rq) = &fused {
                for (h, quarter) in acc.0.iter().enumerate() {
                    let rows = real.saturating_sub(8 * h).min(8);
                    if rows > 0 {
                        // SAFETY: AVX-512 F/BW/VL, part of the AMX family's level.
                        unsafe {
                            requant_tile(
                                quarter,
                                rows,
                                nc,
                                rq,
                                &gp.corr,
                                n0,
                                o,
                                &mut block_dst[8 * h * o..],
                            )
                        };
                    }
                }
                continue;
            }
            for r in 0..real {
                let fix = RowFix {
                    corr: &gp.corr[n0..n0 + nc],
                    row: (!symmetric).then(|| (row_sums[r], &zw[n0..n0 + nc])),
                };
                let row = &mut acc.0[r / 8][(r % 8) * ACC_LD..(r % 8) * ACC_LD + nc];
                plan.kernel.finish_fixed(
                    &gp.stage,
                    n0,
                    row,
                    fix,
                    OutRow::U8(&mut block_dst[r * o + n0..r * o + n0 + nc]),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_palette_1_with_eight_full_tiles() {
        let c = all_full();
        assert_eq!(c.0[0], 1);
        assert!((0..8).all(|t| c.0[16 + 2 * t] == 64 && c.0[48 + t] == 16));
    }
}
