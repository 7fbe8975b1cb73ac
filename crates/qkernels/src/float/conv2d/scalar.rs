//! The portable tile: `f32::mul_add` chains (a hardware FMA on aarch64, a correctly rounded
//! libm `fmaf` on x86-64 without FMA), in the oracle's order.

use super::{NC, TileOut};

/// For `rows` rows `r` and `cols ≤ 16` columns `v`, over the `kc = panel.len() / 16` panel
/// rows: `s = fma chain over kk of w[r·ldw + kk] · panel[kk·16 + v]`, starting from
/// `out.sums[r·ld + v]` when `out.carry`, else from `0`; stores `s` (plus `bias[r]` when given)
/// into `out.sums[r·ld + v]`.
///
/// Panics if `w` or `out.sums` is too short (the driver's layout guarantees it is not).
pub(super) fn tile(
    panel: &[f32],
    w: &[f32],
    ldw: usize,
    rows: usize,
    cols: usize,
    out: TileOut<'_>,
) {
    let kc = panel.len() / NC;
    for r in 0..rows {
        let a = &mut out.sums[r * out.ld..r * out.ld + cols];
        if !out.carry {
            a.fill(0.0);
        }
        let wr = &w[r * ldw..r * ldw + kc];
        for (b, &wv) in panel.chunks_exact(NC).zip(wr) {
            for (c, &v) in a.iter_mut().zip(b) {
                *c = wv.mul_add(v, *c);
            }
        }
        if let Some(bias) = out.bias {
            a.iter_mut().for_each(|c| *c += bias[r]);
        }
    }
}
