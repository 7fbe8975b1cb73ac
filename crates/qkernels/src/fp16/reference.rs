//! The scalar oracle of the fp16-weight GEMM: the definition in the module docs, written
//! directly on the unpacked row-major weight.

use half::f16;

use super::{Fp16Epilogue, K_BLOCK};

/// `out[m, n]` (row-major `m × n`) for `x` row-major `m × k` and `w` row-major `n × k` f16:
/// per K block of [`K_BLOCK`] an `f32::mul_add` chain from zero in increasing k, block sums
/// added in order, then `+ bias[n]` and ReLU. Panics if a slice is shorter than its shape
/// (it is a test oracle, not an entry point for user data).
pub fn reference_fp16_gemm(
    x: &[f32],
    m: usize,
    k: usize,
    w: &[f16],
    n: usize,
    epilogue: Fp16Epilogue<'_>,
) -> Vec<f32> {
    let mut out = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut total = 0.0f32;
            for k0 in (0..k).step_by(K_BLOCK) {
                let mut chain = 0.0f32;
                for kk in k0..(k0 + K_BLOCK).min(k) {
                    chain = x[i * k + kk].mul_add(w[j * k + kk].to_f32(), chain);
                }
                total = if k0 == 0 { chain } else { total + chain };
            }
            if let Some(b) = epilogue.bias {
                total += b[j];
            }
            if epilogue.relu && total < 0.0 {
                total = 0.0;
            }
            out[i * n + j] = total;
        }
    }
    out
}
