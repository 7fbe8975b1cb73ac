//! f32 GEMM: `C = alpha * A * B + beta * C` on strided views.

use super::call::{check_shapes, crate_gemm};
use super::error::Result;
use super::row_split;
use super::threads::Threads;
use super::view::{MatMut, MatRef};

/// `C = alpha * A * B + beta * C` in f32 (`A: m x k`, `B: k x n`, `C: m x n`, any strides).
///
/// With `beta == 0.0`, `C` is overwritten without being read, so stale NaNs in it do not
/// propagate (the BLAS convention). With `beta == 1.0` the product is accumulated into `C`.
/// Transposed operands are views with swapped strides ([`MatRef::t`]); no copy is made.
/// With [`Threads::Rayon`], large products whose `C` is row-major and more than 64 columns
/// wide run as bands of rows of `C` on the current pool, each a one-thread call (the same bits
/// as one thread); others run on the calling thread (the GEMM crate's own threads were slower
/// than one thread on several convolution shapes on the 2-vCPU Zen 4 guest, and its split is
/// not ours to keep bit-stable).
pub fn sgemm(
    alpha: f32,
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    beta: f32,
    mut c: MatMut<'_, f32>,
    threads: Threads,
) -> Result<()> {
    let (m, k, n) = check_shapes(&a, &b, &c)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        scale_in_place(&mut c, beta);
        return Ok(());
    }
    let bands = row_split::bands(m, k, n, &c, threads);
    if bands > 1 {
        return row_split::run(a, b, c, beta, alpha, beta != 0.0, bands);
    }
    crate_gemm(a, b, &mut c, beta, alpha, beta != 0.0, Threads::Single)
}

/// `C = beta * C` (the product of an empty inner dimension), writing exact zeros when `beta == 0`.
fn scale_in_place(c: &mut MatMut<'_, f32>, beta: f32) {
    for i in 0..c.rows() {
        for j in 0..c.cols() {
            if let Some(x) = c.get_mut(i, j) {
                *x = if beta == 0.0 { 0.0 } else { beta * *x };
            }
        }
    }
}
