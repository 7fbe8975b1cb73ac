//! The direct conv kernels (depthwise and small-C) against the scalar oracle on the shapes
//! that stress their vector blocking: channel counts around the 16- and 32-channel blocks
//! (with tails), multiplier 1 and 2, fbgemm's saturating depthwise fast path and the exact
//! one, 3×3 / 5×5 windows with strides 1 and 2 and every padding; and few-channel convs on
//! rows wide enough for whole pixel blocks plus tails, with borders on every side.

use proptest::prelude::*;

mod conv_support;

use conv_support::{check_with, stream};
use qkernels::conv::{self, ConvGeometry, PackedConvWeights, reference};
use qkernels::gemm::{Activation, KernelKind, Requantize, WeightQParams};

/// The depthwise kernel family weights packed for `kind` must run (the prefix of
/// [`conv::depthwise_kernel`]): on x86-64, symmetric weights take the AVX-512 row kernel
/// when packed for the AVX-512 VNNI family and the AVX2 row kernel for the other vector
/// families; everything else runs the per-pixel kernel.
fn expected_family(kind: KernelKind, symmetric: bool) -> &'static str {
    match kind {
        _ if !cfg!(target_arch = "x86_64") || !symmetric => "per",
        KernelKind::Scalar => "per",
        KernelKind::Avx512Vnni | KernelKind::Amx => "avx512",
        _ => "avx2",
    }
}

/// Runs every exact runnable family on `g` with random data from `seed` and compares each
/// with the oracle (`conv_support::check_with`); `path` is the direct path the weights must
/// select. `symmetric` weights (zero points 0, PyTorch's default) take the depthwise row
/// kernel on x86, asymmetric ones the per-pixel kernel.
fn check(g: &ConvGeometry, seed: u64, per_channel: bool, symmetric: bool, act: u8, path: &str) {
    check_with(g, seed, per_channel, symmetric, act, |kind, w, q| {
        assert_eq!(w.path(), path, "{g:?}");
        if path == "depthwise" {
            // (asymmetric draws may still give all-zero zero points)
            let zero = match q {
                WeightQParams::PerTensor { zero_point, .. } => zero_point == 0,
                WeightQParams::PerChannel { zero_points, .. } => {
                    zero_points.iter().all(|&z| z == 0)
                }
            };
            let ran = conv::depthwise_kernel(g, w).expect("a depthwise kernel");
            assert_eq!(
                ran.split('-').next(),
                Some(expected_family(kind, zero)),
                "{kind}"
            );
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)))]

    #[test]
    fn depthwise_blocks_tails_and_borders(
        groups in 2usize..=72,
        mult in 1usize..=2,
        k5 in any::<bool>(),
        stride in 1usize..=2,
        pad in 0usize..=2,
        h in 5usize..=9,
        w in 5usize..=11,
        batch in 1usize..=2,
        seed in any::<u64>(),
        per_channel in any::<bool>(),
        symmetric in any::<bool>(),
        act in 0u8..3,
    ) {
        let k = if k5 { 5 } else { 3 };
        let g = ConvGeometry::new(batch, groups, groups * mult, groups, &[h, w], &[k, k])
            .and_then(|g| g.with_stride(&[stride, stride]))
            .and_then(|g| g.with_padding(&[pad, pad]))
            .expect("valid geometry");
        check(&g, seed, per_channel, symmetric, act, "depthwise");
    }

    #[test]
    fn depthwise_fbgemm_fast_path(
        groups8 in 1usize..=9,
        mult in 1usize..=2,
        k5 in any::<bool>(),
        stride in 1usize..=2,
        h in 3usize..=9,
        w in 3usize..=11,
        seed in any::<u64>(),
        per_channel in any::<bool>(),
        symmetric in any::<bool>(),
    ) {
        let k = if k5 { 5 } else { 3 };
        let groups = groups8 * 8;
        let g = ConvGeometry::new(1, groups, groups * mult, groups, &[h, w], &[k, k])
            .and_then(|g| g.with_stride(&[stride, stride]))
            .and_then(|g| g.with_padding(&[k / 2, k / 2]))
            .expect("valid geometry");
        prop_assert!(g.fbgemm_depthwise_saturates());
        check(&g, seed, per_channel, symmetric, 0, "depthwise");
    }

    #[test]
    fn small_c_pixel_blocks_and_borders(
        c in 1usize..=4,
        o in 1usize..=8,
        k in 2usize..=5,
        stride in 1usize..=2,
        pad in 0usize..=2,
        h in 5usize..=8,
        w in 5usize..=40,
        batch in 1usize..=2,
        seed in any::<u64>(),
        per_channel in any::<bool>(),
        act in 0u8..3,
    ) {
        let g = ConvGeometry::new(batch, c, o, 1, &[h, w], &[k, k])
            .and_then(|g| g.with_stride(&[stride, stride]))
            .and_then(|g| g.with_padding(&[pad, pad]))
            .expect("valid geometry");
        check(&g, seed, per_channel, false, act, "small");
    }
}

/// fbgemm's depthwise fast path with weights whose tap pairs can leave i16 (127 or −128 in
/// one pair, on inputs of 255 or 0): the AVX-512 kernel takes its pair-saturating product
/// and saturates where the oracle does; with weights in −64..=63 no pair can saturate and
/// it takes an exact product (the column one on 3×3 windows). Both equal the oracle (3×3 and 5×5, stride 1 and 2, channel
/// counts with zmm, masked zmm and ymm blocks, and 144 = 2·64 + 16 with odd and even
/// interior pixel counts and a clamped activation: the `asm!` loops of whole zmm blocks
/// and 16-channel tails).
#[test]
fn depthwise_pair_saturation_and_the_exact_product() {
    for (c, k, stride, w, act) in [
        (8, 3, 1, 9, Activation::None),
        (40, 3, 2, 9, Activation::None),
        (72, 5, 1, 9, Activation::None),
        (144, 3, 1, 9, Activation::None),
        (144, 3, 1, 10, Activation::Relu6),
        (144, 3, 1, 3, Activation::None),
        (144, 3, 1, 4, Activation::Relu6),
        (144, 3, 2, 11, Activation::Relu),
        (144, 3, 2, 13, Activation::None),
        (96, 5, 2, 9, Activation::None),
    ] {
        pair_saturation_case(c, k, stride, 7, w, act);
    }
}

/// The same on pools of 1–3 threads, on a shape above the depthwise kernel's parallel
/// threshold (rows split between the pool's threads).
#[test]
fn depthwise_pair_saturation_on_any_thread_count() {
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        pool.install(|| pair_saturation_case(144, 3, 1, 18, 18, Activation::Relu6));
    }
}

/// One case of [`depthwise_pair_saturation_and_the_exact_product`] on a `h × w` input.
fn pair_saturation_case(c: usize, k: usize, stride: usize, h: usize, w: usize, act: Activation) {
    let g = ConvGeometry::new(1, c, c, c, &[h, w], &[k, k])
        .and_then(|g| g.with_stride(&[stride, stride]))
        .and_then(|g| g.with_padding(&[k / 2, k / 2]))
        .expect("valid geometry");
    assert!(g.fbgemm_depthwise_saturates());
    let mut next = stream(c as u64);
    // mostly saturated pixels, so many pairs reach ±2¹⁵ in the saturating case
    let input: Vec<u8> = (0..g.input_len())
        .map(|_| match next() % 4 {
            0 => next() as u8,
            1 => 0,
            _ => 255,
        })
        .collect();
    let scales: Vec<f32> = (0..c).map(|i| 0.002 + i as f32 * 1e-5).collect();
    let zps = vec![0; c];
    let q = WeightQParams::PerChannel {
        scales: &scales,
        zero_points: &zps,
    };
    let p = Requantize {
        act_scale: 0.02,
        out_scale: 0.5,
        out_zero_point: 120,
        bias: None,
        activation: act,
    };
    // the exact product runs per input column on 3×3 windows, per pixel on 5×5 ones
    let exact = if k == 3 {
        "avx512-cols"
    } else {
        "avx512-exact"
    };
    for (saturating, product) in [(true, "avx512-pairs"), (false, exact)] {
        let weights: Vec<i8> = (0..c * k * k)
            .map(|_| {
                let v = next() as i8;
                match (saturating, next() % 3) {
                    (true, 0) => 127,
                    (true, 1) => -128,
                    (true, _) => v,
                    (false, _) => v / 2,
                }
            })
            .collect();
        let want = reference::conv_u8s8(&g, &input, 0, &weights, q, p).expect("oracle");
        for kind in KernelKind::all_runnable() {
            if kind.saturates_pairs() {
                continue;
            }
            let w = PackedConvWeights::pack(&weights, &g, q, kind).expect("pack");
            if kind.has_avx512_vnni() {
                assert_eq!(conv::depthwise_kernel(&g, &w), Some(product), "{g:?}");
            }
            let mut got = vec![0u8; want.len()];
            conv::conv_u8s8(&g, &input, 0, &w, p, &mut got).expect("conv");
            assert_eq!(got, want, "kind {kind} saturating {saturating} {g:?}");
        }
    }
}

/// Output scales so small that the requantized values leave the i16 range (the row
/// kernel's saturating packs) or even the i32 range (`cvtps2dq`'s `i32::MIN`), with every
/// activation: the depthwise kernels still equal the oracle. With a 1e-12 scale the quantized
/// 6.0 wraps below the zero point (fbgemm's quantize), so ReLU6 sends everything to it.
#[test]
fn depthwise_extreme_requantization_matches_the_oracle() {
    let g = ConvGeometry::new(1, 40, 40, 40, &[6, 7], &[3, 3])
        .and_then(|g| g.with_padding(&[1, 1]))
        .expect("valid geometry");
    let mut next = stream(7);
    let input: Vec<u8> = (0..g.input_len()).map(|_| next() as u8).collect();
    let weights: Vec<i8> = (0..40 * 9).map(|_| next() as i8).collect();
    let scales: Vec<f32> = (0..40).map(|i| 0.001 + i as f32 * 1e-5).collect();
    let zps = vec![0i32; 40];
    let bias: Vec<f32> = (0..40).map(|i| (i as f32 - 20.0) * 0.3).collect();
    let q = WeightQParams::PerChannel {
        scales: &scales,
        zero_points: &zps,
    };
    let mut saw_extremes = [false; 2];
    for out_scale in [1e-4f32, 1e-12] {
        for activation in [Activation::None, Activation::Relu, Activation::Relu6] {
            for out_zero_point in [0, 100, 255] {
                let p = Requantize {
                    act_scale: 0.02,
                    out_scale,
                    out_zero_point,
                    bias: Some(&bias),
                    activation,
                };
                let want = reference::conv_u8s8(&g, &input, 77, &weights, q, p).expect("oracle");
                saw_extremes[0] |= want.contains(&0) && want.contains(&255);
                saw_extremes[1] |= want.iter().all(|&v| v == want[0]);
                for kind in KernelKind::all_runnable() {
                    if kind.saturates_pairs() {
                        continue;
                    }
                    let w = PackedConvWeights::pack(&weights, &g, q, kind).expect("pack");
                    let mut got = vec![0u8; want.len()];
                    conv::conv_u8s8(&g, &input, 77, &w, p, &mut got).expect("conv");
                    assert_eq!(got, want, "kind {kind} scale {out_scale} {activation:?}");
                }
            }
        }
    }
    // both clamps were hit, and some setting sent every value to one bound
    assert_eq!(saw_extremes, [true, true]);
}
