//! Choosing a scale and zero point from a value range: the two C++ `ChooseQuantizationParams`
//! (ATen `quant_utils` and FBGEMM) and the Python observers' `_calculate_qparams`.

use crate::dtype::QDType;
use crate::error::{QTensorError, Result};
use crate::qscheme::QScheme;

/// Scales below this are raised to it (it is the smallest normal `f16`).
const SMALL_SCALE_THRESHOLD: f32 = 6.1e-5;

/// `(min, max)` after the symmetric (`preserve_sparsity`) widening shared by both C++ variants:
/// `max_scale = max(|min / sym_qmin|, |max / sym_qmax|)` in `f32`, then
/// `min = f32(max_scale * sym_qmin)`, `max = f32(max_scale * sym_qmax)`.
fn symmetric_widen(min: f32, max: f32, qmin: i64, qmax: i64) -> (f32, f32) {
    let sym_qmin = -((qmax - qmin) / 2 + 1);
    let sym_qmax = (qmax - qmin) / 2;
    let max_scale = (min / sym_qmin as f32)
        .abs()
        .max((max / sym_qmax as f32).abs());
    (
        (f64::from(max_scale) * sym_qmin as f64) as f32,
        (f64::from(max_scale) * sym_qmax as f64) as f32,
    )
}

/// The power of two nearest to `scale` as the C++ code picks it (down below 1, up above).
fn power_of_two_scale(scale: f64) -> f64 {
    if scale < 1.0 {
        1.0 / 2f64.powi((1.0 / scale).log2().floor() as i32)
    } else {
        2f64.powi(scale.log2().ceil() as i32)
    }
}

/// Raises a scale below [`SMALL_SCALE_THRESHOLD`] to it and stretches `[min, max]` to match.
/// `scale` is the (pre-threshold) scale as `f32`; returns the new `(min, max)`.
fn amplify_small_range(min: f32, max: f32, scale: f32, qrange: i64) -> (f32, f32) {
    if min == 0.0 {
        (min, SMALL_SCALE_THRESHOLD * qrange as f32)
    } else if max == 0.0 {
        (-SMALL_SCALE_THRESHOLD * qrange as f32, max)
    } else {
        let amplifier = SMALL_SCALE_THRESHOLD / scale;
        (min * amplifier, max * amplifier)
    }
}

/// `nearbyint` of the initial zero point, clamped to `[qmin, qmax]` first.
fn nudge_zero_point(initial: f64, qmin: i64, qmax: i64) -> i32 {
    if initial < qmin as f64 {
        qmin as i32
    } else if initial > qmax as f64 {
        qmax as i32
    } else {
        initial.round_ties_even() as i32
    }
}

/// ATen `quant_utils::ChooseQuantizationParams` (numerics §2.6 A), used by
/// `quantize_per_tensor_dynamic`, `_choose_qparams_per_tensor` and dynamic linear.
///
/// `reduce_range` halves `qmin`/`qmax` with C integer division. The scale is computed and
/// returned in `f64`; a zero scale (or one whose `f32` reciprocal is infinite) becomes 0.1, a
/// scale below 6.1e-5 becomes `6.1e-5f32` with `[min, max]` amplified. The zero point comes
/// from the end with the smaller error `|q| - |r / scale|` (note: minus).
///
/// ```
/// use qtensor::choose_qparams_quant_utils;
/// assert_eq!(choose_qparams_quant_utils(0.0, 0.0, 0, 255, false, false, false), (0.1, 0));
/// ```
pub fn choose_qparams_quant_utils(
    min: f32,
    max: f32,
    qmin: i32,
    qmax: i32,
    preserve_sparsity: bool,
    force_scale_power_of_two: bool,
    reduce_range: bool,
) -> (f64, i32) {
    let (qmin, qmax) = if reduce_range {
        (i64::from(qmin / 2), i64::from(qmax / 2))
    } else {
        (i64::from(qmin), i64::from(qmax))
    };
    let symmetric = preserve_sparsity && min < 0.0 && max > 0.0;
    let (min, max) = if symmetric {
        symmetric_widen(min, max, qmin, qmax)
    } else {
        (min, max)
    };
    let (mut min, mut max) = (min.min(0.0), max.max(0.0));
    let qrange = qmax - qmin;
    let mut scale = (f64::from(max) - f64::from(min)) / qrange as f64;
    if scale as f32 == 0.0 || (1.0 / scale as f32).is_infinite() {
        scale = 0.1;
    }
    if force_scale_power_of_two {
        scale = power_of_two_scale(scale);
    }
    if scale < f64::from(SMALL_SCALE_THRESHOLD) {
        (min, max) = amplify_small_range(min, max, scale as f32, qrange);
        scale = f64::from(SMALL_SCALE_THRESHOLD);
    }
    let from_min = qmin as f64 - f64::from(min) / scale;
    let from_max = qmax as f64 - f64::from(max) / scale;
    let error_min = qmin.abs() as f64 - (f64::from(min) / scale).abs();
    let error_max = qmax.abs() as f64 - (f64::from(max) / scale).abs();
    let mut initial = if error_min < error_max {
        from_min
    } else {
        from_max
    };
    if preserve_sparsity && min < 0.0 && max > 0.0 {
        initial = (qmin + qmax) as f64 / 2.0;
    }
    (scale, nudge_zero_point(initial, qmin, qmax))
}

/// FBGEMM `ChooseQuantizationParams` (numerics §2.6 B), used by the fused moving-average
/// observer fake-quant. Like [`choose_qparams_quant_utils`] but the scale is an `f32`, the
/// error terms add (`|q| + |r / scale|`) and there is no `reduce_range`.
///
/// ```
/// use qtensor::choose_qparams_fbgemm;
/// // symmetric: max(|min| / 128, max / 127), zero point nearbyint(-0.5) = 0
/// assert_eq!(choose_qparams_fbgemm(-2.56, 1.27, -128, 127, true, false), (0.02, 0));
/// ```
pub fn choose_qparams_fbgemm(
    min: f32,
    max: f32,
    qmin: i32,
    qmax: i32,
    preserve_sparsity: bool,
    force_scale_power_of_two: bool,
) -> (f32, i32) {
    let (qmin, qmax) = (i64::from(qmin), i64::from(qmax));
    let symmetric = preserve_sparsity && min < 0.0 && max > 0.0;
    let (min, max) = if symmetric {
        symmetric_widen(min, max, qmin, qmax)
    } else {
        (min, max)
    };
    let (mut min, mut max) = (min.min(0.0), max.max(0.0));
    let qrange = qmax - qmin;
    let mut scale = ((f64::from(max) - f64::from(min)) / qrange as f64) as f32;
    if scale == 0.0 || (1.0 / scale).is_infinite() {
        scale = 0.1;
    }
    if force_scale_power_of_two {
        scale = power_of_two_scale(f64::from(scale)) as f32;
    }
    if scale < SMALL_SCALE_THRESHOLD {
        (min, max) = amplify_small_range(min, max, scale, qrange);
        scale = SMALL_SCALE_THRESHOLD;
    }
    let s = f64::from(scale);
    let from_min = qmin as f64 - f64::from(min) / s;
    let from_max = qmax as f64 - f64::from(max) / s;
    let error_min = qmin.abs() as f64 + (f64::from(min) / s).abs();
    let error_max = qmax.abs() as f64 + (f64::from(max) / s).abs();
    let mut initial = if error_min < error_max {
        from_min
    } else {
        from_max
    };
    if preserve_sparsity && min < 0.0 && max > 0.0 {
        initial = (qmin + qmax) as f64 / 2.0;
    }
    (scale, nudge_zero_point(initial, qmin, qmax))
}

/// Observer quantization parameters for one `(min, max)` pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ObserverQParams {
    /// The `f32` scale.
    pub scale: f32,
    /// The zero point: an integral value (exact in `f64` for every 32-bit range), except for
    /// float qparams where it is an `f32` value widened.
    pub zero_point: f64,
}

/// `torch.min`/`torch.max` of two values: NaN propagates.
fn nan_min(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.min(b)
    }
}

fn nan_max(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

/// A float-to-`int32` tensor conversion on x86: NaN and out-of-range values give `i32::MIN`.
fn to_int32(v: f32) -> i32 {
    if (-2_147_483_648.0..2_147_483_648.0).contains(&v) {
        v as i32
    } else {
        i32::MIN
    }
}

/// The Python observers' `UniformQuantizationObserverBase._calculate_qparams` for one
/// `(min_val, max_val)` pair, in `f32` like torch's tensor arithmetic (numerics §2.2).
///
/// * symmetric schemes: `scale = max(f32(max(-min_neg, max_pos) / f32((qmax - qmin) / 2)), eps)`;
///   zero point 0, or 128 for quint8 (`(qmin + qmax) // 2` with a custom range);
/// * float qparams: `scale = f32(max - min) / (qmax - qmin)` (1.0 unless `> eps`),
///   `zero_point = -min / scale`;
/// * affine: `scale = max(f32(max_pos - min_neg) / (qmax - qmin), eps)`,
///   `zero_point = clamp(qmin - round_half_even(min_neg / scale), qmin, qmax)`.
///
/// The uninitialised pair `(+inf, -inf)` gives scale 1.0 and zero point 0;
/// `min_val > max_val` is `InvalidQuantRange`.
#[allow(clippy::too_many_arguments)]
pub fn calculate_qparams(
    min_val: f32,
    max_val: f32,
    qscheme: QScheme,
    dtype: QDType,
    qmin: i64,
    qmax: i64,
    eps: f32,
    has_custom_range: bool,
) -> Result<ObserverQParams> {
    if min_val == f32::INFINITY && max_val == f32::NEG_INFINITY {
        return Ok(ObserverQParams {
            scale: 1.0,
            zero_point: 0.0,
        });
    }
    if min_val > max_val {
        return Err(QTensorError::InvalidQuantRange {
            qmin,
            qmax,
            reason: "observer min_val is greater than max_val",
        });
    }
    let min_neg = nan_min(min_val, 0.0);
    let max_pos = nan_max(max_val, 0.0);
    // Python ints: exact, then rounded to a double and by the f32 tensor op to f32.
    let span = i128::from(qmax) - i128::from(qmin);
    let qrange = span as f64 as f32;
    if qscheme.is_symmetric() {
        let m = nan_max(-min_neg, max_pos);
        let divisor = (span as f64 / 2.0) as f32;
        let scale = nan_max(m / divisor, eps);
        let zero_point = match (dtype, has_custom_range) {
            (QDType::QUInt8, false) => 128,
            (QDType::QUInt8, true) => (i128::from(qmin) + i128::from(qmax)).div_euclid(2) as i64,
            _ => 0,
        };
        return Ok(ObserverQParams {
            scale,
            zero_point: zero_point as f64,
        });
    }
    if qscheme == QScheme::PerChannelAffineFloatQParams {
        let scale = (max_val - min_val) / qrange;
        let scale = if scale > eps { scale } else { 1.0 };
        return Ok(ObserverQParams {
            scale,
            zero_point: f64::from(-min_val / scale),
        });
    }
    let scale = nan_max((max_pos - min_neg) / qrange, eps);
    let rounded = to_int32((min_neg / scale).round_ties_even());
    let zero_point = i64::from((qmin as i32).wrapping_sub(rounded)).clamp(qmin, qmax.max(qmin));
    Ok(ObserverQParams {
        scale,
        zero_point: zero_point as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f32 = f32::EPSILON;

    #[test]
    fn extreme_ranges_do_not_panic() {
        let (lo, hi) = (i64::MIN, i64::MAX);
        for scheme in [QScheme::PerTensorAffine, QScheme::PerTensorSymmetric] {
            let p = calculate_qparams(-1.0, 1.0, scheme, QDType::QUInt8, lo, hi, EPS, true);
            assert!(p.unwrap().scale > 0.0);
        }
        let (s, _) = choose_qparams_quant_utils(-1.0, 1.0, i32::MIN, i32::MAX, true, true, true);
        assert!(s > 0.0);
        let (s, _) = choose_qparams_fbgemm(f32::MIN, f32::MAX, i32::MIN, i32::MAX, true, true);
        assert!(s > 0.0);
    }

    #[test]
    fn quant_utils_edge_cases() {
        assert_eq!(
            choose_qparams_quant_utils(0.0, 0.0, 0, 255, false, false, false),
            (0.1, 0)
        );
        let (scale, zp) = choose_qparams_quant_utils(0.0, 1e-4, 0, 255, false, false, false);
        assert_eq!(scale, 6.1e-5f32 as f64);
        assert_eq!(zp, 0);
        let (scale, zp) = choose_qparams_quant_utils(-1.0, 1.0, 0, 255, false, false, true);
        assert_eq!(scale, 2.0 / 127.0);
        assert_eq!(zp, 64); // 63.5 rounds to even
    }

    #[test]
    fn fbgemm_symmetric_scale() {
        // max(|min| / 128, max / 127) = 0.05546875; min/max become -128 and 127 times that.
        let (scale, zp) = choose_qparams_fbgemm(-7.10, 5.61, -128, 127, true, false);
        let wide = f64::from(7.10f32 / 128.0) * 255.0;
        assert_eq!(scale, (wide / 255.0) as f32);
        assert_eq!(zp, 0);
        // 255/254 of that for the -127..127 range
        let (narrow, _) = choose_qparams_fbgemm(-7.10, 5.61, -127, 127, true, false);
        assert_eq!(narrow, (wide / 254.0) as f32);
    }

    #[test]
    fn observer_formulas() {
        let all_zero = calculate_qparams(
            0.0,
            0.0,
            QScheme::PerTensorAffine,
            QDType::QUInt8,
            0,
            255,
            EPS,
            false,
        );
        assert_eq!(
            all_zero,
            Ok(ObserverQParams {
                scale: EPS,
                zero_point: 0.0
            })
        );
        let sym = calculate_qparams(
            -7.10,
            5.61,
            QScheme::PerTensorSymmetric,
            QDType::QInt8,
            -128,
            127,
            EPS,
            false,
        )
        .unwrap();
        assert_eq!(sym.scale, 7.10f32 / 127.5);
        let uninit = calculate_qparams(
            f32::INFINITY,
            f32::NEG_INFINITY,
            QScheme::PerTensorAffine,
            QDType::QUInt8,
            0,
            255,
            EPS,
            false,
        );
        assert_eq!(
            uninit,
            Ok(ObserverQParams {
                scale: 1.0,
                zero_point: 0.0
            })
        );
        assert!(
            calculate_qparams(
                1.0,
                0.0,
                QScheme::PerTensorAffine,
                QDType::QUInt8,
                0,
                255,
                EPS,
                false
            )
            .is_err()
        );
    }
}
