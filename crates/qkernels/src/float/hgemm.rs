//! f16 storage with f32 accumulation: the crate's f16 GEMM, and a mixed f16/f32 GEMM.

use half::f16;

use super::call::{check_shapes, crate_gemm};
use super::error::Result;
use super::gemv_f16::{Gemv, GemvF16Kernel, gemv_f16};
use super::gemv_f32::{GemvF32Kernel, gemv_f32};
use super::sgemm::sgemm;
use super::threads::Threads;
use super::view::{MatMut, MatRef};
use super::widen::widen_f16_slice;

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
        widen_f16_slice(src, &mut out);
        return out;
    }
    for (i, row) in out.chunks_exact_mut(cols.max(1)).enumerate() {
        for (j, x) in row.iter_mut().enumerate() {
            *x = v.get(i, j).map_or(0.0, |h| h.to_f32());
        }
    }
    out
}

/// Columns `j0..j0 + nb` of an f16 view, widened to f32, with the strides of the widened block.
///
/// Column-contiguous views (`row_stride == 1`, e.g. `Wᵀ` of a row-major weight) and
/// row-contiguous views are converted slice by slice; other strides element by element.
fn widen_cols(v: &MatRef<'_, f16>, j0: usize, nb: usize) -> (Vec<f32>, usize, usize) {
    let mut out = Vec::new();
    let (rs, cs) = widen_cols_into(v, j0, nb, &mut out);
    (out, rs, cs)
}

/// [`widen_cols`] into `out` (resized to `rows * nb`; its allocation is reused across calls).
fn widen_cols_into(
    v: &MatRef<'_, f16>,
    j0: usize,
    nb: usize,
    out: &mut Vec<f32>,
) -> (usize, usize) {
    let rows = v.rows();
    out.resize(rows * nb, 0.0);
    let (rs, cs, data) = (v.row_stride(), v.col_stride(), v.data());
    if rs == 1 || rows <= 1 {
        for (j, col) in out.chunks_exact_mut(rows.max(1)).enumerate() {
            let start = (j0 + j) * cs;
            match data.get(start..start + rows) {
                Some(src) => widen_f16_slice(src, col),
                None => col
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, x)| *x = v.get(i, j0 + j).map_or(0.0, |h| h.to_f32())),
            }
        }
        return (1, rows);
    }
    for (i, row) in out.chunks_exact_mut(nb.max(1)).enumerate() {
        let start = i * rs + j0 * cs;
        match (cs == 1).then(|| data.get(start..start + nb)).flatten() {
            Some(src) => widen_f16_slice(src, row),
            None => row
                .iter_mut()
                .enumerate()
                .for_each(|(j, x)| *x = v.get(i, j0 + j).map_or(0.0, |h| h.to_f32())),
        }
    }
    (nb, 1)
}

thread_local! {
    /// The widened f32 block of [`gemm_f32_f16`], kept per thread so that repeated calls (one
    /// per layer and batch) neither allocate nor zero it again. At most one block (about 256 KiB).
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

thread_local! {
    /// The widened left operand of [`gemm_mixed`] when it is small enough to widen whole.
    static SCRATCH_LEFT: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Largest f16 left operand (elements, 256 KiB of f32) that [`gemm_mixed`] widens whole.
const WHOLE_WIDEN_MAX: usize = 65_536;

/// Column-block width for widening an f16 `k x n` operand: about 256 KiB of f32 per block (so
/// the widened panel is still in L2 when the GEMM packs it), a multiple of 16, at least 16.
fn block_cols(k: usize, n: usize) -> usize {
    let nb = (65_536 / k.max(1)).max(16) / 16 * 16;
    nb.min(n).max(1)
}

/// `C = alpha * A * B + beta * C` with `B` stored as f16: `B` is widened one column block at a
/// time, each block multiplied while it is hot in cache.
fn gemm_f32_f16(
    alpha: f32,
    a: MatRef<'_, f32>,
    b: MatRef<'_, f16>,
    beta: f32,
    mut c: MatMut<'_, f32>,
    threads: Threads,
) -> Result<()> {
    check_shapes(&a, &b, &c)?;
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    let (c_rs, c_cs) = (c.row_stride(), c.col_stride());
    let nb = block_cols(k, n);
    let mut block = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    let mut j0 = 0;
    while j0 < n {
        let w = nb.min(n - j0);
        let (rs, cs) = widen_cols_into(&b, j0, w, &mut block);
        let c_data = c.data_mut();
        let start = (j0 * c_cs).min(c_data.len());
        let c_block = MatMut::new(&mut c_data[start..], m, w, c_rs, c_cs)?;
        sgemm(
            alpha,
            a,
            MatRef::new(&block, k, w, rs, cs)?,
            beta,
            c_block,
            threads,
        )?;
        j0 += w;
    }
    SCRATCH.with(|s| *s.borrow_mut() = block);
    Ok(())
}

/// `C = alpha * A * B + beta * C` in f32 where `A` and `B` may each be stored as f16.
///
/// f16 operands are widened to f32 (exactly), so the result is the f32 GEMM of the widened
/// values up to summation order. This is the path for f16 weights times f32 activations: the f16
/// operand is widened one column block (about 256 KiB of f32) at a time, right before that block
/// is multiplied, so the widened panel is still in cache and the whole f32 copy never exists.
pub fn gemm_mixed(
    alpha: f32,
    a: FloatMat<'_>,
    b: FloatMat<'_>,
    beta: f32,
    c: MatMut<'_, f32>,
    threads: Threads,
) -> Result<()> {
    match (a, b) {
        // One row times the transpose of a row-major f32 weight: the fp32 Linear at batch 1.
        (FloatMat::F32(a), FloatMat::F32(b))
            if one_row_times_transposed(&a, &b)
                && GemvF32Kernel::detect() != GemvF32Kernel::Scalar =>
        {
            check_shapes(&a, &b, &c)?;
            let (c_cs, mut c) = (c.col_stride(), c);
            if let Some(op) = gemv_operands(&a, &b) {
                let kernel = GemvF32Kernel::detect();
                if gemv_f32(kernel, alpha, &op, beta, c.data_mut(), c_cs, threads).is_some() {
                    return Ok(());
                }
            }
            sgemm(alpha, a, b, beta, c, threads)
        }
        (FloatMat::F32(a), FloatMat::F32(b)) => sgemm(alpha, a, b, beta, c, threads),
        // One row times the transpose of a row-major f16 weight: the batch-1 Linear.
        (FloatMat::F32(a), FloatMat::F16(b)) if one_row_times_transposed(&a, &b) => {
            check_shapes(&a, &b, &c)?;
            let (c_cs, mut c) = (c.col_stride(), c);
            if let Some(op) = gemv_operands(&a, &b) {
                let kernel = GemvF16Kernel::detect();
                if gemv_f16(kernel, alpha, &op, beta, c.data_mut(), c_cs).is_some() {
                    return Ok(());
                }
            }
            gemm_f32_f16(alpha, a, b, beta, c, threads)
        }
        (FloatMat::F32(a), FloatMat::F16(b)) => gemm_f32_f16(alpha, a, b, beta, c, threads),
        // A small f16 left operand (a convolution's weights) is widened whole, so the f32
        // GEMM runs in the same orientation, with the same kernels, as for f32 weights.
        (FloatMat::F16(a), FloatMat::F32(b)) if a.rows() * a.cols() <= WHOLE_WIDEN_MAX => {
            let mut wa = SCRATCH_LEFT.with(|s| std::mem::take(&mut *s.borrow_mut()));
            let (rs, cs) = widen_cols_into(&a, 0, a.cols(), &mut wa);
            let result = sgemm(
                alpha,
                MatRef::new(&wa, a.rows(), a.cols(), rs, cs)?,
                b,
                beta,
                c,
                threads,
            );
            SCRATCH_LEFT.with(|s| *s.borrow_mut() = wa);
            result
        }
        // C = A B  <=>  Cᵀ = Bᵀ Aᵀ: the f16 operand moves to the right
        (FloatMat::F16(a), FloatMat::F32(b)) => {
            gemm_f32_f16(alpha, b.t(), a.t(), beta, c.t(), threads)
        }
        (FloatMat::F16(a), FloatMat::F16(b)) => {
            let (wa, rs, cs) = widen_cols(&a, 0, a.cols());
            gemm_f32_f16(
                alpha,
                MatRef::new(&wa, a.rows(), a.cols(), rs, cs)?,
                b,
                beta,
                c,
                threads,
            )
        }
    }
}

/// Whether `a · b` is one contiguous activation row times the transpose of a row-major weight
/// (`b = Wᵀ`, its columns contiguous): the batch-1 Linear the one-row kernels take.
fn one_row_times_transposed<W>(a: &MatRef<'_, f32>, b: &MatRef<'_, W>) -> bool {
    a.rows() == 1
        && a.cols() > 0
        && (a.cols() == 1 || a.col_stride() == 1)
        && (b.rows() == 1 || b.row_stride() == 1)
}

/// The one-row kernels' operands for such a product (`None` if a length does not fit).
fn gemv_operands<'a, W>(a: &MatRef<'a, f32>, b: &MatRef<'a, W>) -> Option<Gemv<'a, W>> {
    let (k, n) = (b.rows(), b.cols());
    Gemv::new(b.data(), n, k, b.col_stride().max(k), a.data())
}
