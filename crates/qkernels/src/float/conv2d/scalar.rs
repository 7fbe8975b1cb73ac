//! The portable tile: `f32::mul_add` chains (a hardware FMA on aarch64, a correctly rounded
//! libm `fmaf` on x86-64 without FMA), in the oracle's order.

use super::{SourceRows, TileOut};

/// For `rows` rows `r` and `cols ≤ 16` columns `v`, over the `kc` rows `kk` of `at`:
/// `s = fma chain over kk of w[r·ldw + kk] · src[at.offsets[kk] + v]`, starting from
/// `out.sums[r·ld + v]` when `out.carry`, else from `0`; stores `s` (plus `bias[r]` when given)
/// into `out.sums[r·ld + v]`.
///
/// Panics if `src`, `w` or `out.sums` is too short (the driver's layout guarantees none is).
pub(super) fn tile(
    src: &[f32],
    at: SourceRows<'_>,
    w: &[f32],
    ldw: usize,
    rows: usize,
    cols: usize,
    out: TileOut<'_>,
) {
    let kc = at.offsets.len();
    for r in 0..rows {
        let a = &mut out.sums[r * out.ld..r * out.ld + cols];
        if !out.carry {
            a.fill(0.0);
        }
        let wr = &w[r * ldw..r * ldw + kc];
        for (&o, &wv) in at.offsets.iter().zip(wr) {
            for (c, &v) in a.iter_mut().zip(&src[o..o + cols]) {
                *c = wv.mul_add(v, *c);
            }
        }
        if let Some(bias) = out.bias {
            a.iter_mut().for_each(|c| *c += bias[r]);
        }
    }
}
