//! The portable scalar kernel family (runs everywhere; distinct code from the oracle).

use super::kind::KernelKind;
use super::microkernel::{Microkernel, PanelLayout, TileJob, TileShape};

const LAYOUT: PanelLayout = PanelLayout { nr: 8, kr: 1 };

/// Portable kernel: `[K][8]` panels, 4×2-panel tiles.
pub(crate) struct ScalarKernel;

impl Microkernel for ScalarKernel {
    fn kind(&self) -> KernelKind {
        KernelKind::Scalar
    }

    fn layout(&self) -> PanelLayout {
        LAYOUT
    }

    fn tile_shape(&self, _m: usize) -> TileShape {
        TileShape { rows: 4, panels: 2 }
    }

    fn compute(&self, job: TileJob<'_>) {
        let kp = job.kp;
        for r in 0..job.rows {
            let a = &job.a[r * kp..(r + 1) * kp];
            for p in 0..job.panels {
                let panel = &job.b[p * kp * LAYOUT.nr..(p + 1) * kp * LAYOUT.nr];
                let mut sums = [0i32; LAYOUT.nr];
                for (&av, bk) in a.iter().zip(panel.chunks_exact(LAYOUT.nr)) {
                    for (s, &bv) in sums.iter_mut().zip(bk) {
                        *s = s.wrapping_add(i32::from(av) * i32::from(bv));
                    }
                }
                let at = r * job.acc_ld + p * LAYOUT.nr;
                job.acc[at..at + LAYOUT.nr].copy_from_slice(&sums);
            }
        }
    }
}
