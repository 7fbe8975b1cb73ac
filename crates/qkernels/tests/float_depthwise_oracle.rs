//! The f32 depthwise convolution (`qkernels::float::depthwise_conv2d`): every runnable kernel
//! family bit-equal to the oracle over random geometries (proptest) and the MobileNet-style
//! shapes (and the fresh-`Vec` form); the oracle itself against an f64 evaluation of the definition; errors.

mod float_support;

use float_support::{runnable, values};

use proptest::prelude::*;
use qkernels::float::{
    ConvWindow, DepthwiseGeom, DirectConvKernel, FloatGemmError, depthwise_conv2d,
    depthwise_conv2d_vec, depthwise_conv2d_with, reference_depthwise_conv2d,
};

/// Runs every runnable family and the oracle on one problem; asserts bit equality.
fn check_families(n: usize, g: &DepthwiseGeom, bias: bool, seed: u32) {
    let [h, w] = g.window.input;
    let [oh, ow] = g.output().expect("valid geometry");
    let x = values(n * g.channels * h * w, seed);
    let wt = values(g.channels * g.window.taps(), seed + 1);
    let b = bias.then(|| values(g.channels, seed + 2));
    let mut want = vec![f32::NAN; n * g.channels * oh * ow];
    reference_depthwise_conv2d(&x, n, g, &wt, b.as_deref(), &mut want).expect("oracle");
    for kind in runnable() {
        let mut got = vec![f32::NAN; want.len()];
        let ran = depthwise_conv2d_with(kind, &x, n, g, &wt, b.as_deref(), &mut got).expect("run");
        assert_eq!(ran, kind);
        for (i, (a, e)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                a.to_bits(),
                e.to_bits(),
                "{} on n {n} {g:?}: output {i}: got {a}, oracle {e}",
                kind.name()
            );
        }
    }
    // the fresh-`Vec` form (best family, output written once without a zero-fill)
    let got = depthwise_conv2d_vec(&x, n, g, &wt, b.as_deref()).expect("run into a Vec");
    assert_eq!(got.len(), want.len());
    for (i, (a, e)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            a.to_bits(),
            e.to_bits(),
            "vec form on n {n} {g:?}: output {i}"
        );
    }
}

#[test]
fn families_equal_the_oracle_on_mobilenet_shapes() {
    let shapes = [
        // (channels, h, w, k, stride)
        (3, 56, 56, 3, 1),
        (3, 56, 56, 3, 2),
        (2, 28, 28, 5, 1),
        (2, 28, 28, 5, 2),
        (4, 7, 7, 3, 1),
        (2, 13, 29, 3, 2),
        (1, 9, 70, 5, 1),
    ];
    for (seed, &(c, h, w, k, s)) in shapes.iter().enumerate() {
        let g = DepthwiseGeom::new(
            c,
            ConvWindow::new([h, w], [k, k])
                .stride([s, s])
                .padding([k / 2, k / 2]),
        );
        check_families(2, &g, seed % 2 == 0, seed as u32 * 7 + 1);
    }
}

#[test]
fn the_best_family_is_the_one_that_runs() {
    let g = DepthwiseGeom::new(2, ConvWindow::new([10, 12], [3, 3]).padding([1, 1]));
    let (x, wt) = (values(2 * 120, 3), values(18, 4));
    let mut y = vec![0.0; 2 * 120];
    let ran = depthwise_conv2d(&x, 1, &g, &wt, None, &mut y).unwrap();
    assert_eq!(ran, DirectConvKernel::best());
    assert!(ran.is_runnable());
    if let Some(want) = float_support::expected_direct_kernel() {
        assert_eq!(ran, want);
    }
}

/// The oracle against the definition evaluated in f64 (each output is at most 25 products
/// of values below 2 in magnitude, so f32 rounding stays far below the tolerance).
#[test]
fn the_oracle_computes_the_convolution() {
    let g = DepthwiseGeom::new(
        3,
        ConvWindow::new([9, 11], [3, 5])
            .stride([2, 1])
            .padding([1, 2])
            .dilation([1, 2]),
    );
    let [oh, ow] = g.output().unwrap();
    assert_eq!([oh, ow], [5, 7]);
    let (n, [h, w]) = (2, g.window.input);
    let x = values(n * 3 * h * w, 11);
    let wt = values(3 * 15, 12);
    let b = values(3, 13);
    let mut y = vec![0.0f32; n * 3 * oh * ow];
    reference_depthwise_conv2d(&x, n, &g, &wt, Some(&b), &mut y).unwrap();
    for p in 0..n * 3 {
        let c = p % 3;
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = f64::from(b[c]);
                for i in 0..3 {
                    for j in 0..5 {
                        let (yy, xx) = ((oy * 2 + i) as isize - 1, (ox + 2 * j) as isize - 2);
                        if (0..h as isize).contains(&yy) && (0..w as isize).contains(&xx) {
                            let v = x[(p * h + yy as usize) * w + xx as usize];
                            acc += f64::from(wt[(c * 3 + i) * 5 + j]) * f64::from(v);
                        }
                    }
                }
                let got = y[(p * oh + oy) * ow + ox];
                assert!(
                    (f64::from(got) - acc).abs() < 1e-4,
                    "plane {p} ({oy}, {ox}): {got} vs {acc}"
                );
            }
        }
    }
}

#[test]
fn an_input_smaller_than_the_padding_gives_the_bias() {
    // 0 x 2 input planes, padding 1: every output sees only zeros
    let g = DepthwiseGeom::new(2, ConvWindow::new([0, 2], [1, 1]).padding([1, 0]));
    assert_eq!(g.output().unwrap(), [2, 2]);
    let mut y = vec![f32::NAN; 8];
    for kind in runnable() {
        depthwise_conv2d_with(kind, &[], 1, &g, &[3.0, 4.0], Some(&[0.5, -1.5]), &mut y).unwrap();
        assert_eq!(y, [0.5, 0.5, 0.5, 0.5, -1.5, -1.5, -1.5, -1.5]);
    }
}

#[test]
fn bad_geometry_and_buffers_are_errors() {
    let g = DepthwiseGeom::new(2, ConvWindow::new([4, 4], [3, 3]));
    let (x, wt) = (vec![0.0; 32], vec![0.0; 18]);
    let mut y = vec![0.0; 8];
    assert!(depthwise_conv2d(&x, 1, &g, &wt, None, &mut y).is_ok());
    let conv = |r: Result<DirectConvKernel, FloatGemmError>| match r {
        Err(FloatGemmError::Conv { reason }) => reason,
        other => panic!("expected a Conv error, got {other:?}"),
    };
    let msg = conv(depthwise_conv2d(&x[..31], 1, &g, &wt, None, &mut y));
    assert!(msg.contains("input has 31 values, expected 32"), "{msg}");
    let msg = conv(depthwise_conv2d(&x, 1, &g, &wt[..9], None, &mut y));
    assert!(msg.contains("weight has 9 values, expected 18"), "{msg}");
    let msg = conv(depthwise_conv2d(&x, 1, &g, &wt, Some(&[1.0]), &mut y));
    assert!(msg.contains("bias has 1 values, expected 2"), "{msg}");
    let msg = conv(depthwise_conv2d(&x, 1, &g, &wt, None, &mut y[..7]));
    assert!(msg.contains("output has 7 values, expected 8"), "{msg}");
    let msg = conv(depthwise_conv2d(
        &x,
        1,
        &DepthwiseGeom::new(2, g.window.stride([0, 1])),
        &wt,
        None,
        &mut y,
    ));
    assert!(msg.contains("must be positive"), "{msg}");
    let big = DepthwiseGeom::new(2, ConvWindow::new([4, 4], [5, 3]));
    let msg = conv(depthwise_conv2d(&x, 1, &big, &[0.0; 30], None, &mut y));
    assert!(msg.contains("smaller than kernel"), "{msg}");
}

fn geometry() -> impl Strategy<Value = (usize, DepthwiseGeom, bool, u32)> {
    (
        (1usize..3, 1usize..4, 1usize..14, 1usize..40),
        (1usize..6, 1usize..6, 1usize..4, 1usize..4),
        (0usize..3, 0usize..3, 1usize..3, 1usize..3),
        any::<bool>(),
        any::<u32>(),
    )
        .prop_filter_map(
            "kernel larger than the padded input",
            |((n, c, h, w), (kh, kw, sh, sw), (ph, pw, dh, dw), bias, seed)| {
                let g = DepthwiseGeom::new(
                    c,
                    ConvWindow::new([h, w], [kh, kw])
                        .stride([sh, sw])
                        .padding([ph, pw])
                        .dilation([dh, dw]),
                );
                g.output().ok().map(|_| (n, g, bias, seed))
            },
        )
}

/// Square 3 x 3 and 5 x 5 undilated windows of stride 1 or 2 (the AVX-512 family reads these
/// planes in place, padding from masks and a zero row) with any padding up to the kernel size
/// and widths across several 16-float vectors.
fn square_windows() -> impl Strategy<Value = (usize, DepthwiseGeom, bool, u32)> {
    (
        (1usize..3, 1usize..4, 1usize..20, 1usize..100),
        (prop_oneof![Just(3usize), Just(5usize)], 1usize..3),
        (0usize..6, 0usize..6),
        any::<bool>(),
        any::<u32>(),
    )
        .prop_filter_map(
            "kernel larger than the padded input",
            |((n, c, h, w), (k, s), (ph, pw), bias, seed)| {
                let g = DepthwiseGeom::new(
                    c,
                    ConvWindow::new([h, w], [k, k])
                        .stride([s, s])
                        .padding([ph.min(k), pw.min(k)]),
                );
                g.output().ok().map(|_| (n, g, bias, seed))
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_family_equals_the_oracle((n, g, bias, seed) in geometry()) {
        check_families(n, &g, bias, seed);
    }

    #[test]
    fn every_family_equals_the_oracle_on_square_windows((n, g, bias, seed) in square_windows()) {
        check_families(n, &g, bias, seed);
    }
}
