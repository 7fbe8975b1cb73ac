//! fbgemm's fp16-weight GEMM as PyTorch's `linear_dynamic_fp16` runs it
//! (`fbgemm::cblas_gemm_compute` on a `PackedGemmMatrixFP16`): the weight rounded to f16 (values
//! saturated to ±65504), the activations kept in f32, and every output the f32 sum over
//! blocks of [`K_BLOCK`] of an f32 fused multiply-add chain over the block, in order, starting
//! from zero. The bias is added afterwards (`output.add_(bias)`), then the optional ReLU.
//!
//! That is fbgemm's order for row tiles of 3–6 rows (checked against torch 2.15, bit for bit);
//! its 1- and 2-row tiles sum in another order, so a few outputs there differ by an ulp or
//! two (tests bound the difference by `4·ε·Σ|x·w|`).

/// fbgemm's K block for packed fp16 matrices (`PackedGemmMatrixFP16`'s default `brow`).
const K_BLOCK: usize = 512;

/// `f32(a·w + acc)` through f64: the product of two f32 values is exact in f64, so this is the
/// fused multiply-add except when the f64 sum rounds onto an f32 tie (double rounding, about
/// one sum in 2²⁹). Unlike `f32::mul_add` it needs no FMA instruction (no libm call on the
/// x86-64 baseline) and vectorizes.
#[inline(always)]
fn fma_f32(a: f64, w: f32, acc: f32) -> f32 {
    (a * f64::from(w) + f64::from(acc)) as f32
}

/// An f16 weight `[N, K]`, stored widened to f32 (exact) and transposed to `[K, N]` so the
/// inner loop runs over contiguous output columns.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Fp16Packed {
    n: usize,
    k: usize,
    /// `w[n, k]` at `k * n_total + n`.
    wt: Vec<f32>,
}

impl Fp16Packed {
    /// Packs an `[n, k]` row-major weight whose values are already f16-exact.
    pub(crate) fn pack(w: &[f32], n: usize, k: usize) -> Self {
        let mut wt = vec![0.0f32; n * k];
        for (row, src) in w.chunks_exact(k.max(1)).take(n).enumerate() {
            for (kk, &v) in src.iter().enumerate() {
                wt[kk * n + row] = v;
            }
        }
        Self { n, k, wt }
    }

    /// `out[m, n] = (Σ_k fma chain x[m, k]·w[n, k]) + bias[n]`, ReLU'd if asked; `x` is
    /// `m × k`, `out` is `m × n` (both row-major, lengths checked by the caller).
    pub(crate) fn apply(
        &self,
        x: &[f32],
        m: usize,
        bias: Option<&[f32]>,
        relu: bool,
        out: &mut [f32],
    ) {
        let (n, k) = (self.n, self.k);
        let out = &mut out[..m * n];
        // K outer, rows inner: each weight row is read once per block for all rows.
        let mut block = vec![0.0f32; m * n];
        for k0 in (0..k).step_by(K_BLOCK) {
            let k1 = (k0 + K_BLOCK).min(k);
            block.fill(0.0);
            for kk in k0..k1 {
                let wr = &self.wt[kk * n..(kk + 1) * n];
                for (r, acc_row) in block.chunks_exact_mut(n).enumerate() {
                    let a = f64::from(x[r * k + kk]);
                    for (acc, &w) in acc_row.iter_mut().zip(wr) {
                        *acc = fma_f32(a, w, *acc);
                    }
                }
            }
            if k0 == 0 {
                out.copy_from_slice(&block);
            } else {
                out.iter_mut().zip(&block).for_each(|(y, &v)| *y += v);
            }
        }
        for o in out.chunks_exact_mut(n) {
            if let Some(b) = bias {
                o.iter_mut().zip(b).for_each(|(y, &b)| *y += b);
            }
            if relu {
                o.iter_mut().for_each(|y| {
                    if *y < 0.0 {
                        *y = 0.0;
                    }
                });
            }
        }
    }
}
