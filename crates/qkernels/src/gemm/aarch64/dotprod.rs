//! dotprod family: `sdot` by lane on activations shifted to i8.
//!
//! `sdot` multiplies i8 × i8, so packing A XORs every byte with 0x80 (`a − 128` as i8) and
//! the kernel declares `a_offset() = 128`: the driver adds `128·Σ_k W[n,k]` back into the
//! per-column correction, with no extra pass over the weights (their sums are packed). This
//! avoids `usdot`, which belongs to FEAT_I8MM, so the family runs on every dotprod core.
//!
//! Weights are packed in 8-column panels `[K/4][8][4]` (kr = 4): per k-quad, two 16-byte
//! vectors hold columns 0–3 and 4–7 with their 4 k each. A rows are loaded 16 bytes (4
//! k-quads) at a time and each quad is broadcast by the by-lane form
//! `sdot acc.4s, b.16b, a.4b[lane]`. Packed A rows are padded to a multiple of 16 plus 16
//! bytes so the K tail's loads stay in bounds. Tiles: 8 × 8, 4 × 16 for M ≤ 4, 2 × 32 for
//! M ≤ 2 (16 accumulators each).
//!
//! The instruction goes through `asm!` inside a `#[target_feature(enable = "dotprod")]`
//! function because `vdotq_laneq_s32` is unstable on Rust 1.95.
#![allow(clippy::needless_range_loop)]

use std::arch::aarch64::*;
use std::arch::asm;

use super::{MAX_TILE, TileArgs, TileFn, epilogue, store, tile_shape_8x8, tile_table};
use crate::gemm::kind::KernelKind;
use crate::gemm::microkernel::{Microkernel, PanelLayout, TileJob, TileShape};
use crate::gemm::pipeline::{OutRow, RowFix, Stage};
use crate::isa::Isa;

const LAYOUT: PanelLayout = PanelLayout { nr: 8, kr: 4 };

/// The family's kernel object; handed out only after the NEON + dotprod check.
pub(crate) struct DotProdKernel {
    _cpu_checked: (),
}

static KERNEL: DotProdKernel = DotProdKernel { _cpu_checked: () };

/// The safe constructor: `Some` only if the CPU has Advanced SIMD and FEAT_DotProd.
pub(crate) fn kernel() -> Option<&'static dyn Microkernel> {
    Isa::DotProd
        .is_supported()
        .then_some(&KERNEL as &dyn Microkernel)
}

const TABLE: [[TileFn; 4]; 8] = tile_table!(tile; 1, 2, 3, 4, 5, 6, 7, 8);

impl Microkernel for DotProdKernel {
    fn kind(&self) -> KernelKind {
        KernelKind::DotProd
    }

    fn layout(&self) -> PanelLayout {
        LAYOUT
    }

    fn tile_shape(&self, m: usize) -> TileShape {
        tile_shape_8x8(m)
    }

    fn a_row_stride(&self, kp: usize) -> usize {
        kp.next_multiple_of(16) + 16
    }

    fn a_offset(&self) -> i32 {
        128
    }

    fn pack_a(&self, a: &[u8], lda: usize, rows: usize, k: usize, kp: usize, dst: &mut [u8]) {
        let stride = self.a_row_stride(kp);
        for (r, d) in dst.chunks_exact_mut(stride).take(rows).enumerate() {
            for (x, &y) in d[..k].iter_mut().zip(&a[r * lda..r * lda + k]) {
                *x = y ^ 0x80;
            }
            // Padding meets zero weights (or is never read), so its value is irrelevant.
            d[k..].fill(0);
        }
    }

    fn compute(&self, job: TileJob<'_>) {
        job.assert_valid(LAYOUT, self.a_tile_bytes(job.rows, job.kp), MAX_TILE);
        let f = TABLE[job.rows - 1][job.panels - 1];
        let args = TileArgs {
            a: job.a[job.k0..].as_ptr(),
            a_stride: self.a_row_stride(job.kp),
            b: job.b[job.k0 * LAYOUT.nr..].as_ptr(),
            panel_bytes: job.kp * LAYOUT.nr,
            kc: job.kc,
            acc: job.acc.as_mut_ptr(),
            acc_ld: job.acc_ld,
            rows: job.rows,
            accumulate: job.accumulate,
        };
        // SAFETY: `self` exists only after the dotprod check in `kernel()`; `assert_valid`
        // checked that the K block lies inside the packed B (panels of `8·kp` bytes) and
        // that `acc` holds the tile; A rows are `a_row_stride(kp) ≥ kp + 16` bytes apart,
        // rounded to 16, so the tile's 16-byte loads from `k0 + 16j < k0 + kc ≤ kp` stay
        // inside the row, and `assert_valid` checked the whole packed A is present.
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

/// `sdot acc.4s, b.16b, a.4b[L]`: lane `i` of `acc` gains `Σ_j b[4i + j]·a[4L + j]`.
#[inline]
#[target_feature(enable = "dotprod")]
fn sdot_lane<const L: i32>(acc: int32x4_t, b: int8x16_t, a: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: a register-only instruction (no memory, flags or stack); FEAT_DotProd is
    // enabled for this function, whose callers all run after the CPU check.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {b:v}.16b, {a:v}.4b[{l}]",
            acc = inout(vreg) acc,
            b = in(vreg) b,
            a = in(vreg) a,
            l = const L,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// One `R × 8P` tile over one K block.
///
/// # Safety
/// FEAT_DotProd available; `t.kc` is a multiple of 4; `t.a` points at `R` rows (stride
/// `t.a_stride`) readable for `t.kc` rounded up to 16 bytes; `t.b` at `P` panels (stride
/// `t.panel_bytes`) of at least `8·t.kc` bytes; `t.acc` at `R` rows (stride
/// `t.acc_ld ≥ 8·P`) of `8·P` i32.
#[target_feature(enable = "dotprod")]
unsafe fn tile<const R: usize, const P: usize>(t: &TileArgs) {
    let mut c = [[[vdupq_n_s32(0); 2]; P]; R];
    let quads = t.kc / 4;
    let pb = t.panel_bytes;
    let mut q = 0;
    // SAFETY: every offset below stays inside the extents of the function's contract: A
    // loads start at `4q < kc` and read 16 bytes (inside the rounded row), B reads quad `q`
    // (32 bytes per panel) only for `q < kc / 4`.
    unsafe {
        let load_a = |q: usize| {
            let mut av = [vdupq_n_s8(0); R];
            for r in 0..R {
                av[r] = vld1q_s8(t.a.add(r * t.a_stride + 4 * q).cast());
            }
            av
        };
        while q + 4 <= quads {
            let av = load_a(q);
            let b = t.b.add(32 * q);
            quad::<0, R, P>(&mut c, &av, b, pb);
            quad::<1, R, P>(&mut c, &av, b, pb);
            quad::<2, R, P>(&mut c, &av, b, pb);
            quad::<3, R, P>(&mut c, &av, b, pb);
            q += 4;
        }
        let rest = quads - q;
        if rest > 0 {
            let av = load_a(q);
            let b = t.b.add(32 * q);
            quad::<0, R, P>(&mut c, &av, b, pb);
            if rest > 1 {
                quad::<1, R, P>(&mut c, &av, b, pb);
            }
            if rest > 2 {
                quad::<2, R, P>(&mut c, &av, b, pb);
            }
        }
        for r in 0..R {
            for p in 0..P {
                let dst = t.acc.add(r * t.acc_ld + 8 * p);
                store(dst, c[r][p][0], t.accumulate);
                store(dst.add(4), c[r][p][1], t.accumulate);
            }
        }
    }
}

/// `c[r][p] += Σ_j B[quad L, 8p.., j]·av[r][4L + j]` for every row and panel.
///
/// # Safety
/// FEAT_DotProd available; `b + p·pb + 32·L .. + 32` is readable for `p < P`.
#[inline]
#[target_feature(enable = "dotprod")]
unsafe fn quad<const L: i32, const R: usize, const P: usize>(
    c: &mut [[[int32x4_t; 2]; P]; R],
    av: &[int8x16_t; R],
    b: *const i8,
    pb: usize,
) {
    for p in 0..P {
        let at = p * pb + 32 * L as usize;
        // SAFETY: in bounds by the function's contract.
        let (b0, b1) = unsafe { (vld1q_s8(b.add(at)), vld1q_s8(b.add(at + 16))) };
        for r in 0..R {
            c[r][p][0] = sdot_lane::<L>(c[r][p][0], b0, av[r]);
            c[r][p][1] = sdot_lane::<L>(c[r][p][1], b1, av[r]);
        }
    }
}
