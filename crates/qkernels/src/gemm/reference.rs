//! The scalar oracle: a plain triple loop in i64 followed by the pipeline formulas written out
//! exactly as PyTorch numerics §2.8 / §2.10 state them. It reads the unpacked `N × K` weights
//! and shares no code with the kernels except the two scalar definitions
//! [`cvt_rne_x86`] and [`quantized_six`].

use super::pack::WeightQParams;
use super::pipeline::{Activation, Output, cvt_rne_x86, quantized_six};
use crate::error::{GemmError, Result};

/// How products are summed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accumulation {
    /// Exact integer sums (VNNI, widening kernels, PyTorch on VNNI CPUs).
    Exact,
    /// fbgemm's non-VNNI `vpmaddubsw`: raw `a[k]·w[k] + a[k+1]·w[k+1]` for even `k` saturated
    /// to i16, then summed exactly (what [`super::KernelKind::Avx2Saturating`] computes).
    PairSaturating16,
}

/// The zero-point-corrected sum `raw[m,n]`, wrapped to i32 like the kernels' modular
/// arithmetic (exact whenever the overflow check of `gemm_u8s8` passes).
#[allow(clippy::too_many_arguments)]
pub fn raw_sum(
    a: &[u8],
    lda: usize,
    m: usize,
    a_zero_point: i32,
    w: &[i8],
    n: usize,
    k: usize,
    w_zero_point: i32,
    accumulation: Accumulation,
) -> i32 {
    let arow = &a[m * lda..m * lda + k];
    let wrow = &w[n * k..n * k + k];
    let exact: i64 = match accumulation {
        Accumulation::Exact => arow
            .iter()
            .zip(wrow)
            .map(|(&x, &y)| {
                (i64::from(x) - i64::from(a_zero_point)) * (i64::from(y) - i64::from(w_zero_point))
            })
            .sum(),
        Accumulation::PairSaturating16 => {
            let pairs: i64 = arow
                .chunks(2)
                .zip(wrow.chunks(2))
                .map(|(x, y)| {
                    let s: i64 = x
                        .iter()
                        .zip(y)
                        .map(|(&p, &q)| i64::from(p) * i64::from(q))
                        .sum();
                    s.clamp(i64::from(i16::MIN), i64::from(i16::MAX))
                })
                .sum();
            let row_sum: i64 = arow.iter().map(|&x| i64::from(x)).sum();
            let col_sum: i64 = wrow.iter().map(|&y| i64::from(y)).sum();
            let kk = k as i64;
            let (za, zw) = (i64::from(a_zero_point), i64::from(w_zero_point));
            pairs - za * (col_sum - zw * kk) - row_sum * zw
        }
    };
    exact as i32
}

/// The oracle GEMM: `a` is `m × k` (row stride `lda`), `w` is `n × k` row-major. Errors on
/// short buffers, small strides and qparam or bias lengths ≠ `n`; an
/// [`Output::QUInt8Prepared`] (built for packed weights, not these) gives
/// [`GemmError::PreparedMismatch`]: the oracle takes the parameters ([`Output::QUInt8`]).
#[allow(clippy::too_many_arguments)]
pub fn gemm_u8s8(
    a: &[u8],
    m: usize,
    lda: usize,
    a_zero_point: i32,
    w: &[i8],
    n: usize,
    k: usize,
    qparams: WeightQParams<'_>,
    accumulation: Accumulation,
    out: Output<'_>,
) -> Result<()> {
    let need =
        |rows: usize, ld: usize, cols: usize| if rows == 0 { 0 } else { (rows - 1) * ld + cols };
    if a.len() < need(m, lda, k) || lda < k {
        return Err(GemmError::BufferTooSmall {
            what: "activations",
            needed: need(m, lda, k),
            got: a.len(),
        });
    }
    if w.len() < n * k {
        return Err(GemmError::BufferTooSmall {
            what: "weights",
            needed: n * k,
            got: w.len(),
        });
    }
    let (scales, zps, per_channel): (Vec<f32>, Vec<i32>, bool) = match qparams {
        WeightQParams::PerTensor { scale, zero_point } => {
            (vec![scale; n], vec![zero_point; n], false)
        }
        WeightQParams::PerChannel {
            scales,
            zero_points,
        } => {
            if scales.len() != n || zero_points.len() != n {
                return Err(GemmError::QParamsLength {
                    what: "weight qparams",
                    expected: n,
                    got: scales.len().min(zero_points.len()),
                });
            }
            (scales.to_vec(), zero_points.to_vec(), true)
        }
    };
    let scale_of = |j: usize| scales[j];
    let zp_of = |j: usize| zps[j];
    let raw =
        |i: usize, j: usize| raw_sum(a, lda, i, a_zero_point, w, j, k, zp_of(j), accumulation);
    let (out_len, ldc) = match &out {
        Output::I32 { out, ldc } => (out.len(), *ldc),
        Output::F32 { out, ldc, .. } => (out.len(), *ldc),
        Output::QUInt8 { out, ldc, .. } => (out.len(), *ldc),
        Output::QUInt8Prepared { .. } => {
            return Err(GemmError::PreparedMismatch { what: "weights" });
        }
    };
    super::driver::check_matrix("output", out_len, m, n, ldc)?;
    if let Output::QUInt8 { params, .. } = &out
        && let Some(b) = params.bias.filter(|b| b.len() != n)
    {
        return Err(GemmError::QParamsLength {
            what: "bias",
            expected: n,
            got: b.len(),
        });
    }
    if let Output::F32 { params, .. } = &out
        && let Some(b) = params.bias.filter(|b| b.len() != n)
    {
        return Err(GemmError::QParamsLength {
            what: "bias",
            expected: n,
            got: b.len(),
        });
    }
    match out {
        Output::I32 { out, ldc } => {
            for i in 0..m {
                for j in 0..n {
                    out[i * ldc + j] = raw(i, j);
                }
            }
        }
        Output::F32 { params, out, ldc } => {
            for i in 0..m {
                for j in 0..n {
                    let scale = params.act_scale * scale_of(j);
                    let rf = raw(i, j) as f32;
                    let y = match params.bias {
                        Some(b) => rf.mul_add(scale, b[j]),
                        None => rf * scale,
                    };
                    out[i * ldc + j] = if params.relu && y < 0.0 { 0.0 } else { y };
                }
            }
        }
        Output::QUInt8 { params, out, ldc } => {
            let zp = params.out_zero_point;
            let (lo, hi) = match params.activation {
                Activation::None => (0, 255),
                Activation::Relu => (zp, 255),
                Activation::Relu6 => (zp, quantized_six(params.out_scale, zp)),
            };
            for i in 0..m {
                for j in 0..n {
                    let atw = params.act_scale * scale_of(j);
                    let mult = atw / params.out_scale;
                    let rf = raw(i, j) as f32;
                    let xf = match params.bias {
                        None => rf,
                        Some(b) if per_channel => rf + b[j] / atw,
                        Some(b) => b[j].mul_add((1.0f64 / f64::from(atw)) as f32, rf),
                    };
                    let q = i64::from(cvt_rne_x86(xf * mult)) + i64::from(zp);
                    // max then min: `hi` (the quantized 6.0) may be below `lo`
                    out[i * ldc + j] = q.max(i64::from(lo)).min(i64::from(hi)) as u8;
                }
            }
        }
        Output::QUInt8Prepared { .. } => unreachable!("rejected above"),
    }
    Ok(())
}
