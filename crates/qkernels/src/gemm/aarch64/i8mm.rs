//! i8mm family: `usmmla` (u8 × i8 → i32 2×2 tiles) directly on the quint8 activations, so no
//! sign shift and no extra correction are needed (`a_offset() = 0`).
//!
//! `usmmla acc.4s, a.16b, b.16b` with `a = [row0 k0..8 | row1 k0..8]` (u8) and
//! `b = [col0 k0..8 | col1 k0..8]` (i8) adds `[row0·col0, row0·col1, row1·col0, row1·col1]`.
//! * Weights: 8-column panels `[K/8][8][8]` (kr = 8): per k-octet, the 16 bytes of columns
//!   `2j, 2j + 1` are exactly one `b` operand.
//! * Activations: packed in row pairs `[K/8][2][8]` (a missing odd row is zeros), so one
//!   16-byte load is one `a` operand; the pair stride is `2·kp`.
//!
//! Tiles: 4 row pairs × 8 columns, 2 × 16 for M ≤ 4, 1 × 32 for M ≤ 2 (16 accumulators of
//! 2×2 each); the epilogue unzips the 2×2 tiles into rows with `zip1`/`zip2` on 64-bit lanes.
//!
//! The instruction goes through `asm!` inside a `#[target_feature(enable = "neon,i8mm")]`
//! function because `vusmmlaq_s32` is unstable on Rust 1.95.
#![allow(clippy::needless_range_loop)]

use std::arch::aarch64::*;
use std::arch::asm;

use super::{MAX_TILE, TileArgs, TileFn, epilogue, store, tile_shape_8x8, tile_table};
use crate::gemm::kind::KernelKind;
use crate::gemm::microkernel::{Microkernel, PanelLayout, TileJob, TileShape};
use crate::gemm::pipeline::{OutRow, RowFix, Stage};
use crate::isa::Isa;

const LAYOUT: PanelLayout = PanelLayout { nr: 8, kr: 8 };

/// The family's kernel object; handed out only after the NEON + dotprod + i8mm check.
pub(crate) struct I8mmKernel {
    _cpu_checked: (),
}

static KERNEL: I8mmKernel = I8mmKernel { _cpu_checked: () };

/// The safe constructor: `Some` only if the CPU has FEAT_I8MM (and the levels below it).
pub(crate) fn kernel() -> Option<&'static dyn Microkernel> {
    Isa::I8mm
        .is_supported()
        .then_some(&KERNEL as &dyn Microkernel)
}

/// Indexed by `[row pairs − 1][panels − 1]`.
const TABLE: [[TileFn; 4]; 4] = tile_table!(tile; 1, 2, 3, 4);

impl Microkernel for I8mmKernel {
    fn kind(&self) -> KernelKind {
        KernelKind::I8mm
    }

    fn layout(&self) -> PanelLayout {
        LAYOUT
    }

    fn tile_shape(&self, m: usize) -> TileShape {
        tile_shape_8x8(m)
    }

    fn a_tile_bytes(&self, rows: usize, kp: usize) -> usize {
        rows.div_ceil(2) * 2 * kp
    }

    fn pack_a(&self, a: &[u8], lda: usize, rows: usize, k: usize, kp: usize, dst: &mut [u8]) {
        for (pair, d) in dst.chunks_exact_mut(2 * kp).enumerate() {
            for (g, octet) in d.chunks_exact_mut(16).enumerate() {
                let (lo, hi) = ((8 * g).min(k), (8 * g + 8).min(k));
                for (half, o) in octet.chunks_exact_mut(8).enumerate() {
                    let r = 2 * pair + half;
                    let n = if r < rows { hi - lo } else { 0 };
                    if n > 0 {
                        o[..n].copy_from_slice(&a[r * lda + lo..r * lda + hi]);
                    }
                    o[n..].fill(0);
                }
            }
        }
    }

    fn compute(&self, job: TileJob<'_>) {
        job.assert_valid(LAYOUT, self.a_tile_bytes(job.rows, job.kp), MAX_TILE);
        let f = TABLE[job.rows.div_ceil(2) - 1][job.panels - 1];
        let args = TileArgs {
            a: job.a[2 * job.k0..].as_ptr(),
            a_stride: 2 * job.kp,
            b: job.b[job.k0 * LAYOUT.nr..].as_ptr(),
            panel_bytes: job.kp * LAYOUT.nr,
            kc: job.kc,
            acc: job.acc.as_mut_ptr(),
            acc_ld: job.acc_ld,
            rows: job.rows,
            accumulate: job.accumulate,
        };
        // SAFETY: `self` exists only after the i8mm check in `kernel()`; `assert_valid`
        // checked that the K block lies inside the packed A (row pairs of `2·kp` bytes,
        // `a_tile_bytes` in all) and B (panels of `8·kp` bytes) and that `acc` holds the
        // tile's `rows` rows, which are exactly the extents the tile reads and writes.
        unsafe { f(&args) }
    }

    fn finish(&self, stage: &Stage, n0: usize, raw: &[i32], out: OutRow<'_>) {
        epilogue::finish(stage, n0, raw, out);
    }

    fn finish_fixed(
        &self,
        stage: &Stage,
        n0: usize,
        acc: &mut [i32],
        fix: RowFix<'_>,
        out: OutRow<'_>,
    ) {
        epilogue::finish_fixed(stage, n0, acc, fix, out);
    }
}

/// `usmmla acc.4s, a.16b, b.16b` (see the module docs for the operand layout).
#[inline]
#[target_feature(enable = "neon,i8mm")]
fn usmmla(acc: int32x4_t, a: uint8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: a register-only instruction (no memory, flags or stack); FEAT_I8MM is enabled
    // for this function, whose callers all run after the CPU check.
    unsafe {
        asm!(
            "usmmla {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// One tile of `RP` row pairs × `8P` columns over one K block; rows `≥ t.rows` are computed
/// (from zero padding) but not stored.
///
/// # Safety
/// FEAT_I8MM available; `t.kc` is a multiple of 8; `t.a` points at `RP` row pairs (stride
/// `t.a_stride`) of at least `2·t.kc` bytes; `t.b` at `P` panels (stride `t.panel_bytes`)
/// of at least `8·t.kc` bytes; `t.acc` at `t.rows ∈ (2·RP − 2, 2·RP]` rows (stride
/// `t.acc_ld ≥ 8·P`) of `8·P` i32.
#[target_feature(enable = "neon,i8mm")]
unsafe fn tile<const RP: usize, const P: usize>(t: &TileArgs) {
    let mut c = [[[vdupq_n_s32(0); 4]; P]; RP];
    // SAFETY: every offset below stays inside the extents of the function's contract
    // (octet `g < kc / 8`: A bytes `16g..16g + 16` of each pair, B bytes `64g..64g + 64` of
    // each panel; stores only to rows `< t.rows`).
    unsafe {
        for g in 0..t.kc / 8 {
            let mut av = [vdupq_n_u8(0); RP];
            for rp in 0..RP {
                av[rp] = vld1q_u8(t.a.add(rp * t.a_stride + 16 * g));
            }
            for p in 0..P {
                for j in 0..4 {
                    let bv = vld1q_s8(t.b.add(p * t.panel_bytes + 64 * g + 16 * j));
                    for rp in 0..RP {
                        c[rp][p][j] = usmmla(c[rp][p][j], av[rp], bv);
                    }
                }
            }
        }
        for rp in 0..RP {
            for p in 0..P {
                for h in 0..2 {
                    let left = vreinterpretq_s64_s32(c[rp][p][2 * h]);
                    let right = vreinterpretq_s64_s32(c[rp][p][2 * h + 1]);
                    let col = 8 * p + 4 * h;
                    let even = vreinterpretq_s32_s64(vzip1q_s64(left, right));
                    store(t.acc.add(2 * rp * t.acc_ld + col), even, t.accumulate);
                    if 2 * rp + 1 < t.rows {
                        let odd = vreinterpretq_s32_s64(vzip2q_s64(left, right));
                        store(t.acc.add((2 * rp + 1) * t.acc_ld + col), odd, t.accumulate);
                    }
                }
            }
        }
    }
}
