//! The direct f32 convolution (`qkernels::float::conv2d`): every runnable kernel family
//! bit-equal to the oracle over random geometries (proptest) and the benchmark-like shapes;
//! the oracle itself against an f64 evaluation of the definition; errors.

mod float_support;

use float_support::{runnable, values};

use proptest::prelude::*;
use qkernels::float::{
    Conv2dGeom, ConvWindow, DirectConvKernel, FloatGemmError, conv2d, conv2d_with, reference_conv2d,
};

/// Runs every runnable family and the oracle on one problem; asserts bit equality.
fn check_families(n: usize, g: &Conv2dGeom, bias: bool, seed: u32) {
    let [h, w] = g.window.input;
    let [oh, ow] = g.output().expect("valid geometry");
    let x = values(n * g.in_channels * h * w, seed);
    let wt = values(g.out_channels * g.depth(), seed + 1);
    let b = bias.then(|| values(g.out_channels, seed + 2));
    let mut want = vec![f32::NAN; n * g.out_channels * oh * ow];
    reference_conv2d(&x, n, g, &wt, b.as_deref(), &mut want).expect("oracle");
    for kind in runnable() {
        let mut got = vec![f32::NAN; want.len()];
        let ran = conv2d_with(kind, &x, n, g, &wt, b.as_deref(), &mut got).expect("run");
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
}

#[test]
fn families_equal_the_oracle_on_benchmark_like_shapes() {
    let shapes = [
        // (cin, cout, h, w, k, stride, padding)
        (8, 13, 56, 56, 3, 1, 1),
        (3, 6, 32, 32, 5, 1, 2),
        (3, 6, 32, 32, 5, 1, 0),
        (16, 7, 14, 14, 3, 1, 1),
        (5, 16, 20, 23, 1, 1, 0),
        (4, 9, 17, 35, 3, 2, 1),
        (2, 12, 9, 40, 5, 2, 2),
        // K = 360: two blocks of `k`, the sums carried from one to the next
        (40, 13, 14, 14, 3, 1, 1),
        // one output column: every output of a tile is its own segment
        (3, 5, 12, 1, 3, 1, 1),
    ];
    for (seed, &(ci, co, h, w, k, s, p)) in shapes.iter().enumerate() {
        let g = Conv2dGeom::new(
            ci,
            co,
            ConvWindow::new([h, w], [k, k])
                .stride([s, s])
                .padding([p, p]),
        );
        check_families(2, &g, seed % 2 == 0, seed as u32 * 7 + 1);
    }
}

#[test]
fn the_best_family_is_the_one_that_runs() {
    let g = Conv2dGeom::new(2, 3, ConvWindow::new([10, 12], [3, 3]).padding([1, 1]));
    let (x, wt) = (values(2 * 120, 3), values(3 * 18, 4));
    let mut y = vec![0.0; 3 * 120];
    let ran = conv2d(&x, 1, &g, &wt, None, &mut y).unwrap();
    assert_eq!(ran, DirectConvKernel::best());
    assert!(ran.is_runnable());
    if let Some(want) = float_support::expected_direct_kernel() {
        assert_eq!(ran, want);
    }
}

/// The oracle against the definition evaluated in f64 (each output is a sum of at most 90
/// products of values below 2 in magnitude, so f32 rounding stays below the tolerance).
#[test]
fn the_oracle_computes_the_convolution() {
    let g = Conv2dGeom::new(
        3,
        4,
        ConvWindow::new([9, 11], [3, 5])
            .stride([2, 1])
            .padding([1, 2])
            .dilation([1, 2]),
    );
    let [oh, ow] = g.output().unwrap();
    assert_eq!([oh, ow], [5, 7]);
    let (n, [h, w]) = (2, g.window.input);
    let x = values(n * 3 * h * w, 11);
    let wt = values(4 * 45, 12);
    let b = values(4, 13);
    let mut y = vec![0.0f32; n * 4 * oh * ow];
    reference_conv2d(&x, n, &g, &wt, Some(&b), &mut y).unwrap();
    for img in 0..n {
        for co in 0..4 {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = f64::from(b[co]);
                    for c in 0..3 {
                        for i in 0..3 {
                            for j in 0..5 {
                                let (yy, xx) =
                                    ((oy * 2 + i) as isize - 1, (ox + 2 * j) as isize - 2);
                                if (0..h as isize).contains(&yy) && (0..w as isize).contains(&xx) {
                                    let v = x[((img * 3 + c) * h + yy as usize) * w + xx as usize];
                                    let wv = wt[((co * 3 + c) * 3 + i) * 5 + j];
                                    acc += f64::from(wv) * f64::from(v);
                                }
                            }
                        }
                    }
                    let got = y[((img * 4 + co) * oh + oy) * ow + ox];
                    assert!(
                        (f64::from(got) - acc).abs() < 1e-4,
                        "image {img} channel {co} ({oy}, {ox}): {got} vs {acc}"
                    );
                }
            }
        }
    }
}

#[test]
fn an_input_smaller_than_the_padding_gives_the_bias() {
    let g = Conv2dGeom::new(1, 2, ConvWindow::new([0, 2], [1, 1]).padding([1, 0]));
    assert_eq!(g.output().unwrap(), [2, 2]);
    let mut y = vec![f32::NAN; 8];
    for kind in runnable() {
        conv2d_with(kind, &[], 1, &g, &[3.0, 4.0], Some(&[0.5, -1.5]), &mut y).unwrap();
        assert_eq!(y, [0.5, 0.5, 0.5, 0.5, -1.5, -1.5, -1.5, -1.5]);
    }
}

#[test]
fn bad_geometry_and_buffers_are_errors() {
    let g = Conv2dGeom::new(2, 3, ConvWindow::new([4, 4], [3, 3]));
    let (x, wt) = (vec![0.0; 32], vec![0.0; 54]);
    let mut y = vec![0.0; 12];
    assert!(conv2d(&x, 1, &g, &wt, None, &mut y).is_ok());
    let conv = |r: Result<DirectConvKernel, FloatGemmError>| match r {
        Err(FloatGemmError::Conv { reason }) => reason,
        other => panic!("expected a Conv error, got {other:?}"),
    };
    let msg = conv(conv2d(&x[..31], 1, &g, &wt, None, &mut y));
    assert!(msg.contains("input has 31 values, expected 32"), "{msg}");
    let msg = conv(conv2d(&x, 1, &g, &wt[..18], None, &mut y));
    assert!(msg.contains("weight has 18 values, expected 54"), "{msg}");
    let msg = conv(conv2d(&x, 1, &g, &wt, Some(&[1.0]), &mut y));
    assert!(msg.contains("bias has 1 values, expected 3"), "{msg}");
    let msg = conv(conv2d(&x, 1, &g, &wt, None, &mut y[..11]));
    assert!(msg.contains("output has 11 values, expected 12"), "{msg}");
    let msg = conv(conv2d(
        &x,
        1,
        &Conv2dGeom::new(2, 3, g.window.dilation([1, 0])),
        &wt,
        None,
        &mut y,
    ));
    assert!(msg.contains("must be positive"), "{msg}");
    let big = Conv2dGeom::new(2, 3, ConvWindow::new([4, 4], [5, 3]));
    let msg = conv(conv2d(&x, 1, &big, &[0.0; 90], None, &mut y));
    assert!(msg.contains("smaller than kernel"), "{msg}");
}

fn geometry() -> impl Strategy<Value = (usize, Conv2dGeom, bool, u32)> {
    (
        (1usize..3, 1usize..4, 1usize..15, 1usize..12, 1usize..40),
        (1usize..5, 1usize..5, 1usize..4, 1usize..4),
        (0usize..3, 0usize..3, 1usize..3, 1usize..3),
        any::<bool>(),
        any::<u32>(),
    )
        .prop_filter_map(
            "kernel larger than the padded input",
            |((n, ci, co, h, w), (kh, kw, sh, sw), (ph, pw, dh, dw), bias, seed)| {
                let g = Conv2dGeom::new(
                    ci,
                    co,
                    ConvWindow::new([h, w], [kh, kw])
                        .stride([sh, sw])
                        .padding([ph, pw])
                        .dilation([dh, dw]),
                );
                g.output().ok().map(|_| (n, g, bias, seed))
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn every_family_equals_the_oracle((n, g, bias, seed) in geometry()) {
        check_families(n, &g, bias, seed);
    }
}
