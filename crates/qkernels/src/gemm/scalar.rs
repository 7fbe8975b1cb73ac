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
        job.assert_valid(LAYOUT, job.rows * job.kp, self.tile_shape(0));
        let (kp, k0, kc) = (job.kp, job.k0, job.kc);
        for r in 0..job.rows {
            let a = &job.a[r * kp + k0..r * kp + k0 + kc];
            for p in 0..job.panels {
                let panel = &job.b[p * kp * LAYOUT.nr..(p + 1) * kp * LAYOUT.nr];
                let block = &panel[k0 * LAYOUT.nr..(k0 + kc) * LAYOUT.nr];
                let at = r * job.acc_ld + p * LAYOUT.nr;
                let sums = &mut job.acc[at..at + LAYOUT.nr];
                if !job.accumulate {
                    sums.fill(0);
                }
                for (&av, bk) in a.iter().zip(block.chunks_exact(LAYOUT.nr)) {
                    for (s, &bv) in sums.iter_mut().zip(bk) {
                        *s = s.wrapping_add(i32::from(av) * i32::from(bv));
                    }
                }
            }
        }
    }
}
