//! AVX-512 VNNI family: `vpdpbusd` on zmm. Weights are packed in 48-column panels
//! `[K/4][48][4]` (three zmm per k-quad, contiguous, so one stream per tile and no L1 set
//! aliasing between the three column vectors); A is read as broadcast dwords of 4
//! consecutive k. Tiles: 8 rows × 48 columns (24 accumulators) for M ≥ 8, 7 × 48 for
//! M = 5..7, and M ≤ 4 rows × 96 columns (two weight streams) for small M, where the weights
//! stream once. The last panel's zmm vectors beyond the columns read back (zero padding) are
//! neither loaded nor stored. (Every instance used keeps its accumulators in registers; checked
//! in the disassembly: R·P·3 + 3·P + 1 ≤ 32 zmm.)
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;
use std::sync::OnceLock;

use super::epilogue::{self, CpuChecked};
use super::{TileFn, run_tile};
use crate::gemm::kind::KernelKind;
use crate::gemm::microkernel::{Microkernel, PanelLayout, TileJob, TileShape};
use crate::gemm::pipeline::{OutRow, RowFix, Stage};

/// zmm vectors per panel.
const V: usize = 3;
const LAYOUT: PanelLayout = PanelLayout { nr: 16 * V, kr: 4 };
/// The largest tile (also the bound of the tiles `amx` runs through [`TABLES`]).
pub(super) const MAX: TileShape = TileShape { rows: 8, panels: 2 };

/// The family's kernel object; exists only if the CPU has AVX-512 F/BW/VL/VNNI (+AVX2/FMA).
pub(crate) struct Avx512VnniKernel {
    cpu: CpuChecked,
}

/// The safe constructor: `Some` only after the CPU check.
pub(crate) fn kernel() -> Option<&'static dyn Microkernel> {
    static KERNEL: OnceLock<Option<Avx512VnniKernel>> = OnceLock::new();
    KERNEL
        .get_or_init(|| CpuChecked::new_wide().map(|cpu| Avx512VnniKernel { cpu }))
        .as_ref()
        .map(|k| k as &dyn Microkernel)
}

/// `TABLES[vl − 1][rows − 1][panels − 1]`: tiles whose last panel has `vl` zmm of columns.
/// (The `amx` family runs its small tiles with these too: same layout, same A rows.)
pub(super) const TABLES: [[[TileFn; 2]; 8]; V] = [table::<1>(), table::<2>(), table::<3>()];

const fn table<const VL: usize>() -> [[TileFn; 2]; 8] {
    [
        [tile::<1, 1, VL>, tile::<1, 2, VL>],
        [tile::<2, 1, VL>, tile::<2, 2, VL>],
        [tile::<3, 1, VL>, tile::<3, 2, VL>],
        [tile::<4, 1, VL>, tile::<4, 2, VL>],
        [tile::<5, 1, VL>, tile::<5, 2, VL>],
        [tile::<6, 1, VL>, tile::<6, 2, VL>],
        [tile::<7, 1, VL>, tile::<7, 2, VL>],
        [tile::<8, 1, VL>, tile::<8, 2, VL>],
    ]
}

impl Microkernel for Avx512VnniKernel {
    fn kind(&self) -> KernelKind {
        KernelKind::Avx512Vnni
    }

    fn layout(&self) -> PanelLayout {
        LAYOUT
    }

    fn tile_shape(&self, m: usize) -> TileShape {
        tile_shape(m)
    }

    fn a_row_stride(&self, kp: usize) -> usize {
        kp + 64
    }

    fn compute(&self, job: TileJob<'_>) {
        let vl = last_panel_vectors(&job);
        // SAFETY: `self` exists only after the CPU check in `kernel()`, so the CPU has the
        // features `TABLES`' tiles are compiled for.
        unsafe { run_tile(self, &TABLES[vl - 1], MAX, 1, job) }
    }

    fn finish(&self, stage: &Stage, n0: usize, raw: &[i32], out: OutRow<'_>) {
        epilogue::finish(stage, n0, raw, None, out, self.cpu);
    }

    fn finish_fixed(
        &self,
        stage: &Stage,
        n0: usize,
        acc: &mut [i32],
        fix: RowFix<'_>,
        out: OutRow<'_>,
    ) {
        epilogue::finish_fixed(stage, n0, acc, fix, out, self.cpu);
    }
}

/// The tile for a GEMM of `m` rows: 8 × 48 for M ≥ 8, 7 × 48 for M = 5..7, M ≤ 4 rows × 96.
pub(super) fn tile_shape(m: usize) -> TileShape {
    match m {
        0..=2 => TileShape {
            rows: m.max(1),
            panels: 2,
        },
        3..=4 => TileShape { rows: 4, panels: 2 },
        5..=7 => TileShape { rows: 7, panels: 1 },
        _ => TileShape { rows: 8, panels: 1 },
    }
}

/// The last panel's zmm vectors that hold any of the columns read back: the rest are zero
/// padding (N = 1024: 16 of the last 48 columns), neither loaded nor stored.
pub(super) fn last_panel_vectors(job: &TileJob<'_>) -> usize {
    let last = job.cols.saturating_sub((job.panels - 1) * LAYOUT.nr);
    last.div_ceil(16).clamp(1, V)
}

/// One `R × 48P` tile over one K block, of which the last panel computes (and stores) only
/// its first `VL` zmm of columns.
///
/// # Safety
/// AVX-512 F/BW/VNNI available; `kc` is a multiple of 4; `a` points at `R` rows (stride
/// `a_stride` bytes) of at least `kc` bytes each; `b` at `P` panels (stride `panel_bytes`) of
/// at least `48·kc` bytes each; `acc` at `R` rows (stride `acc_ld ≥ 48·P`) of `48·P` i32.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const R: usize, const P: usize, const VL: usize>(
    a: *const u8,
    a_stride: usize,
    b: *const i8,
    panel_bytes: usize,
    kc: usize,
    acc: *mut i32,
    acc_ld: usize,
    accumulate: bool,
) {
    let mut c = [[[_mm512_setzero_si512(); V]; P]; R];
    let mut bv = [[_mm512_setzero_si512(); V]; P];
    // SAFETY: every offset below stays inside the extents of the function's contract.
    unsafe {
        let vecs = |p: usize| if p == P - 1 { VL } else { V };
        if accumulate {
            for r in 0..R {
                for p in 0..P {
                    for v in 0..vecs(p) {
                        c[r][p][v] =
                            _mm512_loadu_si512(acc.add(r * acc_ld + 48 * p + 16 * v).cast());
                    }
                }
            }
        }
        for g in 0..kc / 4 {
            for p in 0..P {
                for v in 0..vecs(p) {
                    bv[p][v] = _mm512_loadu_si512(b.add(p * panel_bytes + 192 * g + 64 * v).cast());
                }
            }
            for r in 0..R {
                let av =
                    _mm512_set1_epi32(a.add(r * a_stride + 4 * g).cast::<i32>().read_unaligned());
                for p in 0..P {
                    for v in 0..vecs(p) {
                        c[r][p][v] = _mm512_dpbusd_epi32(c[r][p][v], av, bv[p][v]);
                    }
                }
            }
        }
        for r in 0..R {
            for p in 0..P {
                for v in 0..vecs(p) {
                    _mm512_storeu_si512(acc.add(r * acc_ld + 48 * p + 16 * v).cast(), c[r][p][v]);
                }
            }
        }
    }
}
