//! Branch-free `exp`, `sigmoid` and `tanh` on slices, written so the compiler vectorizes them
//! (the recurrent gates spend most of their non-GEMM time here; libm's scalar `tanhf` calls
//! cost as much as the GEMMs). Cephes-style: `exp` by `2ⁿ·P(r)` with `|r| ≤ ln2/2` (about
//! 1–2 ulp), `tanh` by its odd polynomial below 0.625 and `1 − 2/(e^{2|x|} + 1)` above,
//! `sigmoid = 1/(1 + e^{−x})`. ATen's SLEEF vectors are within about an ulp of the exact
//! values too, so results stay within a few ulp of PyTorch's.
//!
//! Every function is `#[inline(always)]` so that the callers' AVX2 copies (compiled with
//! `#[target_feature]`) vectorize it 8 lanes wide; no operation is fused or reordered by that
//! (Rust never contracts `a·b + c` into an FMA), so every copy gives the same bits.

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Adding and subtracting 1.5·2²³ rounds an f32 of magnitude < 2²² to the nearest integer.
const ROUNDER: f32 = 12_582_912.0;

/// `e^x`, with `x` clamped to `[−87, 88]` (so `2ⁿ` stays a normal f32).
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + ROUNDER;
    // `t`'s low mantissa bits hold the integer n (no float-to-int conversion, which the
    // compiler would scalarize for its saturating semantics).
    let n_int = t.to_bits().wrapping_sub(ROUNDER.to_bits()) as i32;
    let n = t - ROUNDER;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let p = p * r * r + r + 1.0;
    p * f32::from_bits((n_int.wrapping_add(127) as u32) << 23)
}

#[inline(always)]
pub(super) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
pub(super) fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let small =
        ((((-5.704_988_7e-3 * z + 2.063_909e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z
            - 3.333_328e-1)
            * z
            * x
            + x;
    let big = 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
    let big = if x < 0.0 { -big } else { big };
    if a < 0.625 { small } else { big }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_to_the_exact_functions() {
        let mut worst = [0.0f64; 3];
        for i in -40_000..=40_000 {
            let x = i as f32 * 5e-4 * (1.0 + (i as f32).abs() * 1e-4);
            let e = f64::from(x).exp();
            if x.abs() < 87.0 {
                worst[0] = worst[0].max(((f64::from(exp(x)) - e) / e).abs());
            }
            let s = 1.0 / (1.0 + (-f64::from(x)).exp());
            worst[1] = worst[1].max((f64::from(sigmoid(x)) - s).abs());
            worst[2] = worst[2].max((f64::from(tanh(x)) - f64::from(x).tanh()).abs());
        }
        assert!(worst[0] < 3.0 * f64::from(f32::EPSILON), "{worst:?}");
        assert!(worst[1] < 1.5 * f64::from(f32::EPSILON), "{worst:?}");
        assert!(worst[2] < 1.5 * f64::from(f32::EPSILON), "{worst:?}");
        assert_eq!(tanh(100.0), 1.0);
        assert_eq!(tanh(-100.0), -1.0);
        assert!(sigmoid(-200.0) < 1e-37);
        assert_eq!(sigmoid(200.0), 1.0);
        assert_eq!(tanh(0.0), 0.0);
    }
}
