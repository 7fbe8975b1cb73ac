//! `Threads::Rayon` f32 products cut into bands of rows of `C` on the current pool, each band a
//! one-thread `gemm` crate call: faster than the crate's own threads on the 1 × 1 convolution
//! shapes (Zen 4, 2 threads, qnn `Conv2d`, load ≈ 5.9: 1,256,14 → 1024 741 → 652 µs;
//! 1,1024,14 → 256 1161 → 740 µs; 1,64,56 → 256 1038 → 768 µs).
//!
//! The crate picks its `k` blocking from `k` alone unless both `m` and `n` are ≤ 64, and each
//! element of `C` is one chain over each `k` block, so a band's rows get the bits of the whole
//! call as long as no call takes the small-size path: bands are cut only when `n > 64`.

use super::call::crate_gemm;
use super::conv_tasks::{even, for_each_fallible};
use super::error::Result;
use super::threads::Threads;
use super::view::{MatMut, MatRef};

/// Fewest multiply-adds for which a product is cut into bands.
const MIN_MACS: usize = 1 << 22;
/// Fewest rows of a band.
const MIN_ROWS: usize = 32;

/// How many bands `C = A·B` (`m x k` by `k x n`) is cut into for `threads`: 1 when it stays one
/// call.
pub(super) fn bands(m: usize, k: usize, n: usize, c: &MatMut<'_, f32>, threads: Threads) -> usize {
    let pool = match threads {
        Threads::Single => return 1,
        Threads::Rayon(0) => rayon::current_num_threads(),
        Threads::Rayon(t) => t.min(rayon::current_num_threads()),
    };
    let macs = m.saturating_mul(n).saturating_mul(k);
    if pool <= 1 || n <= 64 || macs < MIN_MACS || c.col_stride() != 1 || c.row_stride() < n {
        return 1;
    }
    pool.min(m / MIN_ROWS).max(1)
}

/// `c = keep·c + scale·a·b` (reading `c` when `read_c`) as `parts` bands of rows on the current
/// pool (`c` row-major with unit column stride, shapes checked).
#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    c: MatMut<'_, f32>,
    keep: f32,
    scale: f32,
    read_c: bool,
    parts: usize,
) -> Result<()> {
    let (m, n, ldc) = (c.rows(), c.cols(), c.row_stride());
    let (lda, a_cs, k) = (a.row_stride(), a.col_stride(), a.cols());
    let mut rest = c.into_data();
    let mut items = Vec::with_capacity(parts);
    for (r0, rows) in even(m, parts) {
        let last = r0 + rows == m;
        let (mine, tail) = if last {
            (rest, &mut [][..])
        } else {
            rest.split_at_mut(rows * ldc)
        };
        items.push((r0, rows, mine));
        rest = tail;
    }
    for_each_fallible(items, |(r0, rows, cband)| {
        let aband = MatRef::new(&a.data()[r0 * lda..], rows, k, lda, a_cs)?;
        let mut cband = MatMut::new(cband, rows, n, ldc, 1)?;
        crate_gemm(aband, b, &mut cband, keep, scale, read_c, Threads::Single)
    })
}
