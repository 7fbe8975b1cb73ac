//! The portable tile: `f32::mul_add` chains (a hardware FMA on aarch64, a correctly rounded
//! libm `fmaf` on x86-64 without FMA), in the oracle's order.

use super::NC;

/// `acc[r·16 + v] = Σ_k fma chain w[k·rows + r] · panel[k·16 + v]` for `rows` rows and
/// `cols ≤ 16` columns `v`, overwriting those entries.
///
/// Panics if `panel` is shorter than `k · 16` or `w` than `k · rows` (the driver's layout
/// guarantees neither happens).
pub(super) fn tile(panel: &[f32], k: usize, w: &[f32], rows: usize, cols: usize, acc: &mut [f32]) {
    for r in 0..rows {
        let a = &mut acc[r * NC..r * NC + cols];
        a.fill(0.0);
        for (kk, b) in panel[..k * NC].chunks_exact(NC).enumerate() {
            let wv = w[kk * rows + r];
            for (c, &v) in a.iter_mut().zip(b) {
                *c = wv.mul_add(v, *c);
            }
        }
    }
}
