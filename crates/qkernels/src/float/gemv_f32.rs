//! `y = alpha * W x + beta * y` with f32 weights `W` (`n` rows of `k`, row stride `ld`): the
//! batch-1 product of an fp32 Linear layer, split over the threads by output rows.
//!
//! At one row of activations the product reads every weight once and is bound by memory: a
//! 1024 × 1024 f32 weight is 4 MiB, more than one core's L2 on the machines of
//! docs/PERFORMANCE.md. The `gemm` crate runs it on one thread, so a second thread gained
//! nothing (140 µs at 1 and 2 threads, PyTorch 151 µs and 49 µs). Here each thread of the pool
//! takes the same rows on every call (`par::for_each_thread`), so a thread's share of the
//! weight stays in its own L2 between calls when it fits.
//!
//! Summation order: [`super::gemv_f16`]'s, with f32 weights (16 partial sums per output row in
//! increasing `i`, the documented horizontal sum, the tail, then `alpha`/`beta`). Each output
//! is computed by one thread in that order whatever the thread count, so results are the same
//! bits for any pool, and every kernel equals the scalar oracle bit for bit.

use std::sync::Mutex;

use super::gemv_f16::{Gemv, GemvF16Kernel, dot_scalar, store};
use super::threads::Threads;

/// Products of at least this many multiply-adds are split over the pool (a 512 × 512 weight,
/// 1 MiB: ~30 µs on one thread).
pub const GEMV_F32_PAR_MIN_MACS: usize = 1 << 18;

/// Which implementation [`gemv_f32`] runs: the same choice as [`super::gemv_f16`]'s (`Avx2` is
/// AVX2 + FMA + F16C, which every AVX2 CPU has; the f32 kernel uses no F16C instruction).
pub type GemvF32Kernel = GemvF16Kernel;

/// The operands of one [`gemv_f32`] call (checked by [`Gemv::new`]).
pub type GemvF32<'a> = Gemv<'a, f32>;

/// `y[j * y_stride] = alpha * (W x)[j] + beta * y[j * y_stride]` for `j < n` (with `beta == 0`,
/// `y` is overwritten without being read), the rows cut over the current rayon pool when
/// `threads` allows it and the product has at least [`GEMV_F32_PAR_MIN_MACS`] multiply-adds.
/// `None` if `y` is too short for `n` outputs at `y_stride` (a zero stride with `n > 1`
/// included).
pub fn gemv_f32(
    kernel: GemvF32Kernel,
    alpha: f32,
    op: &GemvF32<'_>,
    beta: f32,
    y: &mut [f32],
    y_stride: usize,
    threads: Threads,
) -> Option<()> {
    if op.n == 0 {
        return Some(());
    }
    if (op.n - 1).checked_mul(y_stride)? >= y.len() || (op.n > 1 && y_stride == 0) {
        return None;
    }
    let pool = match threads {
        Threads::Single => 1,
        Threads::Rayon(0) => rayon::current_num_threads(),
        Threads::Rayon(t) => t.min(rayon::current_num_threads()),
    };
    let parallel = pool > 1 && op.n >= 2 && op.n.saturating_mul(op.k) >= GEMV_F32_PAR_MIN_MACS;
    if !parallel {
        rows_at(kernel, alpha, op, beta, 0..op.n, y, y_stride);
        return Some(());
    }
    // `count` parts of `y` cut here at row boundaries (part `i` from its first row's output up
    // to the next part's), each taken once (a lock nobody else waits for). With the whole pool,
    // each thread takes the same part on every call.
    let count = pool;
    let mut parts = Vec::with_capacity(count);
    let mut rest = y;
    for i in 0..count {
        let r = op.n * i / count..op.n * (i + 1) / count;
        let len = if i + 1 == count {
            rest.len()
        } else {
            (r.end - r.start) * y_stride
        };
        let (mine, tail) = std::mem::take(&mut rest).split_at_mut(len);
        rest = tail;
        parts.push(Mutex::new(Some((r, mine))));
    }
    let run_part = |part: &Mutex<Option<(std::ops::Range<usize>, &mut [f32])>>| {
        let taken = part.lock().ok().and_then(|mut p| p.take());
        if let Some((r, out)) = taken {
            rows_at(kernel, alpha, op, beta, r, out, y_stride);
        }
    };
    if count == rayon::current_num_threads() {
        crate::par::for_each_thread(|i, _| {
            if let Some(part) = parts.get(i) {
                run_part(part);
            }
        });
    } else {
        crate::par::for_each_index(count, |i| run_part(&parts[i]));
    }
    // Any part no thread took (a pool of another size than counted) runs here.
    parts.iter().for_each(run_part);
    Some(())
}

/// Rows `r` of the product into `y`, where `y[0]` is row `r.start`'s output.
fn rows_at(
    kernel: GemvF32Kernel,
    alpha: f32,
    op: &GemvF32<'_>,
    beta: f32,
    r: std::ops::Range<usize>,
    y: &mut [f32],
    y_stride: usize,
) {
    let base = r.start;
    let x = &op.x[..op.k];
    #[cfg(target_arch = "x86_64")]
    if kernel == GemvF32Kernel::Avx2 && kernel.is_supported() {
        let mut j = r.start;
        while j + 4 <= r.end {
            let four = [op.row(j), op.row(j + 1), op.row(j + 2), op.row(j + 3)];
            // SAFETY: `is_supported` checked AVX2 and FMA on this CPU, the only precondition of
            // the target-feature function; each row and `x` hold `k` values.
            let s = unsafe { x86::dots_avx2(four, x) };
            for (d, s) in s.into_iter().enumerate() {
                store(alpha, s, beta, &mut y[(j + d - base) * y_stride]);
            }
            j += 4;
        }
        while j < r.end {
            // SAFETY: as above.
            let [s] = unsafe { x86::dots_avx2([op.row(j)], x) };
            store(alpha, s, beta, &mut y[(j - base) * y_stride]);
            j += 1;
        }
        return;
    }
    let _ = kernel;
    for j in r {
        store(
            alpha,
            dot_scalar(op.row(j), x),
            beta,
            &mut y[(j - base) * y_stride],
        );
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{_mm256_fmadd_ps, _mm256_loadu_ps, _mm256_setzero_ps};

    use crate::float::gemv_f16::x86::finish;

    /// [`super::dot_scalar`]'s order for `R` rows at once: two 8-lane FMA accumulators per
    /// row (`R` independent FMA chains per load of `x`; each row's order is unchanged). Every
    /// row has at least `x.len()` values.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dots_avx2<const R: usize>(w: [&[f32]; R], x: &[f32]) -> [f32; R] {
        let k = w.iter().map(|r| r.len()).fold(x.len(), usize::min);
        let k16 = k / 16 * 16;
        let mut lo = [_mm256_setzero_ps(); R];
        let mut hi = [_mm256_setzero_ps(); R];
        let mut i = 0;
        while i < k16 {
            // SAFETY: i + 16 <= k16 <= k, the length of `x` and of every row: each 32-byte
            // unaligned load reads inside its slice.
            unsafe {
                let x0 = _mm256_loadu_ps(x.as_ptr().add(i));
                let x1 = _mm256_loadu_ps(x.as_ptr().add(i + 8));
                for d in 0..R {
                    lo[d] = _mm256_fmadd_ps(_mm256_loadu_ps(w[d].as_ptr().add(i)), x0, lo[d]);
                    hi[d] = _mm256_fmadd_ps(_mm256_loadu_ps(w[d].as_ptr().add(i + 8)), x1, hi[d]);
                }
            }
            i += 16;
        }
        std::array::from_fn(|d| finish(lo[d], hi[d], &w[d][k16..k], &x[k16..k]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Every kernel this CPU runs equals the oracle bit for bit, over lengths covering the
    /// 16-wide body and every tail, row counts around the 4-row blocks, strides, and both beta
    /// paths; the oracle itself is checked against an f64 sum.
    #[test]
    fn every_runnable_kernel_equals_the_oracle() {
        let mut seed = 11;
        for k in [1usize, 7, 15, 16, 17, 31, 33, 84, 400, 401] {
            for (n, ld) in [(1usize, k), (3, k + 3), (4, k), (5, k), (13, k + 1)] {
                let w: Vec<f32> = (0..n * ld).map(|_| lcg(&mut seed)).collect();
                let x: Vec<f32> = (0..k).map(|_| lcg(&mut seed)).collect();
                let op = GemvF32::new(&w, n, k, ld, &x).unwrap();
                let y0: Vec<f32> = (0..2 * n).map(|_| lcg(&mut seed)).collect();
                for (alpha, beta) in [(1.0f32, 0.0f32), (1.0, 1.0), (2.0, -0.25)] {
                    let mut want = y0.clone();
                    gemv_f32(
                        GemvF32Kernel::Scalar,
                        alpha,
                        &op,
                        beta,
                        &mut want,
                        2,
                        Threads::Single,
                    )
                    .unwrap();
                    for j in 0..n {
                        let exact: f64 = (0..k)
                            .map(|i| f64::from(w[j * ld + i]) * f64::from(x[i]))
                            .sum();
                        let exact =
                            f64::from(alpha) * exact + f64::from(beta) * f64::from(y0[2 * j]);
                        assert!((f64::from(want[2 * j]) - exact).abs() < 1e-4 * (k as f64 + 1.0));
                        assert_eq!(want[2 * j + 1], y0[2 * j + 1], "stride gap untouched");
                    }
                    for kernel in [GemvF32Kernel::Scalar, GemvF32Kernel::Avx2] {
                        if !kernel.is_supported() {
                            continue;
                        }
                        let mut got = y0.clone();
                        gemv_f32(kernel, alpha, &op, beta, &mut got, 2, Threads::Single).unwrap();
                        assert_eq!(bits(&got), bits(&want), "{kernel:?} k={k} n={n} ld={ld}");
                    }
                }
            }
        }
    }

    /// Split over pools of 2 and 3 threads, whole or capped at 2 threads (strided outputs, the
    /// whole output compared), the bits equal one thread's.
    #[test]
    fn any_pool_gives_the_same_bits() {
        let mut seed = 5;
        let (k, ld) = (1030usize, 1031usize);
        for n in [257usize, 300, 1021] {
            let w: Vec<f32> = (0..n * ld).map(|_| lcg(&mut seed)).collect();
            let x: Vec<f32> = (0..k).map(|_| lcg(&mut seed)).collect();
            let op = GemvF32::new(&w, n, k, ld, &x).unwrap();
            assert!(n * k >= GEMV_F32_PAR_MIN_MACS, "the product must be split");
            let y0: Vec<f32> = (0..3 * n).map(|_| lcg(&mut seed)).collect();
            for kernel in [GemvF32Kernel::Scalar, GemvF32Kernel::detect()] {
                let mut want = y0.clone();
                gemv_f32(kernel, 1.0, &op, 1.0, &mut want, 3, Threads::Single).unwrap();
                for threads in [2usize, 3] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    // the whole pool (one part per thread), and at most two of its threads
                    for setting in [Threads::Rayon(0), Threads::Rayon(2)] {
                        let mut got = y0.clone();
                        pool.install(|| {
                            gemv_f32(kernel, 1.0, &op, 1.0, &mut got, 3, setting).unwrap()
                        });
                        let what = format!("{kernel:?} n={n} threads={threads} {setting:?}");
                        assert_eq!(bits(&got), bits(&want), "{what}");
                    }
                }
            }
        }
    }

    #[test]
    fn bad_lengths_are_refused() {
        let w = vec![0.0f32; 10];
        let x = vec![0.0f32; 4];
        assert!(GemvF32::new(&w, 3, 4, 3, &x).is_none(), "ld < k");
        assert!(GemvF32::new(&w, 3, 4, 4, &x).is_none(), "w too short");
        assert!(GemvF32::new(&w, 2, 5, 5, &x).is_none(), "x too short");
        let op = GemvF32::new(&w, 2, 4, 4, &x).unwrap();
        let mut y = vec![0.0f32; 2];
        let k = GemvF32Kernel::Scalar;
        assert!(gemv_f32(k, 1.0, &op, 0.0, &mut y, 2, Threads::Single).is_none());
        assert!(gemv_f32(k, 1.0, &op, 0.0, &mut y, 0, Threads::Single).is_none());
        assert!(gemv_f32(k, 1.0, &op, 0.0, &mut y, 1, Threads::Single).is_some());
    }
}
