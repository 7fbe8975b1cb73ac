//! AVX-512 VNNI family: `vpdpbusd` on zmm. Weights `[K/4][16][4]` per panel (one zmm per
//! k-quad), A read as broadcast dwords of 4 consecutive k, up to 8 rows × 3 zmm (24
//! accumulators) for large M and up to 8 zmm wide for M ≤ 2 (the weights stream once).
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;
use std::sync::OnceLock;

use super::TileFn;
use super::epilogue::{self, CpuChecked};
use crate::gemm::kind::KernelKind;
use crate::gemm::microkernel::{Microkernel, PanelLayout, TileJob, TileShape};
use crate::gemm::pipeline::{OutRow, Stage};
use crate::isa::Isa;

const LAYOUT: PanelLayout = PanelLayout { nr: 16, kr: 4 };
const MAX: TileShape = TileShape { rows: 8, panels: 8 };

/// The family's kernel object; exists only if the CPU has AVX-512 F/BW/VL/VNNI (+AVX2/FMA).
pub(crate) struct Avx512VnniKernel {
    cpu: CpuChecked,
}

/// The safe constructor: `Some` only after the CPU check.
pub(crate) fn kernel() -> Option<&'static dyn Microkernel> {
    static KERNEL: OnceLock<Option<Avx512VnniKernel>> = OnceLock::new();
    KERNEL
        .get_or_init(|| {
            Isa::Avx512Vnni
                .is_supported()
                .then(CpuChecked::new)
                .flatten()
                .map(|cpu| Avx512VnniKernel { cpu })
        })
        .as_ref()
        .map(|k| k as &dyn Microkernel)
}

const TABLE: [[TileFn; 8]; 8] = tile_table!(tile; 1, 2, 3, 4, 5, 6, 7, 8);

impl Microkernel for Avx512VnniKernel {
    fn kind(&self) -> KernelKind {
        KernelKind::Avx512Vnni
    }

    fn layout(&self) -> PanelLayout {
        LAYOUT
    }

    fn tile_shape(&self, m: usize) -> TileShape {
        match m {
            0..=2 => TileShape {
                rows: m.max(1),
                panels: 8,
            },
            3..=4 => TileShape { rows: 4, panels: 4 },
            5..=7 => TileShape { rows: 7, panels: 3 },
            _ => TileShape { rows: 8, panels: 3 },
        }
    }

    fn compute(&self, job: TileJob<'_>) {
        job.assert_valid(LAYOUT, job.rows * job.kp, MAX);
        let f = TABLE[job.rows - 1][job.panels - 1];
        let panel_bytes = job.kp * LAYOUT.nr;
        // SAFETY: `self` exists only after the AVX-512 VNNI check in `kernel()`; the lengths
        // the tile reads and writes (rows·kp of A, panels·panel_bytes of B, rows·acc_ld of
        // acc with acc_ld ≥ 16·panels) were asserted by `assert_valid`.
        unsafe {
            f(
                job.a.as_ptr(),
                job.kp,
                job.b.as_ptr(),
                panel_bytes,
                job.acc.as_mut_ptr(),
                job.acc_ld,
            )
        }
    }

    fn finish(&self, stage: &Stage, n0: usize, raw: &[i32], out: OutRow<'_>) {
        epilogue::finish(stage, n0, raw, out, self.cpu);
    }
}

/// One `R × 16P` tile over all of K.
///
/// # Safety
/// AVX-512 F/BW/VNNI available; `a` holds `R` rows of `kp` bytes (`kp % 4 == 0`), `b` holds
/// `P` panels of `panel_bytes = 16·kp` bytes, `acc` holds `R` rows of `acc_ld ≥ 16·P` i32.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile<const R: usize, const P: usize>(
    a: *const u8,
    kp: usize,
    b: *const i8,
    panel_bytes: usize,
    acc: *mut i32,
    acc_ld: usize,
) {
    let mut c = [[_mm512_setzero_si512(); P]; R];
    let mut bv = [_mm512_setzero_si512(); P];
    // SAFETY: every offset below stays inside the extents of the function's contract:
    // A at r·kp + 4g + 4 ≤ R·kp, B at p·panel_bytes + 64g + 64 ≤ P·panel_bytes, acc rows.
    unsafe {
        for g in 0..kp / 4 {
            for p in 0..P {
                bv[p] = _mm512_loadu_si512(b.add(p * panel_bytes + 64 * g).cast());
            }
            for r in 0..R {
                let av = _mm512_set1_epi32(a.add(r * kp + 4 * g).cast::<i32>().read_unaligned());
                for p in 0..P {
                    c[r][p] = _mm512_dpbusd_epi32(c[r][p], av, bv[p]);
                }
            }
        }
        for r in 0..R {
            for p in 0..P {
                _mm512_storeu_si512(acc.add(r * acc_ld + 16 * p).cast(), c[r][p]);
            }
        }
    }
}
