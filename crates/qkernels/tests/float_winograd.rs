//! The Winograd F(2×2, 3×3) f32 convolution (`qkernels::float::winograd_conv2d_with`): every
//! runnable family bit-equal to its oracle over random geometries (proptest: odd sizes,
//! padding 0–2, several images, channel counts off the vector widths) and the benchmark
//! shapes; the oracle within the stated bound of the f64 convolution; the selection of
//! [`conv2d`].

mod float_support;

use float_support::{runnable, values};

use proptest::prelude::*;
use qkernels::float::{
    Conv2dGeom, ConvAlgorithm, ConvWindow, DirectConvKernel, FloatGemmError, conv2d, conv2d_using,
    reference_conv2d, reference_winograd_conv2d, winograd_conv2d_with,
};

/// A 3 × 3 stride-1 geometry.
fn geom(ci: usize, co: usize, [h, w]: [usize; 2], [ph, pw]: [usize; 2]) -> Conv2dGeom {
    Conv2dGeom::new(ci, co, ConvWindow::new([h, w], [3, 3]).padding([ph, pw]))
}

/// Input, weight and optional bias of one problem.
fn problem(
    n: usize,
    g: &Conv2dGeom,
    bias: bool,
    seed: u32,
) -> (Vec<f32>, Vec<f32>, Option<Vec<f32>>) {
    let x = values(n * g.in_channels * g.window.input_plane(), seed);
    let wt = values(g.out_channels * g.depth(), seed + 1);
    let b = bias.then(|| values(g.out_channels, seed + 2));
    (x, wt, b)
}

/// Runs every runnable family and the oracle on one problem; asserts bit equality.
fn check_families(n: usize, g: &Conv2dGeom, bias: bool, seed: u32) {
    let [oh, ow] = g.output().expect("valid geometry");
    let (x, wt, b) = problem(n, g, bias, seed);
    let mut want = vec![f32::NAN; n * g.out_channels * oh * ow];
    reference_winograd_conv2d(&x, n, g, &wt, b.as_deref(), &mut want).expect("oracle");
    for kind in runnable() {
        let mut got = vec![f32::NAN; want.len()];
        let ran = winograd_conv2d_with(kind, &x, n, g, &wt, b.as_deref(), &mut got).expect("run");
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
        // (n, cin, cout, h, w, padding)
        (1, 64, 64, 56, 56, 1),
        (2, 256, 40, 14, 14, 1),
        (3, 17, 23, 13, 9, 1),
        (1, 5, 70, 30, 31, 0),
        (2, 33, 7, 7, 130, 1),
        (1, 3, 13, 3, 3, 0),
        // output-channel-major on AVX-512 (module doc), one block of tiles (the weight
        // transformed per 64 channels): the 1,256,14,256 layer, a last group of 3
        // panels with 12 padding channels, 35 channels over 18 tiles
        (1, 256, 256, 14, 14, 1),
        (1, 24, 100, 6, 5, 1),
        (2, 19, 35, 5, 6, 1),
        // the same over 100 tiles (two blocks: the weight transformed once up front)
        (1, 20, 80, 20, 20, 1),
    ];
    for (seed, &(n, ci, co, h, w, p)) in shapes.iter().enumerate() {
        check_families(
            n,
            &geom(ci, co, [h, w], [p, p]),
            seed % 2 == 0,
            seed as u32 * 5 + 3,
        );
    }
}

/// Largest `|y - y_exact| / (Σ |w|·|x| + |b|)` over the outputs of `y`, the exact convolution
/// evaluated in f64.
fn worst_relative_error(
    n: usize,
    g: &Conv2dGeom,
    x: &[f32],
    wt: &[f32],
    b: &[f32],
    y: &[f32],
) -> f64 {
    let ([h, w], [ph, pw]) = (g.window.input, g.window.padding);
    let [oh, ow] = g.output().unwrap();
    let (ci, co) = (g.in_channels, g.out_channels);
    let mut worst = 0.0f64;
    for img in 0..n {
        for o in 0..co {
            for oy in 0..oh {
                for ox in 0..ow {
                    let (mut exact, mut scale) = (f64::from(b[o]), f64::from(b[o]).abs());
                    for c in 0..ci {
                        for i in 0..3 {
                            for j in 0..3 {
                                let (yy, xx) = (
                                    (oy + i) as isize - ph as isize,
                                    (ox + j) as isize - pw as isize,
                                );
                                if (0..h as isize).contains(&yy) && (0..w as isize).contains(&xx) {
                                    let v = f64::from(
                                        x[((img * ci + c) * h + yy as usize) * w + xx as usize],
                                    );
                                    let k = f64::from(wt[((o * ci + c) * 3 + i) * 3 + j]);
                                    exact += k * v;
                                    scale += (k * v).abs();
                                }
                            }
                        }
                    }
                    let got = f64::from(y[((img * co + o) * oh + oy) * ow + ox]);
                    worst = worst.max((got - exact).abs() / scale.max(f64::MIN_POSITIVE));
                }
            }
        }
    }
    worst
}

/// The documented bound: `2⁻²⁰ · (Σ |w|·|x| + |b|)`, 16 units of f32 rounding of the
/// magnitude sum. Measured worst cases here: see the assertion message.
const BOUND: f64 = 1.0 / (1u64 << 20) as f64;

#[test]
fn the_oracle_is_within_the_bound_of_the_exact_convolution() {
    for (seed, &(ci, co, h, pad)) in [
        (64usize, 8usize, 12usize, 1usize),
        (256, 4, 8, 1),
        (7, 5, 11, 0),
        (512, 2, 6, 1),
    ]
    .iter()
    .enumerate()
    {
        let g = geom(ci, co, [h, h + 1], [pad, pad]);
        let [oh, ow] = g.output().unwrap();
        let (x, wt, b) = problem(2, &g, true, 40 + seed as u32);
        let b = b.unwrap();
        let mut wino = vec![0.0f32; 2 * co * oh * ow];
        reference_winograd_conv2d(&x, 2, &g, &wt, Some(&b), &mut wino).unwrap();
        let mut direct = vec![0.0f32; wino.len()];
        reference_conv2d(&x, 2, &g, &wt, Some(&b), &mut direct).unwrap();
        let (ew, ed) = (
            worst_relative_error(2, &g, &x, &wt, &b, &wino),
            worst_relative_error(2, &g, &x, &wt, &b, &direct),
        );
        assert!(
            ew <= BOUND,
            "cin {ci}: Winograd error {ew:e} (direct {ed:e}) above {BOUND:e}"
        );
        eprintln!("cin {ci}: worst relative error Winograd {ew:e}, direct {ed:e}");
    }
}

#[test]
fn conv2d_takes_winograd_only_where_it_applies_and_pays() {
    let wide = geom(16, 16, [10, 9], [1, 1]);
    assert_eq!(ConvAlgorithm::for_geometry(&wide), ConvAlgorithm::Winograd);
    let (x, wt, b) = problem(1, &wide, true, 9);
    let [oh, ow] = wide.output().unwrap();
    let mut got = vec![0.0f32; 16 * oh * ow];
    let mut want = got.clone();
    conv2d(&x, 1, &wide, &wt, b.as_deref(), &mut got).unwrap();
    reference_winograd_conv2d(&x, 1, &wide, &wt, b.as_deref(), &mut want).unwrap();
    assert_eq!(got, want);
    // the direct algorithm stays available by name, with the direct oracle's bits
    conv2d_using(
        ConvAlgorithm::Direct,
        DirectConvKernel::best(),
        &x,
        1,
        &wide,
        &wt,
        b.as_deref(),
        &mut got,
    )
    .unwrap();
    reference_conv2d(&x, 1, &wide, &wt, b.as_deref(), &mut want).unwrap();
    assert_eq!(got, want);
    for g in [
        geom(8, 16, [10, 9], [1, 1]),
        geom(16, 8, [10, 9], [1, 1]),
        Conv2dGeom::new(16, 16, ConvWindow::new([10, 9], [3, 3]).stride([2, 2])),
        Conv2dGeom::new(16, 16, ConvWindow::new([10, 9], [3, 3]).dilation([2, 1])),
        Conv2dGeom::new(16, 16, ConvWindow::new([10, 9], [5, 5])),
    ] {
        assert_eq!(
            ConvAlgorithm::for_geometry(&g),
            ConvAlgorithm::Direct,
            "{g:?}"
        );
    }
    let strided = Conv2dGeom::new(2, 2, ConvWindow::new([6, 6], [3, 3]).stride([2, 1]));
    assert!(!ConvAlgorithm::Winograd.applies(&strided));
    let mut y = vec![0.0f32; 2 * 2 * 4];
    match winograd_conv2d_with(
        DirectConvKernel::Scalar,
        &[0.0; 72],
        1,
        &strided,
        &[0.0; 36],
        None,
        &mut y,
    ) {
        Err(FloatGemmError::Conv { reason }) => assert!(reason.contains("stride 1"), "{reason}"),
        other => panic!("expected a Conv error, got {other:?}"),
    }
}

#[test]
fn the_best_family_is_the_one_that_runs() {
    let g = geom(16, 16, [5, 5], [1, 1]);
    let (x, wt, _) = problem(1, &g, false, 1);
    let mut y = vec![0.0f32; 16 * 25];
    let ran = conv2d(&x, 1, &g, &wt, None, &mut y).unwrap();
    assert_eq!(ran, DirectConvKernel::best());
    if let Some(want) = float_support::expected_direct_kernel() {
        assert_eq!(ran, want);
    }
}

fn geometry() -> impl Strategy<Value = (usize, Conv2dGeom, bool, u32)> {
    (
        (1usize..4, 1usize..40, 1usize..20),
        (1usize..20, 1usize..75, 0usize..3, 0usize..3),
        any::<bool>(),
        any::<u32>(),
    )
        .prop_filter_map(
            "kernel larger than the padded input",
            |((n, ci, co), (h, w, ph, pw), bias, seed)| {
                let g = geom(ci, co, [h, w], [ph, pw]);
                g.output().ok().map(|_| (n, g, bias, seed))
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(120))]

    #[test]
    fn every_family_equals_the_oracle((n, g, bias, seed) in geometry()) {
        check_families(n, &g, bias, seed);
    }
}
