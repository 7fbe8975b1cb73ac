//! The portable fp16 tile: the K block of one panel widened to f32 once, then `f32::mul_add`
//! chains (a hardware FMA on aarch64; a correctly rounded libm `fmaf` on x86-64 without FMA).

use half::f16;

use super::NR;
use crate::float::widen_f16_slice;

/// `acc[r·16 + j] = Σ_k fma chain x[r·ldx + k]·w[k·16 + j]` for `rows` rows and `kc` k,
/// overwriting `acc` (`rows·16` values). `wide` is scratch for the widened panel block.
pub(super) fn tile(
    x: &[f32],
    ldx: usize,
    rows: usize,
    w: &[f16],
    kc: usize,
    acc: &mut [f32],
    wide: &mut Vec<f32>,
) {
    wide.resize(kc * NR, 0.0);
    widen_f16_slice(&w[..kc * NR], wide);
    for (r, a) in acc.chunks_exact_mut(NR).take(rows).enumerate() {
        a.fill(0.0);
        let xr = &x[r * ldx..r * ldx + kc];
        for (&xv, wk) in xr.iter().zip(wide.chunks_exact(NR)) {
            for (c, &wv) in a.iter_mut().zip(wk) {
                *c = xv.mul_add(wv, *c);
            }
        }
    }
}
