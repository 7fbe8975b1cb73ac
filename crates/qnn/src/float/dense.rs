//! `y = x Wᵀ + b` on a row-major `[out, in]` weight stored as f32 or f16: the one product
//! behind [`super::Linear`] and [`super::MultiheadAttention`]'s projections, with the kernel
//! chosen per row count by measurement (Zen 2, one thread, 1024 × 1024 weight, µs):
//!
//! | rows | `gemm` crate, `x · Wᵀ` view | `qkernels::fp16::gemm_f32_rows` |
//! |---:|---:|---:|
//! | 1 | 68–80 | 350 |
//! | 2 | 1200 | 355 |
//! | 4 | 1250 | 355 |
//! | 16 | 1600 | 375 |
//! | 64 | 2700–2850 | 1550 |
//!
//! The `gemm` crate packs the transposed weight on every call (strided copies of all `N·K`
//! values), which dominates below a few hundred rows; `gemm_f32_rows` packs only the
//! activations and reads the weight in place, so nothing is cached and a weight changed by an
//! optimizer step or a state-dict load is used as is on the next call. One row takes
//! [`qkernels::float::gemv_f32`] (f32, on AVX2 CPUs; the crate's matrix-vector path elsewhere)
//! or [`qkernels::float::gemv_f16`] (f16), and so does each
//! row of a product with up to [`PER_ROW_MAX`] rows. Where `gemm_f32_rows` runs its AVX-512
//! family (Zen 4), it takes every larger product: at 256 × 1024 → 1024 it ran at 105 GFLOP/s
//! against the crate's 70 (PyTorch 80–100), at 512 × 4096 → 4096 at 95 against 83 (one
//! thread, 2026-12-05). Elsewhere, above [`ROWS_KERNEL_MAX`] rows ([`ROWS_KERNEL_MAX_LONG_K`]
//! when `in > out`), the crate's blocked GEMM runs (f16 weights widened one column block at a
//! time by [`qkernels::float::gemm_mixed`]). `gemm_f32_rows` splits products of at least
//! [`qkernels::fp16::PAR_MIN_MACS`] multiply-adds over the current rayon pool (install a
//! one-thread pool for single-threaded runs), and the crate's blocked GEMM on f32 weights is
//! cut into bands of rows over the pool (`Threads::Rayon`, same bits on any pool); `gemv_f32`
//! splits its output rows over the pool from [`qkernels::float::GEMV_F32_PAR_MIN_MACS`]
//! multiply-adds (same bits on any pool); `gemv_f16` and the crate path on f16 weights run on
//! the calling thread. All paths compute the
//! same products; results differ only by summation order.

use half::f16;
use qkernels::float::{FloatMat, MatMut, MatRef, Threads, gemm_mixed};
use qkernels::fp16::{Fp16Epilogue, Fp16Kernel, WeightRows, gemm_f32_rows};

use crate::error::Result;

/// Up to this many rows, each row takes the one-row path on its own (`gemm_f32_rows` computes
/// at least 16 rows' worth: 2 rows took 450 µs there, 2 × 110 µs one by one, PyTorch 230 µs).
pub(crate) const PER_ROW_MAX: usize = 3;

/// Most rows that take [`gemm_f32_rows`]; above [`PER_ROW_MAX`].
pub(crate) const ROWS_KERNEL_MAX: usize = 64;

/// Most rows that take [`gemm_f32_rows`] when the weight is wider than tall (`in > out`):
/// at 128 × 3072 → 768 it took 7.9 ms against the crate's 9.5 ms (PyTorch 9.0–9.2 ms), while
/// at 128 × 768 → 3072 the crate stayed faster (7.7–8.3 ms against 9.8 ms); Zen 2, 1 thread.
pub(crate) const ROWS_KERNEL_MAX_LONG_K: usize = 128;

/// Whether a product of `rows` rows takes [`gemm_f32_rows`]: every row count above
/// [`PER_ROW_MAX`] on its AVX-512 family (Zen 4), else the bounds measured on Zen 2.
fn rows_kernel_applies(rows: usize, inf: usize, outf: usize) -> bool {
    let max = if Fp16Kernel::best() == Fp16Kernel::Avx512 {
        usize::MAX
    } else if inf > outf {
        ROWS_KERNEL_MAX_LONG_K
    } else {
        ROWS_KERNEL_MAX
    };
    (PER_ROW_MAX + 1..=max).contains(&rows) && inf > 0 && outf > 0
}

/// A row-major `[out, in]` weight, f32 or f16.
#[derive(Clone, Copy, Debug)]
pub(crate) enum DenseWeight<'a> {
    /// f32 storage.
    F32(&'a [f32]),
    /// f16 storage (halved layers).
    F16(&'a [f16]),
}

/// `x Wᵀ + b` for `x` row-major `[rows, inf]` and `W` `[outf, inf]`; returns `[rows, outf]`.
///
/// The caller has checked `x.len() == rows · inf`, `W`'s length `outf · inf` and the bias
/// length `outf`; mismatches still surface as typed errors from the kernels.
pub(crate) fn dense(
    x: &[f32],
    rows: usize,
    inf: usize,
    w: DenseWeight<'_>,
    bias: Option<&[f32]>,
    outf: usize,
) -> Result<Vec<f32>> {
    if (2..=PER_ROW_MAX).contains(&rows) && inf > 0 {
        let mut out = Vec::with_capacity(rows * outf);
        for xr in x.chunks_exact(inf).take(rows) {
            out.extend(dense(xr, 1, inf, w, bias, outf)?);
        }
        return Ok(out);
    }
    let mut out = vec![0.0f32; rows * outf];
    if rows_kernel_applies(rows, inf, outf) {
        let w = match w {
            DenseWeight::F32(w) => WeightRows::F32(w),
            DenseWeight::F16(w) => WeightRows::F16(w),
        };
        let epilogue = Fp16Epilogue { bias, relu: false };
        gemm_f32_rows(x, rows, inf, w, outf, inf, &mut out, outf, epilogue)?;
        return Ok(out);
    }
    let beta = match bias {
        Some(b) => {
            for row in out.chunks_exact_mut(outf.max(1)) {
                row.copy_from_slice(b);
            }
            1.0
        }
        None => 0.0,
    };
    // f32 weights: bands of rows on the current pool above qkernels' size threshold (each band
    // one single-thread call with the same k blocking, so the bits do not depend on the pool);
    // f16 weights stay on one thread.
    let (w, threads) = match w {
        DenseWeight::F32(w) => (
            FloatMat::F32(MatRef::row_major(w, outf, inf)?.t()),
            Threads::Rayon(0),
        ),
        DenseWeight::F16(w) => (
            FloatMat::F16(MatRef::row_major(w, outf, inf)?.t()),
            Threads::Single,
        ),
    };
    gemm_mixed(
        1.0,
        FloatMat::F32(MatRef::row_major(x, rows, inf)?),
        w,
        beta,
        MatMut::row_major(&mut out, rows, outf)?,
        threads,
    )?;
    Ok(out)
}
