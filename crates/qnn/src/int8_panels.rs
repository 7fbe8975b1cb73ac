//! [`Int8Panels`]: a qint8 `[N, K]` weight packed for the int8 GEMM, shared by the static and
//! dynamic quantized Linear (and the dynamic recurrent gates).
//!
//! On AVX2 without VNNI the weight is packed twice: for the saturating `vpmaddubsw` family,
//! which is exact whenever no pair `a₀w₀ + a₁w₁` leaves i16 (always with PyTorch's
//! `reduce_range` activations, `0..=127`) and faster there, and for the exact widening family,
//! which takes every other call. Both give the same bits where the first is exact, so the
//! choice per call never changes a result.

use qkernels::gemm::{KernelKind, PackedWeights, WeightQParams};

use crate::error::Result;

/// The packed panels of one weight: the fastest family for this CPU, and, when that family
/// saturates int16 pair sums, an exact family for the calls it cannot take.
#[derive(Clone, Debug)]
pub(crate) struct Int8Panels {
    fast: PackedWeights,
    exact: Option<PackedWeights>,
    /// `max |W|` over the raw int8 values (what the pair sums multiply).
    w_abs_max: i32,
}

impl Int8Panels {
    /// Packs `values` (`n × k` row-major, PyTorch Linear layout) for [`kernel_kinds`].
    pub(crate) fn pack(values: &[i8], n: usize, k: usize, q: WeightQParams<'_>) -> Result<Self> {
        let (fast, exact) = kernel_kinds();
        Ok(Self {
            fast: PackedWeights::pack(values, n, k, q, fast)?,
            exact: exact
                .map(|kind| PackedWeights::pack(values, n, k, q, kind))
                .transpose()?,
            w_abs_max: values
                .iter()
                .map(|&v| i32::from(v).abs())
                .max()
                .unwrap_or(0),
        })
    }

    /// Reduction length (K, `in_features`).
    pub(crate) fn k(&self) -> usize {
        self.fast.k()
    }

    /// Output channels (N).
    pub(crate) fn n(&self) -> usize {
        self.fast.n()
    }

    /// The panels a call with activations up to `a_max` must use: the saturating family is
    /// exact when no pair `a₀w₀ + a₁w₁` can leave i16, i.e. `2·a_max·max|W| ≤ 32767`
    /// (always with `reduce_range` activations `≤ 127`).
    pub(crate) fn for_activations(&self, a_max: u8) -> &PackedWeights {
        match &self.exact {
            Some(exact) if !pairs_fit_i16(a_max, self.w_abs_max) => exact,
            _ => &self.fast,
        }
    }

    /// The panels for the activation bytes `a` (scanned for their maximum only when there is
    /// a choice to make).
    pub(crate) fn for_data(&self, a: &[u8]) -> &PackedWeights {
        if self.exact.is_some() {
            self.for_activations(a.iter().fold(0u8, |m, &v| m.max(v)))
        } else {
            &self.fast
        }
    }
}

/// Whether `a₀w₀ + a₁w₁` fits in i16 for `0 ≤ a ≤ a_max`, `|w| ≤ w_abs_max`.
fn pairs_fit_i16(a_max: u8, w_abs_max: i32) -> bool {
    2 * i32::from(a_max) * w_abs_max <= i32::from(i16::MAX)
}

/// The families int8 weights are packed for: the best exact one of this CPU, except on AVX2
/// without VNNI, where the saturating `vpmaddubsw` family comes first (one integer multiply
/// per 32 products instead of two; about 1.1× the widening family on Zen 2) and the exact
/// one is kept for the calls it cannot take.
pub(crate) fn kernel_kinds() -> (KernelKind, Option<KernelKind>) {
    let best = KernelKind::best();
    if best == KernelKind::Avx2 && KernelKind::Avx2Saturating.is_runnable() {
        (KernelKind::Avx2Saturating, Some(best))
    } else {
        (best, None)
    }
}

#[cfg(test)]
mod tests {
    use qkernels::gemm::{self, Activations, Output};

    use super::*;

    #[test]
    fn saturating_pairs_are_used_only_where_exact() {
        assert!(pairs_fit_i16(127, 128));
        assert!(pairs_fit_i16(128, 127));
        assert!(!pairs_fit_i16(128, 128));
        assert!(!pairs_fit_i16(255, 100));
    }

    /// Activations of 255 against weights of −128 saturate `vpmaddubsw` pairs; the fallback
    /// family must give the exact sums.
    #[test]
    fn full_range_activations_take_the_exact_family() {
        let k = 8;
        let w = vec![-128i8; 2 * k];
        let q = WeightQParams::PerTensor {
            scale: 0.5,
            zero_point: 0,
        };
        let packed = Int8Panels::pack(&w, 2, k, q).unwrap();
        let a = vec![255u8; k];
        let chosen = packed.for_data(&a);
        assert!(!chosen.kind().saturates_pairs());
        let mut out = vec![0i32; 2];
        let acts = Activations {
            data: &a,
            rows: 1,
            row_stride: k,
            zero_point: 0,
        };
        gemm::gemm_u8s8(
            acts,
            chosen,
            Output::I32 {
                out: &mut out,
                ldc: 2,
            },
        )
        .unwrap();
        assert_eq!(out, [-128 * 255 * 8; 2]);
        assert_eq!(packed.for_activations(127).kind(), kernel_kinds().0);
        assert_eq!(packed.for_data(&[127; 8]).kind(), kernel_kinds().0);
    }
}
