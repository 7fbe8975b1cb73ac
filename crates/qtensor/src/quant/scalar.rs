//! Scalar definitions, one per PyTorch code path, bit-exact with torch 2.15 (fbgemm, x86).

/// Largest `f32` below 2^31; fbgemm's AVX2 quantize clips products to it before converting.
pub(crate) const F32_BELOW_2POW31: f32 = 2_147_483_520.0;

/// 2^63, the first `f32` outside the `i64` range.
const TWO_POW_63: f32 = 9_223_372_036_854_775_808.0;

/// x86 `minps(a, b)`: `a < b ? a : b`, so a NaN in `a` yields `b`.
#[inline(always)]
pub(crate) fn min_ps(a: f32, b: f32) -> f32 {
    if a < b { a } else { b }
}

/// x86 `maxps(a, b)`: `a > b ? a : b`, so a NaN in `a` yields `b`.
#[inline(always)]
pub(crate) fn max_ps(a: f32, b: f32) -> f32 {
    if a > b { a } else { b }
}

/// C `lrintf` on x86-64 (`cvtss2si` to 64 bits): round half to even; NaN and values outside
/// the `i64` range give `i64::MIN`.
#[inline(always)]
fn lrintf(v: f32) -> i64 {
    if v.abs() < TWO_POW_63 {
        v.round_ties_even() as i64
    } else {
        i64::MIN
    }
}

/// Per-tensor quint8/qint8 quantize (fbgemm `QuantizeAvx2`, also its masked tail).
///
/// `t = f32(x * inv_scale)`; `t = min(t, 2147483520)` with NaN becoming 2147483520;
/// `r = rint(t)` converted to `i32` (below `-2^31` gives `i32::MIN`); then
/// `clamp(r + zero_point, qmin, qmax)` with a wrapping 32-bit add.
///
/// So NaN, +inf and huge products give `qmax` and -inf gives `qmin`, except where torch's
/// 32-bit add wraps: with `zero_point > 127` NaN/+inf/huge give `qmin`, and with
/// `zero_point < 0` products `<= -2^31` (incl. -inf) give `qmax`.
///
/// ```
/// use qtensor::quantize_val;
/// assert_eq!(quantize_val(0.5, 1.0, 1, 0, 255), 1); // rounded first, zp added after
/// assert_eq!(quantize_val(f32::NAN, 1.0, 3, 0, 255), 255);
/// ```
#[inline]
pub fn quantize_val(x: f32, inv_scale: f32, zero_point: i32, qmin: i32, qmax: i32) -> i32 {
    let clipped = min_ps(x * inv_scale, F32_BELOW_2POW31);
    let rounded = clipped.round_ties_even() as i32;
    rounded.wrapping_add(zero_point).max(qmin).min(qmax)
}

/// Scalar fbgemm `Quantize` used for per-channel quantize and for every qint32 quantize:
/// `v = f32(zero_point as f32 + rint(f32(x * inv_scale)))`, clamped to `[qmin, qmax]` in
/// `f64`. NaN gives `i32::MIN` (x86's "integer indefinite"); an 8-bit store truncates that
/// to 0.
#[inline]
pub fn quantize_val_scalar_path(
    x: f32,
    inv_scale: f32,
    zero_point: i32,
    qmin: i32,
    qmax: i32,
) -> i32 {
    let v = zero_point as f32 + (x * inv_scale).round_ties_even();
    if v.is_nan() {
        return i32::MIN;
    }
    f64::from(v).max(f64::from(qmin)).min(f64::from(qmax)) as i32
}

/// Per-tensor quint4x2 quantize: `lrintf(rint(f32(x * inv_scale)) + zero_point as f32)`
/// clamped to `[qmin, qmax]`; NaN, ±inf and sums beyond the `i64` range give `qmin`.
#[inline]
pub fn quantize_val_sub_byte(x: f32, inv_scale: f32, zero_point: i32, qmin: i32, qmax: i32) -> i32 {
    let v = (x * inv_scale).round_ties_even() + zero_point as f32;
    lrintf(v).max(i64::from(qmin)).min(i64::from(qmax)) as i32
}

/// Per-channel float-qparams quantize: `inv = scale == 0 ? 1 : 1/scale`,
/// `lrintf(f32(f32(x * inv) + zero_point))` (no FMA), truncated to 32 bits as torch's
/// compiled code does, then clamped to `[qmin, qmax]`.
#[inline]
pub fn quantize_val_float_qparams(
    x: f32,
    scale: f32,
    zero_point: f32,
    qmin: i32,
    qmax: i32,
) -> i32 {
    let inv = if scale == 0.0 { 1.0 } else { 1.0 / scale };
    let v = x * inv + zero_point;
    (lrintf(v) as i32).max(qmin).min(qmax)
}

/// Per-tensor dequantize: `f32(scale * f32(q - zero_point))` with a wrapping 32-bit subtract.
#[inline]
pub fn dequantize_val(q: i32, scale: f32, zero_point: i32) -> f32 {
    scale * q.wrapping_sub(zero_point) as f32
}

/// Per-channel affine dequantize: `f32(f64(f32(q) - f32(zero_point)) * scale)`, i.e. the
/// difference in `f32` and the product with the **double** scale rounded once.
#[inline]
pub fn dequantize_val_per_channel(q: i32, scale: f64, zero_point: i64) -> f32 {
    (f64::from(q as f32 - zero_point as f32) * scale) as f32
}

/// Per-channel float-qparams dequantize: `f32(f32(q) - zero_point) * scale`.
#[inline]
pub fn dequantize_val_float_qparams(q: i32, scale: f32, zero_point: f32) -> f32 {
    (q as f32 - zero_point) * scale
}

/// ATen `requantize_from_int`: `clamp(zero_point + lrintf(f32(src as f32 * multiplier)),
/// qmin, qmax)` in 64-bit integers.
#[inline]
pub fn requantize_from_int(
    src: i64,
    multiplier: f32,
    zero_point: i32,
    qmin: i32,
    qmax: i32,
) -> i32 {
    let q = lrintf(src as f32 * multiplier).wrapping_add(i64::from(zero_point));
    q.max(i64::from(qmin)).min(i64::from(qmax)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    const INF: f32 = f32::INFINITY;

    #[test]
    fn per_tensor_rounds_before_adding_zero_point() {
        assert_eq!(quantize_val(0.5, 1.0, 1, 0, 255), 1);
        assert_eq!(quantize_val(1.5, 1.0, 1, 0, 255), 3);
        assert_eq!(quantize_val(2.5, 1.0, 0, 0, 255), 2);
        assert_eq!(quantize_val(-0.5, 1.0, 0, -128, 127), 0);
        assert_eq!(quantize_val(-1.5, 1.0, 0, -128, 127), -2);
    }

    #[test]
    fn per_tensor_specials_match_torch() {
        // Values observed from torch 2.15 quantize_per_tensor (quint8 / qint8).
        for (x, zp, want) in [
            (f32::NAN, 0, 255),
            (INF, 127, 255),
            (-INF, 0, 0),
            (3e9, 1, 255),
            (f32::NAN, 128, 0),
            (INF, 200, 0),
            (1e30, 255, 0),
            (-INF, 255, 0),
        ] {
            assert_eq!(
                quantize_val(x, 1.0, zp, 0, 255),
                want,
                "quint8 x={x} zp={zp}"
            );
        }
        for (x, zp, want) in [
            (f32::NAN, -128, 127),
            (-INF, 0, -128),
            (-INF, -1, 127),
            (-2147483648.0, -52, 127),
            (-2147483520.0, -128, -128),
            (INF, 127, 127),
        ] {
            assert_eq!(
                quantize_val(x, 1.0, zp, -128, 127),
                want,
                "qint8 x={x} zp={zp}"
            );
        }
    }

    #[test]
    fn scalar_path_matches_torch_qint32() {
        let (lo, hi) = (i32::MIN, i32::MAX);
        assert_eq!(quantize_val_scalar_path(f32::NAN, 1.0, 0, lo, hi), i32::MIN);
        assert_eq!(quantize_val_scalar_path(INF, 1.0, 0, lo, hi), i32::MAX);
        assert_eq!(
            quantize_val_scalar_path(2147483520.0, 1.0, 0, lo, hi),
            2147483520
        );
        // zero point added in f32: 16777217 becomes 16777216 and 16777221 rounds to even.
        assert_eq!(
            quantize_val_scalar_path(5.0, 1.0, 16777217, lo, hi),
            16777220
        );
        assert_eq!(
            quantize_val_scalar_path(-3e9, 1.0, i32::MAX, lo, hi),
            -852516352
        );
        assert_eq!(
            quantize_val_scalar_path(2147483520.0, 1.0, i32::MIN, lo, hi),
            -128
        );
    }

    #[test]
    fn sub_byte_and_float_qparams_match_torch() {
        assert_eq!(quantize_val_sub_byte(1e30, 1.0, 0, 0, 15), 0);
        assert_eq!(quantize_val_sub_byte(1e10, 1.0, 0, 0, 15), 15);
        assert_eq!(quantize_val_sub_byte(0.5, 1.0, 3, 0, 15), 3);
        assert_eq!(quantize_val_float_qparams(-3e9, 1.0, 0.0, 0, 255), 255);
        assert_eq!(quantize_val_float_qparams(3e9, 1.0, 0.0, 0, 255), 0);
        assert_eq!(quantize_val_float_qparams(1e10, 1.0, 0.0, 0, 255), 255);
        assert_eq!(quantize_val_float_qparams(0.5, 1.0, 3.5, 0, 255), 4);
        assert_eq!(quantize_val_float_qparams(5.0, 0.0, 0.0, 0, 255), 5);
    }

    #[test]
    fn dequantize_paths() {
        assert_eq!(
            dequantize_val(i32::MAX, 0.1, -5),
            0.1f32 * (i32::MIN + 4) as f32
        );
        assert_eq!(dequantize_val(3, 0.1, -5), 0.8);
        assert_eq!(dequantize_val_per_channel(16777217, 0.1, -5), 1677722.0);
        assert_eq!(dequantize_val_float_qparams(3, 0.5, 0.5), 1.25);
    }

    #[test]
    fn requantize_from_int_rounds_and_clamps() {
        assert_eq!(requantize_from_int(5, 0.5, 10, 0, 255), 12);
        assert_eq!(requantize_from_int(7, 0.5, 10, 0, 255), 14);
        assert_eq!(requantize_from_int(1_000_000, 1.0, 0, -128, 127), 127);
        assert_eq!(requantize_from_int(-1_000_000, 1.0, 0, -128, 127), -128);
    }
}
