//! AVX2 saturating family (opt-in): `vpmaddubsw` + `vpmaddwd(ones)` + `vpaddd`, exactly
//! fbgemm's acc32 inner loop on CPUs without VNNI. Each `vpmaddubsw` lane saturates
//! `a[k]·w[k] + a[k+1]·w[k+1]` (even k) to i16, so results equal fbgemm's on AVX2-only
//! machines bit for bit. With activations in 0..=127 (`reduce_range`) no pair can
//! saturate (`2·127·128 = 32512`), so it is then exact and faster than the widening kernel.
//! Weights `[K/4][8][4]` per panel; 4 rows × 2 ymm tiles.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;
use std::sync::OnceLock;

use super::epilogue::{self, CpuChecked};
use super::{TileFn, run_tile};
use crate::gemm::kind::KernelKind;
use crate::gemm::microkernel::{Microkernel, PanelLayout, TileJob, TileShape};
use crate::gemm::pipeline::{OutRow, RowFix, Stage};

const LAYOUT: PanelLayout = PanelLayout { nr: 8, kr: 4 };
const MAX: TileShape = TileShape { rows: 4, panels: 8 };

/// The family's kernel object; exists only if the CPU has AVX2 and FMA.
pub(crate) struct Avx2SaturatingKernel {
    cpu: CpuChecked,
}

/// The safe constructor: `Some` only after the CPU check.
pub(crate) fn kernel() -> Option<&'static dyn Microkernel> {
    static KERNEL: OnceLock<Option<Avx2SaturatingKernel>> = OnceLock::new();
    KERNEL
        .get_or_init(|| CpuChecked::new().map(|cpu| Avx2SaturatingKernel { cpu }))
        .as_ref()
        .map(|k| k as &dyn Microkernel)
}

const TABLE: [[TileFn; 8]; 4] = tile_table!(tile; 1, 2, 3, 4);

impl Microkernel for Avx2SaturatingKernel {
    fn kind(&self) -> KernelKind {
        KernelKind::Avx2Saturating
    }

    fn layout(&self) -> PanelLayout {
        LAYOUT
    }

    fn tile_shape(&self, m: usize) -> TileShape {
        match m {
            0..=1 => TileShape { rows: 1, panels: 6 },
            2 => TileShape { rows: 2, panels: 3 },
            _ => TileShape { rows: 4, panels: 2 },
        }
    }

    fn a_row_stride(&self, kp: usize) -> usize {
        kp + 64
    }

    fn compute(&self, job: TileJob<'_>) {
        // SAFETY: `self` exists only after the CPU check in `kernel()`, so the CPU has the
        // features `TABLE`'s tiles are compiled for.
        unsafe { run_tile(self, &TABLE, MAX, 1, job) }
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

/// One `R × 8P` tile over all of K.
///
/// # Safety
/// AVX2 available; `kc` is a multiple of 4; `a` points at `R` rows (stride `a_stride`
/// bytes) of at least `kc` bytes each; `b` at `P` panels (stride `panel_bytes`) of at
/// least `8·kc` bytes each; `acc` at `R` rows (stride `acc_ld ≥ 8·P`) of `8·P` i32.
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const R: usize, const P: usize>(
    a: *const u8,
    a_stride: usize,
    b: *const i8,
    panel_bytes: usize,
    kc: usize,
    acc: *mut i32,
    acc_ld: usize,
    accumulate: bool,
) {
    let ones = _mm256_set1_epi16(1);
    let mut c = [[_mm256_setzero_si256(); P]; R];
    let mut bv = [_mm256_setzero_si256(); P];
    // SAFETY: every offset below stays inside the extents of the function's contract.
    unsafe {
        if accumulate {
            for r in 0..R {
                for p in 0..P {
                    c[r][p] = _mm256_loadu_si256(acc.add(r * acc_ld + 8 * p).cast());
                }
            }
        }
        for g in 0..kc / 4 {
            for p in 0..P {
                bv[p] = _mm256_loadu_si256(b.add(p * panel_bytes + 32 * g).cast());
            }
            for r in 0..R {
                let av =
                    _mm256_set1_epi32(a.add(r * a_stride + 4 * g).cast::<i32>().read_unaligned());
                for p in 0..P {
                    let pairs = _mm256_maddubs_epi16(av, bv[p]);
                    c[r][p] = _mm256_add_epi32(c[r][p], _mm256_madd_epi16(pairs, ones));
                }
            }
        }
        for r in 0..R {
            for p in 0..P {
                _mm256_storeu_si256(acc.add(r * acc_ld + 8 * p).cast(), c[r][p]);
            }
        }
    }
}
