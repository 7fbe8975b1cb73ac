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
        let mut block = Vec::with_capacity(n);
        for r in 0..m {
            let xr = &x[r * k..(r + 1) * k];
            let o = &mut out[r * n..(r + 1) * n];
            for k0 in (0..k).step_by(K_BLOCK) {
                let k1 = (k0 + K_BLOCK).min(k);
                block.clear();
                block.resize(n, 0.0);
                for (kk, &a) in xr.iter().enumerate().take(k1).skip(k0) {
                    let wr = &self.wt[kk * n..(kk + 1) * n];
                    for (acc, &w) in block.iter_mut().zip(wr) {
                        *acc = a.mul_add(w, *acc);
                    }
                }
                if k0 == 0 {
                    o.copy_from_slice(&block);
                } else {
                    o.iter_mut().zip(&block).for_each(|(y, &v)| *y += v);
                }
            }
            if let Some(b) = bias {
                for (y, &b) in o.iter_mut().zip(b) {
                    *y += b;
                }
            }
            if relu {
                for y in o.iter_mut() {
                    if *y < 0.0 {
                        *y = 0.0;
                    }
                }
            }
        }
    }
}
