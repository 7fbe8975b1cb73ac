//! The NEON epilogue shared by the aarch64 families: the formulas of
//! [`crate::gemm::pipeline`] eight lanes at a time, with the same operations in the same order
//! (`fmla` is the fused `mul_add`, `scvtf` the `as f32` conversion). The per-column
//! zero-point correction of symmetric weights is fused into the same pass.
//!
//! The one difference to emulate is the float → int conversion: the definition is x86
//! `cvtps2dq` (round half to even, NaN and |x| ≥ 2³¹ give `i32::MIN`, which the clamp turns
//! into the lower bound), while `fcvtns` rounds the same way but saturates (and maps NaN to
//! 0). Values below −2³¹ saturate to `i32::MIN` as on x86; lanes that are NaN or ≥ 2³¹ are
//! replaced by what the max-then-min clamp makes of `i32::MIN`: `min(lo, hi)` (the lower bound,
//! or ReLU6's upper bound when a tiny output scale wraps it below the zero point).

use std::arch::aarch64::*;

use crate::gemm::pipeline::{
    DequantVecs, OutRow, RequantVecs, RowFix, Stage, dequantize_one, requantize_one,
};

/// Converts one row segment of corrected sums.
pub(crate) fn finish(stage: &Stage, n0: usize, raw: &[i32], out: OutRow<'_>) {
    convert(stage, n0, raw, None, out);
}

/// Converts one row segment of raw accumulators, applying `fix` first (fused into the
/// conversion for symmetric weights; `acc` is scratch).
pub(crate) fn finish_fixed(
    stage: &Stage,
    n0: usize,
    acc: &mut [i32],
    fix: RowFix<'_>,
    out: OutRow<'_>,
) {
    match fix.row {
        None => convert(stage, n0, acc, Some(fix.corr), out),
        Some(_) => {
            fix.apply(acc);
            convert(stage, n0, acc, None, out);
        }
    }
}

/// Converts `acc + corr` (wrapping; `corr` absent means zero).
fn convert(stage: &Stage, n0: usize, acc: &[i32], corr: Option<&[i32]>, out: OutRow<'_>) {
    let n = acc.len();
    assert!(corr.is_none_or(|c| c.len() == n), "correction length");
    match (stage, out) {
        (Stage::Requant(r), OutRow::U8(out)) => {
            assert!(
                out.len() == n
                    && r.mult.len() >= n0 + n
                    && r.bias_a.len() >= n0 + n
                    && r.bias_b.len() >= n0 + n
            );
            // SAFETY: NEON is enabled for the whole build (asserted at compile time in
            // `aarch64/mod.rs`) and checked by every family constructor; lengths asserted above.
            unsafe { requant_row(r, n0, acc, corr, out) }
        }
        (Stage::Dequant(d), OutRow::F32(out)) => {
            assert!(
                out.len() == n
                    && d.w_scales.len() >= n0 + n
                    && d.bias.is_none_or(|b| b.len() >= n0 + n)
            );
            // SAFETY: as above.
            unsafe { dequant_row(d, n0, acc, corr, out) }
        }
        (stage, out) => match corr {
            None => stage.finish_scalar(n0, acc, out),
            Some(c) => {
                let raw: Vec<i32> = acc
                    .iter()
                    .zip(c)
                    .map(|(&x, &y)| x.wrapping_add(y))
                    .collect();
                stage.finish_scalar(n0, &raw, out);
            }
        },
    }
}

/// Four corrected sums from `acc[j..]` and `corr[j..]`.
///
/// # Safety
/// NEON available; `j + 4 ≤ acc.len()`, and `≤ corr.len()` when present.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn load_fixed(acc: &[i32], corr: Option<&[i32]>, j: usize) -> int32x4_t {
    // SAFETY: in bounds by the function's contract.
    unsafe {
        let x = vld1q_s32(acc.as_ptr().add(j));
        match corr {
            Some(c) => vaddq_s32(x, vld1q_s32(c.as_ptr().add(j))),
            None => x,
        }
    }
}

/// The scalar corrected sum `acc[t] + corr[t]`.
fn fixed(acc: &[i32], corr: Option<&[i32]>, t: usize) -> i32 {
    corr.map_or(acc[t], |c| acc[t].wrapping_add(c[t]))
}

/// # Safety
/// NEON available; `out.len() == raw.len()` (and `corr`'s when present), the vectors cover
/// `n0 + raw.len()`.
#[target_feature(enable = "neon")]
unsafe fn requant_row(
    r: &RequantVecs,
    n0: usize,
    raw: &[i32],
    corr: Option<&[i32]>,
    out: &mut [u8],
) {
    let n = raw.len();
    let (mult, ba, bb) = (
        &r.mult[n0..n0 + n],
        &r.bias_a[n0..n0 + n],
        &r.bias_b[n0..n0 + n],
    );
    let zp = vdupq_n_s32(r.zero_point);
    let lo = vdupq_n_s32(r.lo);
    let hi = vdupq_n_s32(r.hi);
    let limit = vdupq_n_f32(2_147_483_648.0);
    let four = |j: usize| {
        // SAFETY: callers pass `j + 4 <= n`; every slice here has length n.
        unsafe {
            let x = vcvtq_f32_s32(load_fixed(raw, corr, j));
            let xf = vfmaq_f32(
                x,
                vld1q_f32(ba.as_ptr().add(j)),
                vld1q_f32(bb.as_ptr().add(j)),
            );
            let y = vmulq_f32(xf, vld1q_f32(mult.as_ptr().add(j)));
            let q = vminq_s32(vmaxq_s32(vqaddq_s32(vcvtnq_s32_f32(y), zp), lo), hi);
            // x86 gives i32::MIN for NaN and y ≥ 2³¹, which max-then-min clamps to
            // `min(lo, hi)` (`hi` when ReLU6's bound wraps below the zero point); `y < 2³¹`
            // is false exactly for those.
            vbslq_s32(vcltq_f32(y, limit), q, vminq_s32(lo, hi))
        }
    };
    let mut j = 0;
    while j + 8 <= n {
        let (q0, q1) = (four(j), four(j + 4));
        let w16 = vcombine_u16(
            vmovn_u32(vreinterpretq_u32_s32(q0)),
            vmovn_u32(vreinterpretq_u32_s32(q1)),
        );
        // SAFETY: j + 8 <= n = out.len(); every lane is in 0..=255 after the clamp.
        unsafe { vst1_u8(out.as_mut_ptr().add(j), vmovn_u16(w16)) };
        j += 8;
    }
    for t in j..n {
        let x = fixed(raw, corr, t);
        out[t] = requantize_one(x, ba[t], bb[t], mult[t], r.zero_point, r.lo, r.hi);
    }
}

/// # Safety
/// NEON available; `out.len() == raw.len()` (and `corr`'s when present), the vectors cover
/// `n0 + raw.len()`.
#[target_feature(enable = "neon")]
unsafe fn dequant_row(
    d: &DequantVecs<'_>,
    n0: usize,
    raw: &[i32],
    corr: Option<&[i32]>,
    out: &mut [f32],
) {
    let n = raw.len();
    let w_scales = &d.w_scales[n0..n0 + n];
    let bias = d.bias.map(|b| &b[n0..n0 + n]);
    let zero = vdupq_n_f32(0.0);
    let act_scale = vdupq_n_f32(d.act_scale);
    let mut j = 0;
    while j + 4 <= n {
        // SAFETY: j + 4 <= n and every slice here has length n.
        unsafe {
            let xf = vcvtq_f32_s32(load_fixed(raw, corr, j));
            let s = vmulq_f32(act_scale, vld1q_f32(w_scales.as_ptr().add(j)));
            let mut y = match bias {
                Some(b) => vfmaq_f32(vld1q_f32(b.as_ptr().add(j)), xf, s),
                None => vmulq_f32(xf, s),
            };
            if d.relu {
                y = vbslq_f32(vcltq_f32(y, zero), zero, y);
            }
            vst1q_f32(out.as_mut_ptr().add(j), y);
        }
        j += 4;
    }
    for t in j..n {
        out[t] = dequantize_one(
            fixed(raw, corr, t),
            d.scale(n0 + t),
            bias.map(|b| b[t]),
            d.relu,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cycles through `values` with a stride, so neighbouring lanes get different values.
    fn pick<T: Copy>(values: &[T], i: usize, stride: usize) -> T {
        values[(i * stride + i / values.len()) % values.len()]
    }

    const RAWS: [i32; 12] = [
        0,
        1,
        -1,
        3,
        -5,
        7,
        1_000_001,
        -777_777,
        i32::MAX,
        i32::MIN,
        i32::MIN + 1,
        2_147_483_520,
    ];

    /// Halves (ties), results near ±2³¹, overflow to infinity, NaN and negative zero.
    const FLOATS: [f32; 12] = [
        0.5,
        1.0,
        -0.5,
        2.5e-3,
        1.0e10,
        -1.0e10,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -0.0,
        1.0,
        0.999_999_94,
    ];

    /// A zero-point correction: per-column terms, and a row-sum term when `zw` is present.
    struct Fix {
        corr: Vec<i32>,
        row: Option<(i32, Vec<i32>)>,
    }

    impl Fix {
        fn get(&self) -> RowFix<'_> {
            RowFix {
                corr: &self.corr,
                row: self.row.as_ref().map(|(s, z)| (*s, z.as_slice())),
            }
        }
    }

    /// No correction, a fused per-column one and one with a row sum, each with the corrected
    /// sums the scalar definition gets.
    fn fixes(acc: &[i32]) -> Vec<(Option<Fix>, Vec<i32>)> {
        let corr: Vec<i32> = (0..acc.len()).map(|i| pick(&RAWS, i, 7)).collect();
        let zw: Vec<i32> = (0..acc.len())
            .map(|i| (i as i32 * 37) % 256 - 128)
            .collect();
        let with_row = Fix {
            corr: corr.clone(),
            row: Some((-123_457, zw)),
        };
        let mut row_raw = acc.to_vec();
        with_row.get().apply(&mut row_raw);
        let col_raw = acc
            .iter()
            .zip(&corr)
            .map(|(&a, &c)| a.wrapping_add(c))
            .collect();
        vec![
            (None, acc.to_vec()),
            (Some(Fix { corr, row: None }), col_raw),
            (Some(with_row), row_raw),
        ]
    }

    #[test]
    fn requant_equals_the_scalar_definition_on_edge_values() {
        let n = 203;
        let raw: Vec<i32> = (0..n).map(|i| pick(&RAWS, i, 5)).collect();
        for (zero_point, lo, hi) in [(0, 0, 255), (128, 0, 255), (17, 17, 200), (255, 255, 255)] {
            let r = RequantVecs {
                mult: (0..n).map(|i| pick(&FLOATS, i, 7)).collect(),
                bias_a: (0..n).map(|i| pick(&FLOATS, i, 3)).collect(),
                bias_b: (0..n).map(|i| pick(&FLOATS, i, 11)).collect(),
                zero_point,
                lo,
                hi,
            };
            let stage = Stage::requant(r);
            for n0 in [0, 5] {
                for (fix, want_raw) in fixes(&raw[..n - n0]) {
                    let len = n - n0;
                    let (mut got, mut want) = (vec![1u8; len], vec![2u8; len]);
                    let mut acc = raw[..len].to_vec();
                    match &fix {
                        None => finish(&stage, n0, &acc, OutRow::U8(&mut got)),
                        Some(f) => {
                            finish_fixed(&stage, n0, &mut acc, f.get(), OutRow::U8(&mut got))
                        }
                    }
                    stage.finish_scalar(n0, &want_raw, OutRow::U8(&mut want));
                    assert_eq!(got, want, "zp {zero_point}, [{lo}, {hi}], n0 {n0}");
                }
            }
        }
    }

    #[test]
    fn dequant_equals_the_scalar_definition_on_edge_values() {
        let n = 203;
        let raw: Vec<i32> = (0..n).map(|i| pick(&RAWS, i, 5)).collect();
        for (bias, relu) in [(false, false), (true, false), (false, true), (true, true)] {
            let w_scales: Vec<f32> = (0..n).map(|i| pick(&FLOATS, i, 7)).collect();
            let biases: Vec<f32> = (0..n).map(|i| pick(&FLOATS, i, 3)).collect();
            let d = DequantVecs {
                act_scale: 0.75,
                w_scales: &w_scales,
                bias: bias.then_some(&biases[..]),
                relu,
            };
            let stage = Stage::Dequant(d);
            for n0 in [0, 3] {
                for (fix, want_raw) in fixes(&raw[..n - n0]) {
                    let len = n - n0;
                    let (mut got, mut want) = (vec![1f32; len], vec![2f32; len]);
                    let mut acc = raw[..len].to_vec();
                    match &fix {
                        None => finish(&stage, n0, &acc, OutRow::F32(&mut got)),
                        Some(f) => {
                            finish_fixed(&stage, n0, &mut acc, f.get(), OutRow::F32(&mut got))
                        }
                    }
                    stage.finish_scalar(n0, &want_raw, OutRow::F32(&mut want));
                    let got: Vec<u32> = got.iter().map(|x| x.to_bits()).collect();
                    let want: Vec<u32> = want.iter().map(|x| x.to_bits()).collect();
                    assert_eq!(got, want, "bias {bias}, relu {relu}, n0 {n0}");
                }
            }
        }
    }
}
