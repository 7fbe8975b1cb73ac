//! AVX2 saturating family (opt-in): `vpmaddubsw` + `vpmaddwd(ones)` + `vpaddd`, exactly
//! fbgemm's acc32 inner loop on CPUs without VNNI. Each `vpmaddubsw` lane saturates
//! `a[k]·w[k] + a[k+1]·w[k+1]` (even k) to i16, so results equal fbgemm's on AVX2-only
//! machines bit for bit. With activations in 0..=127 (`reduce_range`) no pair can
//! saturate (`2·127·128 = 32512`), so it is then exact and faster than the widening kernel.
//! Weights `[K/4][8][4]` per panel; 2 rows × 2 ymm tiles (1 row × 6 ymm for one-row GEMMs).
//!
//! ## Widening without a second multiply
//! fbgemm widens each `vpmaddubsw` result with `vpmaddwd(·, 1)`, a second instruction on the
//! integer-multiply pipe, which Zen 2 has only one of: 16 multiply-accumulates per cycle.
//! This kernel widens with ALU instructions instead. View a `vpmaddubsw` result as i32 lanes
//! `p = hi·2¹⁶ + lo_u`, where `hi` and `lo` are the two signed i16 pair sums and `lo_u` is
//! `lo`'s bit pattern. Flipping bit 15 (`p ^ 0x8000`) gives `p' = hi·2¹⁶ + lo + 2¹⁵`, and
//! `p' >> 16` (arithmetic) is exactly `hi`. Over `s` steps the kernel keeps `V = Σ p'` and
//! `H = Σ hi` (wrapping i32), and the wanted `Σ (hi + lo) = V − 65535·H − 2¹⁵·s`, modulo 2³²
//! like every sum here: bit-identical to `vpmaddwd(·, 1)` + `vpaddd`, for saturated pairs
//! too. One multiply, one shift and three ALU instructions per 32 products instead of two
//! multiplies; a register-only loop on Zen 2 runs it about 1.25× faster.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;
use std::sync::OnceLock;

use super::epilogue::{self, CpuChecked};
use super::{TileFn, run_tile};
use crate::gemm::kind::KernelKind;
use crate::gemm::microkernel::{Microkernel, PanelLayout, TileJob, TileShape};
use crate::gemm::pipeline::{OutRow, RowFix, Stage};

const LAYOUT: PanelLayout = PanelLayout { nr: 8, kr: 4 };
const MAX: TileShape = TileShape { rows: 2, panels: 6 };

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

const TABLE: [[TileFn; 8]; 2] = tile_table!(tile; 1, 2);

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
            _ => TileShape { rows: 2, panels: 2 },
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

/// One `R × 8P` tile over the K block (see the module docs for the widening).
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
    let flip = _mm256_set1_epi32(0x8000);
    // V = Σ p' and H = Σ hi per lane (module docs).
    let mut v = [[_mm256_setzero_si256(); P]; R];
    let mut h = [[_mm256_setzero_si256(); P]; R];
    let steps = kc / 4;
    // SAFETY: every offset below stays inside the extents of the function's contract.
    unsafe {
        for g in 0..steps {
            let mut av = [_mm256_setzero_si256(); R];
            for r in 0..R {
                av[r] =
                    _mm256_set1_epi32(a.add(r * a_stride + 4 * g).cast::<i32>().read_unaligned());
            }
            for p in 0..P {
                let bv = _mm256_loadu_si256(b.add(p * panel_bytes + 32 * g).cast());
                for r in 0..R {
                    let pairs = _mm256_xor_si256(_mm256_maddubs_epi16(av[r], bv), flip);
                    v[r][p] = _mm256_add_epi32(v[r][p], pairs);
                    h[r][p] = _mm256_add_epi32(h[r][p], _mm256_srai_epi32::<16>(pairs));
                }
            }
        }
        // Σ (hi + lo) = V − 65536·H + H − 2¹⁵·steps (wrapping).
        let bias = _mm256_set1_epi32((steps as i32).wrapping_mul(1 << 15));
        for r in 0..R {
            for p in 0..P {
                let hv = h[r][p];
                let mut c = _mm256_sub_epi32(
                    _mm256_add_epi32(_mm256_sub_epi32(v[r][p], _mm256_slli_epi32::<16>(hv)), hv),
                    bias,
                );
                let at = acc.add(r * acc_ld + 8 * p);
                if accumulate {
                    c = _mm256_add_epi32(c, _mm256_loadu_si256(at.cast()));
                }
                _mm256_storeu_si256(at.cast(), c);
            }
        }
    }
}
