//! The f32 convolutions split over the rayon pool (direct, Winograd, depthwise): on shapes
//! above the split thresholds, with channel and plane tails, 2- and 3-thread pools give the
//! bits of a 1-thread pool, and those are the oracle's, for every runnable family. Also the
//! f32 GEMM with `Threads::Rayon` (qnn's 1 × 1 convolutions): the bits of `Threads::Single`.

mod float_support;

use float_support::{runnable, values};

use qkernels::float::{
    CONV2D_PAR_MIN_MACS, Conv2dGeom, ConvAlgorithm, ConvWindow, DEPTHWISE_PAR_MIN_MACS,
    DepthwiseGeom, MatMut, MatRef, Threads, conv2d_using, depthwise_conv2d_vec,
    depthwise_conv2d_with, reference_conv2d, reference_depthwise_conv2d, reference_winograd_conv2d,
    sgemm,
};

/// Runs `f` in a pool of exactly `threads` threads.
fn on<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool")
        .install(f)
}

fn assert_bits(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (a, e)) in got.iter().zip(want).enumerate() {
        assert_eq!(a.to_bits(), e.to_bits(), "{what}: output {i}: {a} vs {e}");
    }
}

/// `conv2d_using` on 1, 2 and 3 threads equals the oracle of `algorithm` bit for bit.
fn check_conv(algorithm: ConvAlgorithm, n: usize, g: &Conv2dGeom, bias: bool, seed: u32) {
    let [oh, ow] = g.output().expect("geometry");
    let macs = n * g.out_channels * g.depth() * oh * ow;
    assert!(
        macs >= CONV2D_PAR_MIN_MACS,
        "{g:?} is below the split threshold"
    );
    let x = values(n * g.in_channels * g.window.input_plane(), seed);
    let wt = values(g.out_channels * g.depth(), seed + 1);
    let b = bias.then(|| values(g.out_channels, seed + 2));
    let mut want = vec![f32::NAN; n * g.out_channels * oh * ow];
    match algorithm {
        ConvAlgorithm::Direct => reference_conv2d(&x, n, g, &wt, b.as_deref(), &mut want),
        ConvAlgorithm::Winograd => {
            reference_winograd_conv2d(&x, n, g, &wt, b.as_deref(), &mut want)
        }
    }
    .expect("oracle");
    for kind in runnable() {
        for threads in [1, 2, 3] {
            let mut got = vec![f32::NAN; want.len()];
            on(threads, || {
                conv2d_using(algorithm, kind, &x, n, g, &wt, b.as_deref(), &mut got)
            })
            .expect("conv");
            let what = format!(
                "{} {} n {n} {threads} threads",
                algorithm.name(),
                kind.name()
            );
            assert_bits(&got, &want, &what);
        }
    }
}

#[test]
fn direct_conv_is_the_same_on_any_pool() {
    // one image: channel tasks (30 channels: 15 + 15, 10 + 10 + 10), 16-output tile tails
    let g = Conv2dGeom::new(8, 30, ConvWindow::new([40, 37], [5, 5]).padding([2, 2]));
    check_conv(ConvAlgorithm::Direct, 1, &g, true, 1);
    // stride 2, dilation, several images (image tasks with 3 threads: 2 + 2 + 1 ...)
    let g = Conv2dGeom::new(
        12,
        19,
        ConvWindow::new([45, 43], [3, 3])
            .stride([2, 2])
            .padding([1, 2])
            .dilation([2, 1]),
    );
    check_conv(ConvAlgorithm::Direct, 5, &g, false, 2);
}

#[test]
fn winograd_conv_is_the_same_on_any_pool() {
    // one image: bands of output rows, odd output sizes (tiles half outside the plane)
    let g = Conv2dGeom::new(16, 27, ConvWindow::new([33, 35], [3, 3]).padding([1, 1]));
    check_conv(ConvAlgorithm::Winograd, 1, &g, true, 3);
    // one image with fewer tiles than output channels: channel tasks
    let g = Conv2dGeom::new(64, 130, ConvWindow::new([13, 14], [3, 3]).padding([1, 1]));
    check_conv(ConvAlgorithm::Winograd, 1, &g, false, 9);
    // two images on 3 threads: bands of output rows; vertical padding 2, none across
    let g = Conv2dGeom::new(16, 21, ConvWindow::new([30, 27], [3, 3]).padding([2, 0]));
    check_conv(ConvAlgorithm::Winograd, 2, &g, true, 8);
    // image tasks whose 64-tile blocks no longer span the same images
    let g = Conv2dGeom::new(20, 17, ConvWindow::new([21, 19], [3, 3]));
    check_conv(ConvAlgorithm::Winograd, 7, &g, true, 4);
}

/// The depthwise kernels on 1, 2 and 3 threads (both entry points) equal the oracle.
fn check_depthwise(n: usize, g: &DepthwiseGeom, bias: bool, seed: u32) {
    let [oh, ow] = g.output().expect("geometry");
    let macs = n * g.channels * g.window.taps() * oh * ow;
    assert!(
        macs >= DEPTHWISE_PAR_MIN_MACS,
        "{g:?} is below the split threshold"
    );
    let x = values(n * g.channels * g.window.input_plane(), seed);
    let wt = values(g.channels * g.window.taps(), seed + 1);
    let b = bias.then(|| values(g.channels, seed + 2));
    let mut want = vec![f32::NAN; n * g.channels * oh * ow];
    reference_depthwise_conv2d(&x, n, g, &wt, b.as_deref(), &mut want).expect("oracle");
    for threads in [1, 2, 3] {
        for kind in runnable() {
            let mut got = vec![f32::NAN; want.len()];
            on(threads, || {
                depthwise_conv2d_with(kind, &x, n, g, &wt, b.as_deref(), &mut got)
            })
            .expect("depthwise");
            assert_bits(
                &got,
                &want,
                &format!("{} n {n} {threads} threads", kind.name()),
            );
        }
        let got = on(threads, || {
            depthwise_conv2d_vec(&x, n, g, &wt, b.as_deref())
        })
        .expect("depthwise vec");
        assert_bits(&got, &want, &format!("vec n {n} {threads} threads"));
    }
}

#[test]
fn depthwise_conv_is_the_same_on_any_pool() {
    // one image, 3 x 3 stride 1 (the in-place AVX-512 planes), rows off the vector width
    let g = DepthwiseGeom::new(21, ConvWindow::new([101, 99], [3, 3]).padding([1, 1]));
    check_depthwise(1, &g, true, 5);
    // several images, 5 x 5 stride 2
    let g = DepthwiseGeom::new(
        13,
        ConvWindow::new([61, 59], [5, 5])
            .stride([2, 2])
            .padding([2, 2]),
    );
    check_depthwise(5, &g, false, 6);
    // dilated (the padded-copy row kernels)
    let g = DepthwiseGeom::new(
        9,
        ConvWindow::new([90, 87], [3, 3])
            .padding([2, 2])
            .dilation([2, 2]),
    );
    check_depthwise(2, &g, true, 7);
}

#[test]
fn f32_gemm_on_a_pool_is_the_one_thread_gemm() {
    // (m, k, n, A transposed, beta): bands of rows (with row tails, k over 512 and not a
    // multiple of it, accumulation into C, a transposed A), and n <= 64 (the crate's threads)
    let cases = [
        (1024, 256, 196, false, 0.0),
        (256, 1024, 196, false, 0.0),
        (77, 1000, 130, false, 1.0),
        (300, 128, 361, true, 0.0),
        (2000, 600, 50, false, 1.0),
    ];
    for (m, k, n, transposed, beta) in cases {
        let a = values(m * k, 11);
        let b = values(k * n, 12);
        let c0 = values(m * n, 13);
        let run = |threads: Threads| {
            let av = if transposed {
                MatRef::row_major(&a, k, m).unwrap().t()
            } else {
                MatRef::row_major(&a, m, k).unwrap()
            };
            let mut c = c0.clone();
            let bv = MatRef::row_major(&b, k, n).unwrap();
            sgemm(
                0.5,
                av,
                bv,
                beta,
                MatMut::row_major(&mut c, m, n).unwrap(),
                threads,
            )
            .unwrap();
            c
        };
        let want = run(Threads::Single);
        for threads in [1, 2, 3] {
            let got = on(threads, || run(Threads::Rayon(0)));
            assert_bits(
                &got,
                &want,
                &format!("gemm {m}x{k}x{n} on {threads} threads"),
            );
        }
    }
}
