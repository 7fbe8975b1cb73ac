//! The vector epilogues shared by the x86 families: the formulas of
//! [`crate::gemm::pipeline`] 8 (AVX2+FMA) or 16 (AVX-512) lanes at a time, with the same
//! operations in the same order (`cvtps2dq` is the x86 conversion the scalar code
//! emulates), fused with the zero-point correction of symmetric weights. Tails use the
//! scalar definitions.

use std::arch::x86_64::*;

use crate::gemm::pipeline::{
    DequantVecs, OutRow, RequantVecs, RowFix, Stage, dequantize_one, requantize_one,
};
use crate::isa::Isa;

/// Proof that AVX2 and FMA were detected (and, if `wide`, AVX-512 F/BW); only the family
/// constructors make one.
#[derive(Clone, Copy)]
pub(crate) struct CpuChecked {
    wide: bool,
}

impl CpuChecked {
    /// The AVX2+FMA proof, if the CPU has them.
    pub(crate) fn new() -> Option<Self> {
        Isa::Avx2
            .is_supported()
            .then_some(CpuChecked { wide: false })
    }

    /// The AVX-512 proof (16-lane epilogue), if the CPU has AVX-512 F/BW/VL/VNNI.
    pub(crate) fn new_wide() -> Option<Self> {
        Isa::Avx512Vnni
            .is_supported()
            .then_some(CpuChecked { wide: true })
    }
}

/// Converts one row segment of raw accumulators, applying `fix` first: fused into the
/// conversion as a correction vector for symmetric weights, applied to `acc` (scratch)
/// otherwise. Shared by every x86 family's `Microkernel::finish_fixed`.
pub(crate) fn finish_fixed(
    stage: &Stage<'_>,
    n0: usize,
    acc: &mut [i32],
    fix: RowFix<'_>,
    out: OutRow<'_>,
    cpu: CpuChecked,
) {
    let corr = match fix.row {
        None => Some(fix.corr),
        Some(_) => {
            fix.apply(acc);
            None
        }
    };
    finish(stage, n0, acc, corr, out, cpu);
}

/// Converts one row segment `raw[j] = acc[j] + corr[j]` (wrapping; `corr` absent means
/// zero) through the stage.
pub(crate) fn finish(
    stage: &Stage<'_>,
    n0: usize,
    acc: &[i32],
    corr: Option<&[i32]>,
    out: OutRow<'_>,
    cpu: CpuChecked,
) {
    let n = acc.len();
    assert!(corr.is_none_or(|c| c.len() == n), "correction length");
    match (stage, out) {
        (Stage::Requant(r), OutRow::U8(out)) => {
            assert!(out.len() == n && r.mult.len() >= n0 + n);
            if cpu.wide {
                // SAFETY: AVX-512 F/BW were detected (`wide` is only set by `new_wide`);
                // lengths asserted above.
                unsafe { requant_row_512(r, n0, acc, corr, out) }
            } else {
                // SAFETY: AVX2 and FMA were detected (a `CpuChecked` exists only after
                // `new`); lengths asserted above.
                unsafe { requant_row(r, n0, acc, corr, out) }
            }
        }
        (Stage::Dequant(d), OutRow::F32(out)) => {
            assert!(
                out.len() == n
                    && d.w_scales.len() >= n0 + n
                    && d.bias.is_none_or(|b| b.len() >= n0 + n)
            );
            if cpu.wide {
                // SAFETY: AVX-512 F was detected (`wide` is only set by `new_wide`); lengths
                // asserted above.
                unsafe { dequant_row_512(d, n0, acc, corr, out) }
            } else {
                // SAFETY: AVX2 and FMA were detected; lengths asserted above.
                unsafe { dequant_row(d, n0, acc, corr, out) }
            }
        }
        (stage, out) => match corr {
            Some(c) => {
                let raw: Vec<i32> = acc
                    .iter()
                    .zip(c)
                    .map(|(&a, &b)| a.wrapping_add(b))
                    .collect();
                stage.finish_scalar(n0, &raw, out);
            }
            None => stage.finish_scalar(n0, acc, out),
        },
    }
}

/// # Safety
/// AVX2 and FMA available; `out.len() == acc.len()`, vectors cover `n0 + acc.len()`,
/// `corr` (if any) has `acc.len()` entries.
#[target_feature(enable = "avx2,fma")]
unsafe fn requant_row(
    r: &RequantVecs,
    n0: usize,
    acc: &[i32],
    corr: Option<&[i32]>,
    out: &mut [u8],
) {
    let n = acc.len();
    let (mult, ba, bb) = (
        &r.mult[n0..n0 + n],
        &r.bias_a[n0..n0 + n],
        &r.bias_b[n0..n0 + n],
    );
    let zp = _mm256_set1_epi32(r.zero_point);
    let lo = _mm256_set1_epi32(r.lo);
    let hi = _mm256_set1_epi32(r.hi);
    let floor = _mm256_set1_epi32(-256);
    let ceil = _mm256_set1_epi32(511);
    let mut j = 0;
    while j + 8 <= n {
        // SAFETY: j + 8 <= n and every slice here has length n.
        unsafe {
            let mut x = _mm256_loadu_si256(acc.as_ptr().add(j).cast());
            if let Some(c) = corr {
                x = _mm256_add_epi32(x, _mm256_loadu_si256(c.as_ptr().add(j).cast()));
            }
            let xf = _mm256_fmadd_ps(
                _mm256_loadu_ps(ba.as_ptr().add(j)),
                _mm256_loadu_ps(bb.as_ptr().add(j)),
                _mm256_cvtepi32_ps(x),
            );
            let q = _mm256_cvtps_epi32(_mm256_mul_ps(xf, _mm256_loadu_ps(mult.as_ptr().add(j))));
            // Clamping to [-256, 511] first keeps `q + zp` from wrapping and changes no result.
            let q = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(q, floor), ceil), zp);
            let q = _mm256_min_epi32(_mm256_max_epi32(q, lo), hi);
            let w16 = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256::<1>(q));
            let b8 = _mm_packus_epi16(w16, w16);
            _mm_storel_epi64(out.as_mut_ptr().add(j).cast(), b8);
        }
        j += 8;
    }
    for t in j..n {
        let raw = acc[t].wrapping_add(corr.map_or(0, |c| c[t]));
        out[t] = requantize_one(raw, ba[t], bb[t], mult[t], r.zero_point, r.lo, r.hi);
    }
}

/// # Safety
/// AVX-512 F/BW available; `out.len() == acc.len()`, vectors cover `n0 + acc.len()`,
/// `corr` (if any) has `acc.len()` entries.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn requant_row_512(
    r: &RequantVecs,
    n0: usize,
    acc: &[i32],
    corr: Option<&[i32]>,
    out: &mut [u8],
) {
    let n = acc.len();
    let (mult, ba, bb) = (
        &r.mult[n0..n0 + n],
        &r.bias_a[n0..n0 + n],
        &r.bias_b[n0..n0 + n],
    );
    let zp = _mm512_set1_epi32(r.zero_point);
    let lo = _mm512_set1_epi32(r.lo);
    let hi = _mm512_set1_epi32(r.hi);
    let floor = _mm512_set1_epi32(-256);
    let ceil = _mm512_set1_epi32(511);
    let mut j = 0;
    while j + 16 <= n {
        // SAFETY: j + 16 <= n and every slice here has length n.
        unsafe {
            let mut x = _mm512_loadu_si512(acc.as_ptr().add(j).cast());
            if let Some(c) = corr {
                x = _mm512_add_epi32(x, _mm512_loadu_si512(c.as_ptr().add(j).cast()));
            }
            let xf = _mm512_fmadd_ps(
                _mm512_loadu_ps(ba.as_ptr().add(j)),
                _mm512_loadu_ps(bb.as_ptr().add(j)),
                _mm512_cvtepi32_ps(x),
            );
            let q = _mm512_cvtps_epi32(_mm512_mul_ps(xf, _mm512_loadu_ps(mult.as_ptr().add(j))));
            let q = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(q, floor), ceil), zp);
            let q = _mm512_min_epi32(_mm512_max_epi32(q, lo), hi);
            // q is in [lo, hi] ⊂ [0, 255]: truncating to bytes is exact.
            _mm_storeu_si128(out.as_mut_ptr().add(j).cast(), _mm512_cvtepi32_epi8(q));
        }
        j += 16;
    }
    for t in j..n {
        let raw = acc[t].wrapping_add(corr.map_or(0, |c| c[t]));
        out[t] = requantize_one(raw, ba[t], bb[t], mult[t], r.zero_point, r.lo, r.hi);
    }
}

/// # Safety
/// AVX2 and FMA available; `out.len() == acc.len()`, vectors cover `n0 + acc.len()`,
/// `corr` (if any) has `acc.len()` entries.
#[target_feature(enable = "avx2,fma")]
unsafe fn dequant_row(
    d: &DequantVecs<'_>,
    n0: usize,
    acc: &[i32],
    corr: Option<&[i32]>,
    out: &mut [f32],
) {
    let n = acc.len();
    let w_scales = &d.w_scales[n0..n0 + n];
    let bias = d.bias.map(|b| &b[n0..n0 + n]);
    let zero = _mm256_setzero_ps();
    let act_scale = _mm256_set1_ps(d.act_scale);
    let mut j = 0;
    while j + 8 <= n {
        // SAFETY: j + 8 <= n and every slice here has length n.
        unsafe {
            let mut x = _mm256_loadu_si256(acc.as_ptr().add(j).cast());
            if let Some(c) = corr {
                x = _mm256_add_epi32(x, _mm256_loadu_si256(c.as_ptr().add(j).cast()));
            }
            let xf = _mm256_cvtepi32_ps(x);
            let s = _mm256_mul_ps(act_scale, _mm256_loadu_ps(w_scales.as_ptr().add(j)));
            let mut y = match bias {
                Some(b) => _mm256_fmadd_ps(xf, s, _mm256_loadu_ps(b.as_ptr().add(j))),
                None => _mm256_mul_ps(xf, s),
            };
            if d.relu {
                y = _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(y, zero), y);
            }
            _mm256_storeu_ps(out.as_mut_ptr().add(j), y);
        }
        j += 8;
    }
    for t in j..n {
        let raw = acc[t].wrapping_add(corr.map_or(0, |c| c[t]));
        out[t] = dequantize_one(raw, d.scale(n0 + t), bias.map(|b| b[t]), d.relu);
    }
}

/// # Safety
/// AVX-512 F available; `out.len() == acc.len()`, vectors cover `n0 + acc.len()`,
/// `corr` (if any) has `acc.len()` entries.
#[target_feature(enable = "avx512f")]
unsafe fn dequant_row_512(
    d: &DequantVecs<'_>,
    n0: usize,
    acc: &[i32],
    corr: Option<&[i32]>,
    out: &mut [f32],
) {
    let n = acc.len();
    let w_scales = &d.w_scales[n0..n0 + n];
    let bias = d.bias.map(|b| &b[n0..n0 + n]);
    let zero = _mm512_setzero_ps();
    let act_scale = _mm512_set1_ps(d.act_scale);
    let mut j = 0;
    while j + 16 <= n {
        // SAFETY: j + 16 <= n and every slice here has length n.
        unsafe {
            let mut x = _mm512_loadu_si512(acc.as_ptr().add(j).cast());
            if let Some(c) = corr {
                x = _mm512_add_epi32(x, _mm512_loadu_si512(c.as_ptr().add(j).cast()));
            }
            let xf = _mm512_cvtepi32_ps(x);
            let s = _mm512_mul_ps(act_scale, _mm512_loadu_ps(w_scales.as_ptr().add(j)));
            let mut y = match bias {
                Some(b) => _mm512_fmadd_ps(xf, s, _mm512_loadu_ps(b.as_ptr().add(j))),
                None => _mm512_mul_ps(xf, s),
            };
            if d.relu {
                // Lanes with y < 0 (ordered, so NaN and -0.0 are kept) become +0.0.
                let negative = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(y, zero);
                y = _mm512_mask_mov_ps(y, negative, zero);
            }
            _mm512_storeu_ps(out.as_mut_ptr().add(j), y);
        }
        j += 16;
    }
    for t in j..n {
        let raw = acc[t].wrapping_add(corr.map_or(0, |c| c[t]));
        out[t] = dequantize_one(raw, d.scale(n0 + t), bias.map(|b| b[t]), d.relu);
    }
}
