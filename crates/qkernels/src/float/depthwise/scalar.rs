//! The portable row kernel: `f32::mul_add` chains (a hardware FMA on aarch64, a correctly
//! rounded libm `fmaf` on x86-64 without FMA), in the oracle's order.

use std::mem::MaybeUninit;

use super::Rows;

/// For every output `(r, o)` of `g`: `out[r·ldo + o] = bias`, then for each tap `t`
/// `out[r·ldo + o] = fma(w[t], src[base + r·stride + offs[t] + o], out[r·ldo + o])`.
///
/// Panics if a tap's run is outside `src`, `out` is too short or `w` is shorter than `offs`
/// (the driver's layout guarantees none happens).
pub(super) fn rows(
    src: &[f32],
    offs: &[usize],
    w: &[f32],
    bias: f32,
    g: Rows,
    out: &mut [MaybeUninit<f32>],
) {
    let mut row = vec![0.0f32; g.len];
    for r in 0..g.rows {
        row.fill(bias);
        for (&o, &wt) in offs.iter().zip(w) {
            let start = g.base + r * g.stride + o;
            for (acc, &v) in row.iter_mut().zip(&src[start..start + g.len]) {
                *acc = wt.mul_add(v, *acc);
            }
        }
        out[r * g.ldo..r * g.ldo + g.len].write_copy_of_slice(&row);
    }
}
