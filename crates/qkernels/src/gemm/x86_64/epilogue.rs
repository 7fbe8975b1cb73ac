//! The AVX2+FMA epilogue shared by every x86 family (all of them require AVX2 and FMA):
//! the formulas of [`crate::gemm::pipeline`] eight lanes at a time, with the same
//! operations in the same order (`cvtps2dq` is the x86 conversion the scalar code emulates).

use std::arch::x86_64::*;

use crate::gemm::pipeline::{
    DequantVecs, OutRow, RequantVecs, Stage, dequantize_one, requantize_one,
};

/// Converts one row segment. Callers must have checked AVX2 and FMA (every x86 family's
/// constructor does).
pub(crate) fn finish(
    stage: &Stage,
    n0: usize,
    raw: &[i32],
    out: OutRow<'_>,
    cpu_checked: CpuChecked,
) {
    let _ = cpu_checked;
    match (stage, out) {
        (Stage::Requant(r), OutRow::U8(out)) => {
            assert!(out.len() == raw.len() && r.mult.len() >= n0 + raw.len());
            // SAFETY: AVX2+FMA were detected (a `CpuChecked` exists only after the family's
            // constructor checked them); lengths asserted above.
            unsafe { requant_row(r, n0, raw, out) }
        }
        (Stage::Dequant(d), OutRow::F32(out)) => {
            assert!(out.len() == raw.len() && d.scale.len() >= n0 + raw.len());
            // SAFETY: as above.
            unsafe { dequant_row(d, n0, raw, out) }
        }
        (stage, out) => stage.finish_scalar(n0, raw, out),
    }
}

/// Proof that AVX2 and FMA were detected; only the family constructors make one.
#[derive(Clone, Copy)]
pub(crate) struct CpuChecked(());

impl CpuChecked {
    /// Returns the proof if the CPU has AVX2 and FMA.
    pub(crate) fn new() -> Option<Self> {
        crate::isa::Isa::Avx2
            .is_supported()
            .then_some(CpuChecked(()))
    }
}

/// # Safety
/// AVX2 and FMA available; `out.len() == raw.len()`, vectors cover `n0 + raw.len()`.
#[target_feature(enable = "avx2,fma")]
unsafe fn requant_row(r: &RequantVecs, n0: usize, raw: &[i32], out: &mut [u8]) {
    let n = raw.len();
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
            let x = _mm256_loadu_si256(raw.as_ptr().add(j).cast());
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
        out[t] = requantize_one(raw[t], ba[t], bb[t], mult[t], r.zero_point, r.lo, r.hi);
    }
}

/// # Safety
/// AVX2 and FMA available; `out.len() == raw.len()`, vectors cover `n0 + raw.len()`.
#[target_feature(enable = "avx2,fma")]
unsafe fn dequant_row(d: &DequantVecs, n0: usize, raw: &[i32], out: &mut [f32]) {
    let n = raw.len();
    let scale = &d.scale[n0..n0 + n];
    let bias = d.bias.as_ref().map(|b| &b[n0..n0 + n]);
    let zero = _mm256_setzero_ps();
    let mut j = 0;
    while j + 8 <= n {
        // SAFETY: j + 8 <= n and every slice here has length n.
        unsafe {
            let xf = _mm256_cvtepi32_ps(_mm256_loadu_si256(raw.as_ptr().add(j).cast()));
            let s = _mm256_loadu_ps(scale.as_ptr().add(j));
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
        out[t] = dequantize_one(raw[t], scale[t], bias.map(|b| b[t]), d.relu);
    }
}
