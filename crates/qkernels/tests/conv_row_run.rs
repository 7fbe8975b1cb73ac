//! The AVX-512 VNNI row-run convolution (`conv::row_run_applies`) against the scalar oracle:
//! one-group K×K convolutions with kernel-row runs `kw·C` of every length mod 4 (padded
//! runs read past their end into zero weights; the input's last runs are gathered), output
//! channel counts around the 16-lane vectors and the 64-channel panels, pixel counts around
//! the 6- and 8-row tiles, K blocks of whole runs and chunks of long runs, every border
//! (padding, strides, height dilation, 3-d windows), symmetric and asymmetric weights; and
//! the LeNet / ResNet shapes (1×1 too), which must take that path on AVX-512 VNNI CPUs.

use proptest::prelude::*;
use qkernels::conv::{self, ConvGeometry, PackedConvWeights};
use qkernels::gemm::{KernelKind, WeightQParams};

mod conv_support;

use conv_support::check;

/// Asserts the path the weights of `g` take on the AVX-512 VNNI family.
fn assert_row_run(g: &ConvGeometry, expected: bool) {
    assert_eq!(
        conv::row_run_applies(g, KernelKind::Avx512Vnni),
        expected && cfg!(target_arch = "x86_64"),
        "{g:?}"
    );
    assert!(!conv::row_run_applies(g, KernelKind::Avx2));
    // The AMX family packs the row-run form below 128 input channels and runs it on the AMX
    // row-run kernel (from 128 on the GEMM forms: `conv_amx.rs`).
    assert!(!conv::row_run_applies(g, KernelKind::Amx));
    assert_eq!(
        conv::row_run_amx_applies(g, KernelKind::Amx),
        conv::row_run_applies(g, KernelKind::Avx512Vnni) && g.in_channels < 128
    );
    if KernelKind::Avx512Vnni.is_runnable() {
        let n_w = g.out_channels * g.group_in() * g.taps();
        let q = WeightQParams::PerTensor {
            scale: 0.1,
            zero_point: 0,
        };
        let w =
            PackedConvWeights::pack(&vec![1i8; n_w], g, q, KernelKind::Avx512Vnni).expect("pack");
        assert_eq!(w.path() == "row-run", expected, "{g:?}");
    }
}

#[test]
fn lenet_and_resnet_shapes_take_the_row_run_path_and_match_the_oracle() {
    let lenet = |batch| ConvGeometry::new(batch, 6, 16, 1, &[14, 14], &[5, 5]);
    let padded = |c, h, o, k: usize| {
        ConvGeometry::new(1, c, o, 1, &[h, h], &[k, k])
            .and_then(|g| g.with_padding(&[k / 2, k / 2]))
    };
    let shapes = [
        lenet(1),
        lenet(3),
        // runs of 192 bytes: one run per K block, accumulated over three blocks
        padded(64, 9, 64, 3),
        // runs of 768 bytes: chunks of one run per K block; two panels (64 + 16)
        padded(256, 5, 80, 3),
        // 48 channels: 8-row tiles of three vectors; 49: a masked fourth vector
        padded(24, 7, 48, 3),
        padded(24, 7, 49, 3),
        padded(3, 11, 130, 7),
    ];
    for (i, g) in shapes.into_iter().enumerate() {
        let g = g.expect("geometry");
        assert_row_run(&g, true);
        for seed in 0..3 {
            check(&g, seed + 10 * i as u64, seed != 1, seed != 2, seed as u8);
        }
    }
}

#[test]
fn grouped_small_and_width_dilated_convs_keep_other_paths_pointwise_ones_do_not() {
    let grouped = ConvGeometry::new(1, 8, 16, 2, &[9, 9], &[3, 3]).expect("geometry");
    let pointwise = ConvGeometry::new(1, 8, 16, 1, &[9, 9], &[1, 1]).expect("geometry");
    let small = ConvGeometry::new(1, 3, 6, 1, &[9, 9], &[5, 5]).expect("geometry");
    let dilated = ConvGeometry::new(1, 8, 16, 1, &[9, 9], &[3, 3])
        .and_then(|g| g.with_dilation(&[1, 2]))
        .expect("geometry");
    for g in [grouped, small] {
        assert_row_run(&g, false);
    }
    assert_row_run(&pointwise, true);
    for seed in 0..2 {
        check(&pointwise, seed, true, seed == 0, 1);
    }
    // packed for the row-run kernel, run by the implicit GEMM
    assert!(!conv::row_run_applies(&dilated, KernelKind::Avx512Vnni));
    for seed in 0..2 {
        check(&dilated, seed, true, seed == 0, 0);
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    // above the kernel's parallel threshold: tasks of M tiles spread over the pool
    let g = ConvGeometry::new(2, 64, 70, 1, &[12, 12], &[3, 3])
        .and_then(|g| g.with_padding(&[1, 1]))
        .expect("geometry");
    assert_row_run(&g, true);
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        pool.install(|| {
            check(&g, threads as u64, true, true, 0);
            check(&g, 7, false, false, 1);
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48)))]

    #[test]
    fn row_run_tiles_tails_and_borders(
        c in 1usize..=20,
        o in 1usize..=140,
        kh in 1usize..=5,
        kw in 1usize..=5,
        stride in 1usize..=2,
        pad in 0usize..=3,
        dil_h in 1usize..=2,
        h in 5usize..=11,
        w in 5usize..=11,
        depth in 1usize..=2,
        batch in 1usize..=2,
        seed in any::<u64>(),
        per_channel in any::<bool>(),
        symmetric in any::<bool>(),
        act in 0u8..3,
    ) {
        // beyond the small-conv kernel's shapes
        let o = if o <= 8 && kh * kw * c <= 128 { o + 8 } else { o };
        let h = h.max(dil_h * (kh - 1) + 1);
        let g = if depth == 1 {
            ConvGeometry::new(batch, c, o, 1, &[h, w], &[kh, kw])
                .and_then(|g| g.with_stride(&[stride, stride]))
                .and_then(|g| g.with_padding(&[pad, pad]))
                .and_then(|g| g.with_dilation(&[dil_h, 1]))
        } else {
            ConvGeometry::new(batch, c, o, 1, &[3, h, w], &[2, kh, kw])
                .and_then(|g| g.with_stride(&[1, stride, stride]))
                .and_then(|g| g.with_padding(&[1, pad, pad]))
                .and_then(|g| g.with_dilation(&[1, dil_h, 1]))
        }
        .expect("valid geometry");
        prop_assume!(g.output().is_ok());
        assert_row_run(&g, true);
        check(&g, seed, per_channel, symmetric, act);
    }
}
