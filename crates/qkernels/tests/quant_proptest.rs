//! Property tests: for arbitrary `f32` bit patterns, scales (any positive finite `f32`, so
//! the reciprocal may be huge or infinite) and zero points, every runnable family equals
//! `qtensor::quantize_val` / `dequantize_val` bit for bit, at every length up to 300.

use proptest::prelude::*;
use qkernels::isa;
use qkernels::quant;
use qtensor::{dequantize_val, quantize_val};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

/// Arbitrary bits, with a bias towards the quantized range so rounding is exercised.
fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<u32>().prop_map(f32::from_bits),
        (-400.0f32..400.0),
        (-800i32..800).prop_map(|k| k as f32 * 0.5),
    ]
}

fn positive_finite() -> impl Strategy<Value = f32> {
    prop_oneof![
        (1u32..0x7f80_0000).prop_map(f32::from_bits),
        (1e-3f32..10.0),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn quantize_equals_scalar_definition(
        src in prop::collection::vec(any_f32(), 0..300),
        scale in positive_finite(),
        zp_u8 in 0i32..=255,
        zp_i8 in -128i32..=127,
    ) {
        let inv = 1.0 / scale;
        let want_u8: Vec<u8> = src.iter().map(|&x| quantize_val(x, inv, zp_u8, 0, 255) as u8).collect();
        let want_i8: Vec<i8> = src.iter().map(|&x| quantize_val(x, inv, zp_i8, -128, 127) as i8).collect();
        for level in isa::runnable() {
            let mut u = vec![0u8; src.len()];
            quant::quantize_u8_with(level, &src, scale, zp_u8, &mut u).unwrap();
            prop_assert_eq!(&u, &want_u8, "{} quint8", level);
            let mut i = vec![0i8; src.len()];
            quant::quantize_i8_with(level, &src, scale, zp_i8, &mut i).unwrap();
            prop_assert_eq!(&i, &want_i8, "{} qint8", level);
        }
    }

    #[test]
    fn dequantize_equals_scalar_definition(
        src in prop::collection::vec(any::<u8>(), 0..300),
        scale in positive_finite(),
        zp_u8 in 0i32..=255,
        zp_i8 in -128i32..=127,
    ) {
        let signed: Vec<i8> = src.iter().map(|&b| b as i8).collect();
        let want_u8: Vec<u32> = src.iter().map(|&q| dequantize_val(i32::from(q), scale, zp_u8).to_bits()).collect();
        let want_i8: Vec<u32> = signed.iter().map(|&q| dequantize_val(i32::from(q), scale, zp_i8).to_bits()).collect();
        for level in isa::runnable() {
            let mut out = vec![0.0f32; src.len()];
            quant::dequantize_u8_with(level, &src, scale, zp_u8, &mut out).unwrap();
            let bits: Vec<u32> = out.iter().map(|x| x.to_bits()).collect();
            prop_assert_eq!(&bits, &want_u8, "{} quint8", level);
            quant::dequantize_i8_with(level, &signed, scale, zp_i8, &mut out).unwrap();
            let bits: Vec<u32> = out.iter().map(|x| x.to_bits()).collect();
            prop_assert_eq!(&bits, &want_i8, "{} qint8", level);
        }
    }
}

/// The exact extremes of NaN-free data (a zero extreme compared by value: its sign is free).
fn fold_min_max(x: &[f32]) -> (f32, f32) {
    x.iter()
        .fold(x.first().map_or((0.0, 0.0), |&f| (f, f)), |(l, h), &v| {
            (l.min(v), h.max(v))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn min_max_is_exact_on_every_family(
        x in prop::collection::vec(
            any_f32().prop_filter("no NaN", |v| !v.is_nan()),
            0..300,
        ),
    ) {
        let want = fold_min_max(&x);
        for isa in isa::runnable() {
            let got = quant::min_max_with(isa, &x).unwrap();
            prop_assert!(got.0 == want.0 && got.1 == want.1, "{isa:?}: {got:?} vs {want:?}");
        }
    }
}

/// Inputs above the parallel threshold are split over the pool; the extremes (placed in the
/// last and in a middle chunk) come out the same for any thread count.
#[test]
fn min_max_of_large_inputs_is_the_same_for_any_thread_count() {
    let n = quant::PAR_THRESHOLD * 2 + 77;
    let mut x: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 0.25 - 100.0).collect();
    x[n - 1] = -1234.5;
    x[n / 2 + 3] = 987.25;
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        for isa in isa::runnable() {
            let got = pool.install(|| quant::min_max_with(isa, &x)).unwrap();
            assert_eq!(got, (-1234.5, 987.25), "{isa:?}, {threads} threads");
        }
    }
    assert_eq!(quant::min_max(&[]), (0.0, 0.0));
}
