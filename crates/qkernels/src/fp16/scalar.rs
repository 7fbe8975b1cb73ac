//! The portable tile: `f32::mul_add` chains over an f32 panel block (the f16 panels are
//! widened to f32 first, exactly); a hardware FMA on aarch64, a correctly rounded libm `fmaf`
//! on x86-64 without FMA.

use super::NR;

/// `acc[r·16 + j] = Σ_k fma chain x[r·ldx + k]·w[k·16 + j]` for `rows` rows and `kc` k,
/// overwriting `acc` (`rows·16` values).
pub(super) fn tile(x: &[f32], ldx: usize, rows: usize, w: &[f32], kc: usize, acc: &mut [f32]) {
    for (r, a) in acc.chunks_exact_mut(NR).take(rows).enumerate() {
        a.fill(0.0);
        let xr = &x[r * ldx..r * ldx + kc];
        for (&xv, wk) in xr.iter().zip(w.chunks_exact(NR)) {
            for (c, &wv) in a.iter_mut().zip(wk) {
                *c = xv.mul_add(wv, *c);
            }
        }
    }
}
