//! f16 storage with f32 accumulation: the crate's f16 GEMM, and a mixed f16/f32 GEMM.

use half::f16;
use half::slice::HalfFloatSliceExt;

use super::call::{check_shapes, crate_gemm};
use super::error::Result;
use super::sgemm::sgemm;
use super::threads::Threads;
use super::view::{MatMut, MatRef};

/// `C = alpha * A * B + beta * C` with f16 operands and result, accumulated in f32.
///
/// On x86-64 this runs the `gemm` crate's f16 kernel, which widens packed panels to f32,
/// multiplies and accumulates in f32, and rounds once when storing `C` (`alpha` and `beta` are
/// rounded to f16 first). On other targets the crate's f16 kernel may accumulate in f16 (aarch64
/// with FEAT_FP16 uses half-precision FMAs), so there the operands are widened to f32, [`sgemm`]
/// runs, and the result is rounded once: the f32-accumulation contract holds everywhere.
/// With `beta == 0.0`, `C` is overwritten without being read.
pub fn hgemm(
    alpha: f32,
    a: MatRef<'_, f16>,
    b: MatRef<'_, f16>,
    beta: f32,
    mut c: MatMut<'_, f16>,
    threads: Threads,
) -> Result<()> {
    let (m, k, n) = check_shapes(&a, &b, &c)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        for i in 0..m {
            for j in 0..n {
                if let Some(x) = c.get_mut(i, j) {
                    *x = if beta == 0.0 {
                        f16::ZERO
                    } else {
                        f16::from_f32(beta * x.to_f32())
                    };
                }
            }
        }
        return Ok(());
    }
    if cfg!(target_arch = "x86_64") {
        return crate_gemm(
            a,
            b,
            &mut c,
            f16::from_f32(beta),
            f16::from_f32(alpha),
            beta != 0.0,
            threads,
        );
    }
    let (wa, wb) = (widen(&a), widen(&b));
    let mut acc = vec![0.0f32; m * n];
    sgemm(
        alpha,
        MatRef::row_major(&wa, m, k)?,
        MatRef::row_major(&wb, k, n)?,
        0.0,
        MatMut::row_major(&mut acc, m, n)?,
        threads,
    )?;
    for (i, row) in acc.chunks_exact(n).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            if let Some(x) = c.get_mut(i, j) {
                *x = f16::from_f32(if beta == 0.0 {
                    v
                } else {
                    v + beta * x.to_f32()
                });
            }
        }
    }
    Ok(())
}

/// One operand of [`gemm_mixed`]: f32 or f16 storage.
#[derive(Clone, Copy, Debug)]
pub enum FloatMat<'a> {
    /// An f32 view, used as is.
    F32(MatRef<'a, f32>),
    /// An f16 view, widened exactly to f32 before the product.
    F16(MatRef<'a, f16>),
}

impl FloatMat<'_> {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        match self {
            FloatMat::F32(v) => v.rows(),
            FloatMat::F16(v) => v.rows(),
        }
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        match self {
            FloatMat::F32(v) => v.cols(),
            FloatMat::F16(v) => v.cols(),
        }
    }
}

/// Widens an f16 view into a contiguous row-major f32 buffer (exact: every f16 is an f32).
fn widen(v: &MatRef<'_, f16>) -> Vec<f32> {
    let (rows, cols) = (v.rows(), v.cols());
    let mut out = vec![0.0f32; rows * cols];
    if let (true, Some(src)) = (v.is_row_major_contiguous(), v.data().get(..rows * cols)) {
        src.convert_to_f32_slice(&mut out);
        return out;
    }
    for (i, row) in out.chunks_exact_mut(cols.max(1)).enumerate() {
        for (j, x) in row.iter_mut().enumerate() {
            *x = v.get(i, j).map_or(0.0, |h| h.to_f32());
        }
    }
    out
}

/// `C = alpha * A * B + beta * C` in f32 where `A` and `B` may each be stored as f16.
///
/// f16 operands are widened to f32 (exactly) into a scratch buffer, then [`sgemm`] runs, so the
/// result equals the f32 GEMM of the widened values. This is the path for f16 weights times f32
/// activations.
pub fn gemm_mixed(
    alpha: f32,
    a: FloatMat<'_>,
    b: FloatMat<'_>,
    beta: f32,
    c: MatMut<'_, f32>,
    threads: Threads,
) -> Result<()> {
    let a_buf;
    let a_view = match a {
        FloatMat::F32(v) => v,
        FloatMat::F16(v) => {
            a_buf = widen(&v);
            MatRef::row_major(&a_buf, v.rows(), v.cols())?
        }
    };
    let b_buf;
    let b_view = match b {
        FloatMat::F32(v) => v,
        FloatMat::F16(v) => {
            b_buf = widen(&v);
            MatRef::row_major(&b_buf, v.rows(), v.cols())?
        }
    };
    sgemm(alpha, a_view, b_view, beta, c, threads)
}
