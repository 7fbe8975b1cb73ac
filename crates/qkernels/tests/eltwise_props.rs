//! Properties of the elementwise and pooling ops over random shapes and qparams (the
//! PyTorch goldens in `eltwise_golden.rs` pin the exact values): algebraic identities,
//! round trips, identity windows, and a naive max-pool oracle.

use proptest::prelude::*;
use qkernels::GemmError;
use qkernels::eltwise::activation::{self, Lut};
use qkernels::eltwise::layout::{self, CatInput};
use qkernels::eltwise::{QParams, binary};
use qkernels::pool::{self, Pool2d};

fn qparams() -> impl Strategy<Value = QParams> {
    (0.001f32..0.5, 0i32..=255).prop_map(|(scale, zero_point)| QParams { scale, zero_point })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn add_and_mul_commute(
        ab in (1usize..300).prop_flat_map(|n| (prop::collection::vec(any::<u8>(), n), prop::collection::vec(any::<u8>(), n))),
        qa in qparams(), qb in qparams(), qo in qparams(), relu in any::<bool>(),
    ) {
        let (a, b) = ab;
        let (mut x, mut y) = (vec![0u8; a.len()], vec![0u8; a.len()]);
        binary::add(&a, qa, &b, qb, qo, relu, &mut x).unwrap();
        binary::add(&b, qb, &a, qa, qo, relu, &mut y).unwrap();
        prop_assert_eq!(&x, &y);
        if relu {
            prop_assert!(x.iter().all(|&v| i32::from(v) >= qo.zero_point));
        }
        binary::mul(&a, qa, &b, qb, qo, &mut x).unwrap();
        binary::mul(&b, qb, &a, qa, qo, &mut y).unwrap();
        prop_assert_eq!(&x, &y);
    }

    #[test]
    fn relu_is_max_with_zero_point_and_idempotent(x in prop::collection::vec(any::<u8>(), 0..200), q in qparams()) {
        let mut y = x.clone();
        activation::relu(&mut y, q).unwrap();
        for (&a, &b) in x.iter().zip(&y) {
            prop_assert_eq!(i32::from(b), i32::from(a).max(q.zero_point));
        }
        let mut z = y.clone();
        activation::relu(&mut z, q).unwrap();
        prop_assert_eq!(y, z);
    }

    #[test]
    fn identity_lut_round_trips(q in qparams()) {
        // quantize(dequantize(q)) == q for every quint8 value (no FMA rounding can move it
        // by half a quantum)
        let lut = Lut::new(q, q, |x| x).unwrap();
        for v in 0..=255u8 {
            prop_assert_eq!(lut.get(v), v);
        }
    }

    #[test]
    fn layout_round_trip(n in 1usize..3, c in 1usize..9, hw in 1usize..20, seed in any::<u8>()) {
        let x: Vec<u8> = (0..n * c * hw).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
        let mut nhwc = vec![0u8; x.len()];
        let mut back = vec![0u8; x.len()];
        layout::nchw_to_nhwc(&x, n, c, hw, &mut nhwc).unwrap();
        layout::nhwc_to_nchw(&nhwc, n, c, hw, &mut back).unwrap();
        prop_assert_eq!(&x, &back);
        if c > 1 && hw > 1 {
            prop_assert_eq!(nhwc[1], x[hw]); // channel 1 of pixel 0
        }
    }

    #[test]
    fn cat_with_shared_qparams_copies(outer in 1usize..6, c1 in 1usize..7, c2 in 1usize..7, q in qparams()) {
        let a: Vec<u8> = (0..outer * c1).map(|i| i as u8).collect();
        let b: Vec<u8> = (0..outer * c2).map(|i| 200 - i as u8).collect();
        let mut y = vec![0u8; outer * (c1 + c2)];
        let inputs = [
            CatInput { data: &a, inner: c1, qparams: q },
            CatInput { data: &b, inner: c2, qparams: q },
        ];
        layout::cat(&inputs, outer, q, &mut y).unwrap();
        for o in 0..outer {
            prop_assert_eq!(&y[o * (c1 + c2)..o * (c1 + c2) + c1], &a[o * c1..(o + 1) * c1]);
            prop_assert_eq!(&y[o * (c1 + c2) + c1..(o + 1) * (c1 + c2)], &b[o * c2..(o + 1) * c2]);
        }
    }

    #[test]
    fn max_pool_matches_a_naive_oracle(
        n in 1usize..3, h in 1usize..9, w in 1usize..9, c in 1usize..6,
        k in 1usize..4, s in 1usize..4, d in 1usize..3, pad in 0usize..2, ceil in any::<bool>(),
        seed in any::<u8>(),
    ) {
        let p = Pool2d { input: [n, h, w, c], kernel: [k, k], stride: [s, s], padding: [pad, pad], dilation: [d, d], ceil_mode: ceil };
        let Ok([oh, ow]) = p.output() else { return Ok(()) };
        // Output size: every window that fits in the padded input, and in ceil mode one more
        // partial window if it starts inside the input or the left padding.
        let ext = d * (k - 1) + 1;
        let count = |len: usize| {
            let mut o = 0;
            while o * s + ext <= len + 2 * pad || (ceil && o * s < len + pad && (o == 0 || (o - 1) * s + ext < len + 2 * pad)) {
                o += 1;
            }
            o
        };
        prop_assert_eq!([oh, ow], [count(h), count(w)]);
        let x: Vec<u8> = (0..n * h * w * c).map(|i| (i as u8).wrapping_mul(73) ^ seed).collect();
        let mut y = vec![0u8; n * oh * ow * c];
        pool::max_pool2d(&x, &p, &mut y).unwrap();
        for b in 0..n { for oy in 0..oh { for ox in 0..ow { for ch in 0..c {
            let mut m: Option<u8> = None;
            for ky in 0..k { for kx in 0..k {
                let iy = (oy * s + ky * d) as isize - pad as isize;
                let ix = (ox * s + kx * d) as isize - pad as isize;
                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                    let v = x[((b * h + iy as usize) * w + ix as usize) * c + ch];
                    m = Some(m.map_or(v, |m| m.max(v)));
                }
            }}
            prop_assert_eq!(y[((b * oh + oy) * ow + ox) * c + ch], m.unwrap_or(0));
        }}}}
    }

    #[test]
    fn max_pool_without_padding_matches_a_naive_oracle(
        n in 1usize..3, h in 1usize..11, w in 1usize..11, c in 1usize..20,
        kh in 1usize..4, kw in 1usize..4, sh in 1usize..4, sw in 1usize..4, seed in any::<u8>(),
    ) {
        let p = Pool2d { input: [n, h, w, c], kernel: [kh, kw], stride: [sh, sw], padding: [0, 0], dilation: [1, 1], ceil_mode: false };
        let Ok([oh, ow]) = p.output() else { return Ok(()) };
        let x: Vec<u8> = (0..n * h * w * c).map(|i| (i as u8).wrapping_mul(89) ^ seed).collect();
        let mut y = vec![0u8; n * oh * ow * c];
        pool::max_pool2d(&x, &p, &mut y).unwrap();
        for b in 0..n { for oy in 0..oh { for ox in 0..ow { for ch in 0..c {
            let mut m = 0u8;
            for ky in 0..kh { for kx in 0..kw {
                m = m.max(x[((b * h + oy * sh + ky) * w + ox * sw + kx) * c + ch]);
            }}
            prop_assert_eq!(y[((b * oh + oy) * ow + ox) * c + ch], m);
        }}}}
    }

    #[test]
    fn unit_windows_are_identities(n in 1usize..3, h in 1usize..7, w in 1usize..7, c in 1usize..40, q in qparams()) {
        let x: Vec<u8> = (0..n * h * w * c).map(|i| (i as u8).wrapping_mul(13)).collect();
        let p = Pool2d { input: [n, h, w, c], kernel: [1, 1], stride: [1, 1], padding: [0, 0], dilation: [1, 1], ceil_mode: false };
        let mut y = vec![0u8; x.len()];
        pool::avg_pool2d(&x, q, &p, true, None, q, &mut y).unwrap();
        prop_assert_eq!(&x, &y);
        pool::adaptive_avg_pool2d(&x, q, [n, h, w, c], [h, w], q, &mut y).unwrap();
        prop_assert_eq!(&x, &y);
        layout::upsample_nearest2d(&x, [n, h, w, c], [h, w], &mut y).unwrap();
        prop_assert_eq!(&x, &y);
        let mut up = vec![0u8; n * 4 * h * w * c];
        layout::upsample_nearest2d(&x, [n, h, w, c], [2 * h, 2 * w], &mut up).unwrap();
        prop_assert_eq!(&up[..c], &x[..c]);
        prop_assert_eq!(&up[c..2 * c], &x[..c]); // pixel (0, 1) repeats input (0, 0)
    }
}

#[test]
fn errors_name_the_offending_value() {
    let q = QParams {
        scale: 0.1,
        zero_point: 3,
    };
    let bad = QParams {
        scale: -1.0,
        zero_point: 3,
    };
    let mut out = [0u8; 2];
    let e = binary::add(&[1, 2], bad, &[1, 2], q, q, false, &mut out).unwrap_err();
    assert!(
        matches!(e, GemmError::InvalidScale { scale, .. } if scale == -1.0),
        "{e}"
    );
    let e = binary::mul(&[1, 2], q, &[1], q, q, &mut out).unwrap_err();
    assert_eq!(
        e,
        GemmError::BufferTooSmall {
            what: "second operand",
            needed: 2,
            got: 1
        }
    );
    let z = QParams {
        scale: 0.1,
        zero_point: 300,
    };
    let e = Lut::sigmoid(z).unwrap_err();
    assert!(e.to_string().contains("300"), "{e}");
    let p = Pool2d {
        input: [1, 2, 2, 1],
        kernel: [3, 3],
        stride: [1, 1],
        padding: [0, 0],
        dilation: [1, 1],
        ceil_mode: false,
    };
    assert!(pool::max_pool2d(&[0; 4], &p, &mut [0u8; 1]).is_err());
}
