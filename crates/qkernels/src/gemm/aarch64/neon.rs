//! Baseline NEON family: widening multiply-accumulate, exact for every u8 × i8 product.
//!
//! Weights are packed in 8-column panels `[K][8]` (kr = 1). A stays row-major u8. Per 8 k, each
//! row's 8 activations are widened once to i16 (`uxtl`, 0..=255 fits), each k's 8 weights are
//! widened to i16 (`sxtl`), and `smlal`/`smlal2` by lane add the 8 products of one activation
//! into two i32×4 accumulators: no i16 sums, so nothing can saturate (QNNPACK's mlal-lane
//! scheme). K tails use `smlal` by a scalar. Tiles: 8 rows × 8 columns, 4 × 16 for M ≤ 4,
//! 2 × 32 for M ≤ 2 (16 accumulators each).
#![allow(clippy::needless_range_loop)]

use std::arch::aarch64::*;

use super::{MAX_TILE, TileArgs, TileFn, epilogue, store, tile_shape_8x8, tile_table};
use crate::gemm::kind::KernelKind;
use crate::gemm::microkernel::{Microkernel, PanelLayout, TileJob, TileShape};
use crate::gemm::pipeline::{OutRow, RowFix, Stage};
use crate::isa::Isa;

const LAYOUT: PanelLayout = PanelLayout { nr: 8, kr: 1 };

/// The family's kernel object; handed out only after the NEON check.
pub(crate) struct NeonKernel {
    _cpu_checked: (),
}

static KERNEL: NeonKernel = NeonKernel { _cpu_checked: () };

/// The safe constructor: `Some` only if the CPU has Advanced SIMD.
pub(crate) fn kernel() -> Option<&'static dyn Microkernel> {
    Isa::Neon
        .is_supported()
        .then_some(&KERNEL as &dyn Microkernel)
}

const TABLE: [[TileFn; 4]; 8] = tile_table!(tile; 1, 2, 3, 4, 5, 6, 7, 8);

impl Microkernel for NeonKernel {
    fn kind(&self) -> KernelKind {
        KernelKind::Neon
    }

    fn layout(&self) -> PanelLayout {
        LAYOUT
    }

    fn tile_shape(&self, m: usize) -> TileShape {
        tile_shape_8x8(m)
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
        // SAFETY: `self` exists only after the NEON check in `kernel()`; `assert_valid`
        // checked that the K block lies inside the packed A (rows of `kp` bytes) and B
        // (panels of `8·kp` bytes) and that `acc` holds the tile, which are exactly the
        // extents the tile reads and writes.
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

/// One `R × 8P` tile over one K block.
///
/// # Safety
/// `t.a` points at `R` rows (stride `t.a_stride`) of at least `t.kc` bytes; `t.b` at `P`
/// panels (stride `t.panel_bytes`) of at least `8·t.kc` bytes; `t.acc` at `R` rows (stride
/// `t.acc_ld ≥ 8·P`) of `8·P` i32.
#[target_feature(enable = "neon")]
unsafe fn tile<const R: usize, const P: usize>(t: &TileArgs) {
    let mut c = [[[vdupq_n_s32(0); 2]; P]; R];
    let k8 = t.kc / 8 * 8;
    let pb = t.panel_bytes;
    let mut k = 0;
    // SAFETY: every offset below stays inside the extents of the function's contract
    // (A bytes `k..k + 8 ≤ kc` in the main loop and `k < kc` in the tail).
    unsafe {
        while k < k8 {
            let mut av = [vdupq_n_s16(0); R];
            for r in 0..R {
                let bytes = vld1_u8(t.a.add(r * t.a_stride + k));
                av[r] = vreinterpretq_s16_u16(vmovl_u8(bytes));
            }
            let b = t.b.add(8 * k);
            lane::<0, R, P>(&mut c, &av, b, pb);
            lane::<1, R, P>(&mut c, &av, b, pb);
            lane::<2, R, P>(&mut c, &av, b, pb);
            lane::<3, R, P>(&mut c, &av, b, pb);
            lane::<4, R, P>(&mut c, &av, b, pb);
            lane::<5, R, P>(&mut c, &av, b, pb);
            lane::<6, R, P>(&mut c, &av, b, pb);
            lane::<7, R, P>(&mut c, &av, b, pb);
            k += 8;
        }
        while k < t.kc {
            for p in 0..P {
                let bv = vmovl_s8(vld1_s8(t.b.add(p * pb + 8 * k)));
                for r in 0..R {
                    let x = i16::from(*t.a.add(r * t.a_stride + k));
                    c[r][p][0] = vmlal_n_s16(c[r][p][0], vget_low_s16(bv), x);
                    c[r][p][1] = vmlal_high_n_s16(c[r][p][1], bv, x);
                }
            }
            k += 1;
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

/// `c[r][p] += av[r][L] · widen(B[k + L, 8p..8p + 8])` for every row and panel.
///
/// # Safety
/// `b` points at k row `k` of the first panel; `b + p·pb + 8·L .. + 8` is readable for `p < P`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn lane<const L: i32, const R: usize, const P: usize>(
    c: &mut [[[int32x4_t; 2]; P]; R],
    av: &[int16x8_t; R],
    b: *const i8,
    pb: usize,
) {
    for p in 0..P {
        // SAFETY: in bounds by the function's contract.
        let bv = vmovl_s8(unsafe { vld1_s8(b.add(p * pb + 8 * L as usize)) });
        for r in 0..R {
            c[r][p][0] = vmlal_laneq_s16::<L>(c[r][p][0], vget_low_s16(bv), av[r]);
            c[r][p][1] = vmlal_high_laneq_s16::<L>(c[r][p][1], bv, av[r]);
        }
    }
}
