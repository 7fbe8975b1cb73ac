//! The single place that calls the `gemm` crate (its entry point is an `unsafe fn` on raw pointers).

use super::error::{FloatGemmError, Result};
use super::threads::Threads;
use super::view::{MatMut, MatRef};

/// Element types the `gemm` crate multiplies and that this wrapper exposes.
pub(crate) trait CrateElement: Copy + 'static {}
impl CrateElement for f32 {}
impl CrateElement for half::f16 {}

/// Checks `a: m x k`, `b: k x n`, `c: m x n`; returns `(m, k, n)`.
pub(crate) fn check_shapes<A, B, C>(
    a: &MatRef<'_, A>,
    b: &MatRef<'_, B>,
    c: &MatMut<'_, C>,
) -> Result<(usize, usize, usize)> {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    if b.rows() != k || c.rows() != m || c.cols() != n {
        return Err(FloatGemmError::ShapeMismatch {
            a: [a.rows(), a.cols()],
            b: [b.rows(), b.cols()],
            c: [c.rows(), c.cols()],
        });
    }
    Ok((m, k, n))
}

/// Stride as `isize`. Views are only built with strides that fit (checked in `view`), so the
/// fallback is never taken; it exists so this function cannot panic.
fn sz(stride: usize) -> isize {
    isize::try_from(stride).unwrap_or(isize::MAX)
}

/// `c = keep * c + scale * a * b`, reading `c` only when `read_c` is true.
///
/// Shapes must already have been checked with [`check_shapes`]; `m`, `n` and `k` are all > 0.
pub(crate) fn crate_gemm<T: CrateElement>(
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut MatMut<'_, T>,
    keep: T,
    scale: T,
    read_c: bool,
    threads: Threads,
) -> Result<()> {
    let (m, k, n) = check_shapes(&a, &b, c)?;
    if m == 0 || n == 0 || k == 0 {
        return Ok(());
    }
    let (c_rs, c_cs) = (sz(c.row_stride()), sz(c.col_stride()));
    let (a_rs, a_cs) = (sz(a.row_stride()), sz(a.col_stride()));
    let (b_rs, b_cs) = (sz(b.row_stride()), sz(b.col_stride()));
    let a_ptr = a.data().as_ptr();
    let b_ptr = b.data().as_ptr();
    let c_ptr = c.data_mut().as_mut_ptr();
    // SAFETY: every view was built by `MatRef::new`/`MatMut::new`, which checked that
    // `(rows-1)*row_stride + (cols-1)*col_stride < slice.len()` and that strides fit in isize, so
    // every element the crate addresses is inside its slice. `check_shapes` above checked
    // a: m x k, b: k x n, c: m x n, and m, n, k > 0. `c` comes from a `&mut` borrow, so it aliases
    // neither `a` nor `b`, and `MatMut::new` rejected strides that make two of its elements share
    // memory, so parallel writes never race. The element type is f32 or f16, which the crate supports.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c_ptr,
            c_cs,
            c_rs,
            read_c,
            a_ptr,
            a_cs,
            a_rs,
            b_ptr,
            b_cs,
            b_rs,
            keep,
            scale,
            false,
            false,
            false,
            threads.to_crate(),
        );
    }
    Ok(())
}
