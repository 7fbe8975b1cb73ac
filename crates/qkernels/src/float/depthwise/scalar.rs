//! The portable row kernel: `f32::mul_add` chains (a hardware FMA on aarch64, a correctly
//! rounded libm `fmaf` on x86-64 without FMA), in the oracle's order.

/// `out[o] = bias`, then for each tap `t`: `out[o] = fma(w[t], src[offs[t] + o], out[o])`.
///
/// Panics if a tap's run `offs[t]..offs[t] + out.len()` is outside `src` or `w` is shorter
/// than `offs` (the driver's layout guarantees neither happens).
pub(super) fn row(src: &[f32], offs: &[usize], w: &[f32], bias: f32, out: &mut [f32]) {
    out.fill(bias);
    for (&o, &wt) in offs.iter().zip(w) {
        let run = &src[o..o + out.len()];
        for (acc, &v) in out.iter_mut().zip(run) {
            *acc = wt.mul_add(v, *acc);
        }
    }
}
