//! [`PairSplit`]: a row of pairs split into its even and its odd elements, the copy behind
//! the stride-2 phase split of `phases.rs`. AVX2 shuffles take 8 pairs at a time where the
//! convolution family is an x86-64 SIMD one; a scalar loop does the rest. Copies only: every
//! path gives identical results.

use super::direct_kernel::DirectConvKernel;

/// How [`PairSplit::split`] runs.
#[derive(Clone, Copy)]
pub(super) enum PairSplit {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2(x86::Avx2),
}

impl PairSplit {
    /// The split for a convolution on `kind`: AVX2 for the x86-64 SIMD families (which run
    /// only where the CPU has AVX2), scalar otherwise.
    pub(super) fn for_kernel(kind: DirectConvKernel) -> Self {
        match kind {
            DirectConvKernel::Scalar => PairSplit::Scalar,
            #[cfg(target_arch = "x86_64")]
            _ => x86::Avx2::new().map_or(PairSplit::Scalar, PairSplit::Avx2),
            #[cfg(not(target_arch = "x86_64"))]
            _ => PairSplit::Scalar,
        }
    }

    /// `even[t] = pairs[2t]`, `odd[t] = pairs[2t + 1]` for `t` below the shortest of
    /// `even.len()`, `odd.len()` and `pairs.len() / 2`.
    pub(super) fn split(self, pairs: &[f32], even: &mut [f32], odd: &mut [f32]) {
        let n = (pairs.len() / 2).min(even.len()).min(odd.len());
        let done = match self {
            PairSplit::Scalar => 0,
            #[cfg(target_arch = "x86_64")]
            PairSplit::Avx2(k) => k.split(&pairs[..2 * n], &mut even[..n], &mut odd[..n]),
        };
        for ((e, o), p) in even[done..n]
            .iter_mut()
            .zip(&mut odd[done..n])
            .zip(pairs[2 * done..].chunks_exact(2))
        {
            *e = p[0];
            *o = p[1];
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Proof that the CPU has AVX2; only [`Avx2::new`] makes one.
    #[derive(Clone, Copy)]
    pub(in crate::float) struct Avx2 {
        _private: (),
    }

    impl Avx2 {
        pub(super) fn new() -> Option<Self> {
            is_x86_feature_detected!("avx2").then_some(Self { _private: () })
        }

        /// Splits the first `8·⌊n / 8⌋` pairs (`n = even.len()`, `odd.len() == n`,
        /// `pairs.len() == 2n`); returns how many it split.
        pub(super) fn split(self, pairs: &[f32], even: &mut [f32], odd: &mut [f32]) -> usize {
            let n = even.len();
            assert!(odd.len() == n && pairs.len() == 2 * n, "pair split lengths");
            // SAFETY: `self` exists only after `new` detected AVX2; the assert gives the
            // extents `split8` reads (`2n` floats) and writes (`n` floats each).
            unsafe { split8(pairs.as_ptr(), even.as_mut_ptr(), odd.as_mut_ptr(), n / 8) };
            n / 8 * 8
        }
    }

    /// `blocks` times: 16 floats of `pairs` into 8 of `even` and 8 of `odd`.
    ///
    /// # Safety
    /// AVX2 available; `pairs` readable for `16·blocks` f32, `even` and `odd` writable for
    /// `8·blocks` f32 each.
    #[target_feature(enable = "avx2")]
    unsafe fn split8(pairs: *const f32, even: *mut f32, odd: *mut f32, blocks: usize) {
        for b in 0..blocks {
            // SAFETY: block `b` reads floats `16b .. 16b + 16` and writes `8b .. 8b + 8`,
            // inside the contract's extents.
            unsafe {
                let a = _mm256_loadu_ps(pairs.add(16 * b));
                let c = _mm256_loadu_ps(pairs.add(16 * b + 8));
                // [a0..a3 c0..c3] and [a4..a7 c4..c7]; per 128-bit lane, take elements 0, 2
                // (even) or 1, 3 (odd) of each: [a0 a2 a4 a6 c0 c2 c4 c6], the same for odd
                let lo = _mm256_permute2f128_ps::<0x20>(a, c);
                let hi = _mm256_permute2f128_ps::<0x31>(a, c);
                _mm256_storeu_ps(even.add(8 * b), _mm256_shuffle_ps::<0x88>(lo, hi));
                _mm256_storeu_ps(odd.add(8 * b), _mm256_shuffle_ps::<0xDD>(lo, hi));
            }
        }
    }
}
