//! `y = alpha * W x + beta * y` with f16 weights `W` (`n` rows of `k`, row stride `ld`) and f32
//! `x`, `y`: the batch-1 product of a halved Linear layer.
//!
//! At one row of activations the blocked path of [`super::gemm_mixed`] spends more time widening
//! the weights than multiplying them; this kernel reads each f16 weight once, widens it in a
//! register (F16C) and accumulates in f32 with FMA, so a halved layer moves half the bytes of an
//! f32 one.
//!
//! Summation order (the contract the oracle and the SIMD kernel share, so that they agree bit
//! for bit): per output row, 16 f32 partial sums `p[0..16]`; element `i < k16 = k / 16 * 16` goes
//! into `p[i % 16]` with a fused multiply-add in increasing `i`; then
//! `s = ((q0 + q4) + (q2 + q6)) + ((q1 + q5) + (q3 + q7))` where `q[l] = p[l] + p[l + 8]`; then the
//! tail elements `i >= k16` are added to `s` with fused multiply-adds in increasing `i`. Finally
//! `y = alpha * s` (`beta == 0`, `y` not read) or `fma(alpha, s, beta * y)`.

use half::f16;

use crate::isa::Isa;

/// Which implementation [`gemv_f16`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemvF16Kernel {
    /// Portable Rust in the documented order: the oracle.
    Scalar,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
}

impl GemvF16Kernel {
    /// The best kernel the CPU supports under the `QSTACK_ISA` cap.
    pub fn detect() -> Self {
        if Self::Avx2.is_supported() && crate::isa::detect() >= Isa::Avx2 {
            Self::Avx2
        } else {
            Self::Scalar
        }
    }

    /// Whether this CPU can run the kernel.
    pub fn is_supported(self) -> bool {
        match self {
            Self::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => Isa::Avx2.is_supported() && std::arch::is_x86_feature_detected!("f16c"),
            #[cfg(not(target_arch = "x86_64"))]
            Self::Avx2 => false,
        }
    }
}

/// The operands of one one-row product with weights stored as `W` (f16 for [`gemv_f16`], f32
/// for [`super::gemv_f32`]); lengths are checked by [`Gemv::new`].
#[derive(Clone, Copy, Debug)]
pub struct Gemv<'a, W> {
    pub(super) w: &'a [W],
    pub(super) n: usize,
    pub(super) k: usize,
    pub(super) ld: usize,
    pub(super) x: &'a [f32],
}

/// The operands of one [`gemv_f16`] call.
pub type GemvF16<'a> = Gemv<'a, f16>;

impl<'a, W> Gemv<'a, W> {
    /// `w` holds `n` rows of `k` weights at row stride `ld >= k`; `x` has `k` values. `None` if
    /// a length does not fit.
    pub fn new(w: &'a [W], n: usize, k: usize, ld: usize, x: &'a [f32]) -> Option<Self> {
        let need = if n == 0 {
            0
        } else {
            (n - 1).checked_mul(ld)?.checked_add(k)?
        };
        (ld >= k && w.len() >= need && x.len() >= k).then_some(Self { w, n, k, ld, x })
    }

    /// Weight row `j` (its `k` values).
    pub(super) fn row(&self, j: usize) -> &'a [W] {
        &self.w[j * self.ld..j * self.ld + self.k]
    }
}

/// `y[j * y_stride] = alpha * (W x)[j] + beta * y[j * y_stride]` for `j < n` (with `beta == 0`,
/// `y` is overwritten without being read). `None` if `y` is too short for `n` outputs at
/// `y_stride`.
pub fn gemv_f16(
    kernel: GemvF16Kernel,
    alpha: f32,
    op: &GemvF16<'_>,
    beta: f32,
    y: &mut [f32],
    y_stride: usize,
) -> Option<()> {
    if op.n > 0 && (op.n - 1).checked_mul(y_stride)? >= y.len() {
        return None;
    }
    for j in 0..op.n {
        let row = op.row(j);
        let s = match kernel {
            #[cfg(target_arch = "x86_64")]
            GemvF16Kernel::Avx2 if kernel.is_supported() => {
                // SAFETY: `is_supported` checked AVX2, FMA and F16C on this CPU, the only
                // precondition of the target-feature function; `row` and `op.x` hold `k` values.
                unsafe { x86::dot_avx2(row, &op.x[..op.k]) }
            }
            _ => dot_scalar(row, &op.x[..op.k]),
        };
        store(alpha, s, beta, &mut y[j * y_stride]);
    }
    Some(())
}

/// The documented last step: `alpha * s` when `beta == 0` (`out` not read), else
/// `fma(alpha, s, beta * out)`.
pub(super) fn store(alpha: f32, s: f32, beta: f32, out: &mut f32) {
    *out = if beta == 0.0 {
        alpha * s
    } else {
        alpha.mul_add(s, beta * *out)
    };
}

/// The oracle: the documented summation order in portable Rust (f16 or f32 weights; `gemv_f32`
/// shares it).
pub(super) fn dot_scalar<W: Copy>(w: &[W], x: &[f32]) -> f32
where
    f32: From<W>,
{
    let k16 = w.len() / 16 * 16;
    let mut p = [0.0f32; 16];
    for (wc, xc) in w[..k16].chunks_exact(16).zip(x[..k16].chunks_exact(16)) {
        for l in 0..16 {
            p[l] = f32::from(wc[l]).mul_add(xc[l], p[l]);
        }
    }
    add_tail(reduce16(&p), &w[k16..], &x[k16..])
}

/// The documented horizontal sum of the 16 partial sums.
fn reduce16(p: &[f32; 16]) -> f32 {
    reduce8(&std::array::from_fn(|l| p[l] + p[l + 8]))
}

/// Its second half, on `q[l] = p[l] + p[l + 8]` (what the SIMD kernels add lane-wise).
pub(super) fn reduce8(q: &[f32; 8]) -> f32 {
    ((q[0] + q[4]) + (q[2] + q[6])) + ((q[1] + q[5]) + (q[3] + q[7]))
}

/// The documented tail: the elements past the 16-wide body added to `s` with fused
/// multiply-adds in increasing order.
pub(super) fn add_tail<W: Copy>(mut s: f32, w: &[W], x: &[f32]) -> f32
where
    f32: From<W>,
{
    for (wv, xv) in w.iter().zip(x) {
        s = f32::from(*wv).mul_add(*xv, s);
    }
    s
}

#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    use std::arch::x86_64::{
        __m128i, __m256, _mm_loadu_si128, _mm256_add_ps, _mm256_cvtph_ps, _mm256_fmadd_ps,
        _mm256_loadu_ps, _mm256_setzero_ps, _mm256_storeu_ps,
    };

    use half::f16;

    /// [`super::dot_scalar`]'s order with two 8-lane FMA accumulators. `w` and `x` have the
    /// same length.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn dot_avx2(w: &[f16], x: &[f32]) -> f32 {
        let k = w.len().min(x.len());
        let k16 = k / 16 * 16;
        let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i < k16 {
            // SAFETY: i + 16 <= k16 <= k <= w.len(), x.len(): the 2 x 16 bytes of f16 and the
            // 2 x 32 bytes of f32 read are inside `w` and `x`; unaligned loads are allowed.
            let (w_lo, w_hi, x_lo, x_hi) = unsafe {
                (
                    _mm_loadu_si128(w.as_ptr().add(i).cast::<__m128i>()),
                    _mm_loadu_si128(w.as_ptr().add(i + 8).cast::<__m128i>()),
                    _mm256_loadu_ps(x.as_ptr().add(i)),
                    _mm256_loadu_ps(x.as_ptr().add(i + 8)),
                )
            };
            lo = _mm256_fmadd_ps(_mm256_cvtph_ps(w_lo), x_lo, lo);
            hi = _mm256_fmadd_ps(_mm256_cvtph_ps(w_hi), x_hi, hi);
            i += 16;
        }
        finish(lo, hi, &w[k16..k], &x[k16..k])
    }

    /// The documented end of a row from its two 8-lane halves of the 16 partial sums (`lo`
    /// lanes 0..8, `hi` lanes 8..16): their sum, [`super::reduce8`], then the tail elements
    /// (`w_tail`, `x_tail`) by [`super::add_tail`]. Shared with `gemv_f32`.
    #[target_feature(enable = "avx")]
    pub(in crate::float) fn finish<W: Copy>(
        lo: __m256,
        hi: __m256,
        w_tail: &[W],
        x_tail: &[f32],
    ) -> f32
    where
        f32: From<W>,
    {
        let mut q = [0.0f32; 8];
        // SAFETY: `q` is 8 f32 = 32 bytes, exactly what the unaligned store writes.
        unsafe { _mm256_storeu_ps(q.as_mut_ptr(), _mm256_add_ps(lo, hi)) };
        super::add_tail(super::reduce8(&q), w_tail, x_tail)
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

    /// Every kernel this CPU runs equals the oracle bit for bit, over lengths covering the
    /// 16-wide body and every tail, strides, and both beta paths.
    #[test]
    fn every_runnable_kernel_equals_the_oracle() {
        let mut seed = 7;
        for k in [0usize, 1, 7, 15, 16, 17, 31, 33, 84, 120, 400, 401] {
            for (n, ld) in [(1usize, k), (5, k + 3), (13, k)] {
                let w: Vec<f16> = (0..n * ld.max(1))
                    .map(|_| f16::from_f32(lcg(&mut seed)))
                    .collect();
                let x: Vec<f32> = (0..k).map(|_| lcg(&mut seed)).collect();
                let op = GemvF16::new(&w, n, k, ld, &x).unwrap();
                let y0: Vec<f32> = (0..2 * n).map(|_| lcg(&mut seed)).collect();
                for (alpha, beta) in [(1.0f32, 0.0f32), (0.5, 1.0), (2.0, -0.25)] {
                    let mut want = y0.clone();
                    gemv_f16(GemvF16Kernel::Scalar, alpha, &op, beta, &mut want, 2).unwrap();
                    // the oracle is a dot product in f32: check it against f64 loosely
                    for j in 0..n {
                        let exact: f64 = (0..k)
                            .map(|i| f64::from(w[j * ld + i].to_f32()) * f64::from(x[i]))
                            .sum();
                        let exact =
                            f64::from(alpha) * exact + f64::from(beta) * f64::from(y0[2 * j]);
                        assert!((f64::from(want[2 * j]) - exact).abs() < 1e-4 * (k as f64 + 1.0));
                        assert_eq!(want[2 * j + 1], y0[2 * j + 1], "stride gap untouched");
                    }
                    for kernel in [GemvF16Kernel::Scalar, GemvF16Kernel::Avx2] {
                        if !kernel.is_supported() {
                            continue;
                        }
                        let mut got = y0.clone();
                        gemv_f16(kernel, alpha, &op, beta, &mut got, 2).unwrap();
                        let (g, e): (Vec<u32>, Vec<u32>) = (
                            got.iter().map(|v| v.to_bits()).collect(),
                            want.iter().map(|v| v.to_bits()).collect(),
                        );
                        assert_eq!(g, e, "{kernel:?} k={k} n={n} ld={ld} beta={beta}");
                    }
                }
            }
        }
    }

    #[test]
    fn bad_lengths_are_refused() {
        let w = vec![f16::ZERO; 10];
        let x = vec![0.0f32; 4];
        assert!(GemvF16::new(&w, 3, 4, 3, &x).is_none(), "ld < k");
        assert!(GemvF16::new(&w, 3, 4, 4, &x).is_none(), "w too short");
        assert!(GemvF16::new(&w, 2, 5, 5, &x).is_none(), "x too short");
        let op = GemvF16::new(&w, 2, 4, 4, &x).unwrap();
        let mut y = vec![0.0f32; 2];
        assert!(gemv_f16(GemvF16Kernel::Scalar, 1.0, &op, 0.0, &mut y, 2).is_none());
        assert!(gemv_f16(GemvF16Kernel::Scalar, 1.0, &op, 0.0, &mut y, 1).is_some());
    }

    #[test]
    fn detection_respects_the_cap() {
        let k = GemvF16Kernel::detect();
        assert!(k.is_supported());
        if crate::isa::detect() < Isa::Avx2 {
            assert_eq!(k, GemvF16Kernel::Scalar);
        }
    }
}
