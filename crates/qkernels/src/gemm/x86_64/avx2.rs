//! AVX2 exact family: both operands widened to i16 and multiplied with `vpmaddwd`, which sums
//! pairs of i16 products exactly into i32 (no saturation for any u8 × i8 input). Weights
//! `[K/2][8][2]` per panel, sign-extended with `vpmovsxbw` as they are loaded; the tile's
//! activations are packed once as u16 so each k-pair is one broadcast dword. 6 rows × 2 ymm.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;
use std::sync::OnceLock;

use super::epilogue::{self, CpuChecked};
use super::{TileFn, run_tile};
use crate::gemm::kind::KernelKind;
use crate::gemm::microkernel::{Microkernel, PanelLayout, TileJob, TileShape};
use crate::gemm::pipeline::{OutRow, RowFix, Stage};

const LAYOUT: PanelLayout = PanelLayout { nr: 8, kr: 2 };
const MAX: TileShape = TileShape { rows: 6, panels: 8 };

/// The family's kernel object; exists only if the CPU has AVX2 and FMA.
pub(crate) struct Avx2Kernel {
    cpu: CpuChecked,
}

/// The safe constructor: `Some` only after the CPU check.
pub(crate) fn kernel() -> Option<&'static dyn Microkernel> {
    static KERNEL: OnceLock<Option<Avx2Kernel>> = OnceLock::new();
    KERNEL
        .get_or_init(|| CpuChecked::new().map(|cpu| Avx2Kernel { cpu }))
        .as_ref()
        .map(|k| k as &dyn Microkernel)
}

const TABLE: [[TileFn; 8]; 6] = tile_table!(tile; 1, 2, 3, 4, 5, 6);

impl Microkernel for Avx2Kernel {
    fn kind(&self) -> KernelKind {
        KernelKind::Avx2
    }

    fn layout(&self) -> PanelLayout {
        LAYOUT
    }

    fn tile_shape(&self, m: usize) -> TileShape {
        match m {
            0..=1 => TileShape { rows: 1, panels: 8 },
            2 => TileShape { rows: 2, panels: 4 },
            3..=4 => TileShape { rows: 4, panels: 2 },
            _ => TileShape { rows: 6, panels: 2 },
        }
    }

    fn a_row_stride(&self, kp: usize) -> usize {
        2 * kp + 64
    }

    fn pack_a(&self, a: &[u8], lda: usize, rows: usize, k: usize, kp: usize, dst: &mut [u8]) {
        for (r, d) in dst
            .chunks_exact_mut(self.a_row_stride(kp))
            .take(rows)
            .enumerate()
        {
            let (vals, pad) = d.split_at_mut(2 * k);
            for (pair, &x) in vals.chunks_exact_mut(2).zip(&a[r * lda..r * lda + k]) {
                pair.copy_from_slice(&u16::from(x).to_le_bytes());
            }
            pad.fill(0);
        }
    }

    fn compute(&self, job: TileJob<'_>) {
        // SAFETY: `self` exists only after the CPU check in `kernel()`, so the CPU has the
        // features `TABLE`'s tiles are compiled for.
        unsafe { run_tile(self, &TABLE, MAX, 2, job) }
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
/// AVX2 available; `kc` is a multiple of 2; `a` points at `R` rows (stride `a_stride`
/// bytes) of at least `kc` little-endian u16 values each; `b` at `P` panels (stride `panel_bytes`) of at
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
        for g in 0..kc / 2 {
            for p in 0..P {
                let raw = _mm_loadu_si128(b.add(p * panel_bytes + 16 * g).cast());
                bv[p] = _mm256_cvtepi8_epi16(raw);
            }
            for r in 0..R {
                let av =
                    _mm256_set1_epi32(a.add(r * a_stride + 4 * g).cast::<i32>().read_unaligned());
                for p in 0..P {
                    c[r][p] = _mm256_add_epi32(c[r][p], _mm256_madd_epi16(av, bv[p]));
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
