//! One-group convolutions with at least 128 input channels packed for the AMX family take the
//! GEMM forms (1×1 as a direct GEMM, K×K as the implicit GEMM on the AMX tiles) instead of the
//! AVX-512 VNNI row-run kernel, and equal the oracle (with every other runnable family):
//! padding, strides, M tails, N at panel boundaries, per-channel and asymmetric weights.
//! Narrower ones run the AMX row-run kernel and equal the oracle too: C = 32/64/96, 3×3 and
//! 5×5, strides 1 and 2, padding 0..2, widths not a multiple of 16, batches, per-tensor and
//! per-channel, symmetric and asymmetric weights, requantization with ReLU / ReLU6, 1 and 2
//! threads. Skipped where the AMX family cannot run.

mod conv_support;

use conv_support::check;
use qkernels::conv::{self, ConvGeometry, PackedConvWeights};
use qkernels::gemm::{KernelKind, WeightQParams};

fn path_for_amx(g: &ConvGeometry) -> String {
    let n_w = g.out_channels * g.group_in() * g.taps();
    let q = WeightQParams::PerTensor {
        scale: 0.1,
        zero_point: 0,
    };
    let w = PackedConvWeights::pack(&vec![1i8; n_w], g, q, KernelKind::Amx).expect("pack");
    w.path().to_string()
}

#[test]
fn wide_convs_take_the_gemm_forms_on_amx_and_match_the_oracle() {
    if !KernelKind::Amx.is_runnable() {
        eprintln!("AMX not runnable here: skipped");
        return;
    }
    let padded = |n, c, h, o, k: usize, s: usize| {
        ConvGeometry::new(n, c, o, 1, &[h, h], &[k, k])
            .and_then(|g| g.with_padding(&[k / 2, k / 2]))
            .and_then(|g| g.with_stride(&[s, s]))
            .expect("geometry")
    };
    let shapes = [
        (padded(1, 256, 6, 64, 3, 1), "gemm"),
        (padded(2, 128, 5, 97, 3, 2), "gemm"),
        (padded(1, 130, 7, 48, 3, 1), "gemm"),
        (padded(1, 256, 7, 1024, 1, 1), "gemm"),
        (padded(3, 136, 5, 49, 1, 1), "gemm"),
    ];
    for (i, (g, path)) in shapes.into_iter().enumerate() {
        assert_eq!(path_for_amx(&g), path, "{g:?}");
        assert!(!conv::row_run_applies(&g, KernelKind::Amx));
        for seed in 0..3 {
            check(&g, seed + 10 * i as u64, seed != 1, seed != 2, seed as u8);
        }
    }
    // Below 128 channels the AMX family packs the row-run form (run on AMX tiles).
    let narrow = padded(1, 64, 6, 64, 3, 1);
    assert_eq!(path_for_amx(&narrow), "row-run");
    assert!(conv::row_run_amx_applies(&narrow, KernelKind::Amx));
}

#[allow(clippy::too_many_arguments)]
fn geometry(
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    k: usize,
    s: usize,
    p: usize,
) -> ConvGeometry {
    ConvGeometry::new(n, c, o, 1, &[h, w], &[k, k])
        .and_then(|g| g.with_padding(&[p, p]))
        .and_then(|g| g.with_stride(&[s, s]))
        .expect("geometry")
}

#[test]
fn narrow_convs_take_the_amx_row_run_kernel_and_match_the_oracle() {
    if !KernelKind::Amx.is_runnable() {
        eprintln!("AMX not runnable here: skipped");
        return;
    }
    let mut shapes = Vec::new();
    for (c, o) in [(64, 64), (32, 48), (96, 80), (64, 130), (3, 16), (24, 7)] {
        for k in [3, 5] {
            for (s, p) in [(1, 1), (1, 0), (2, 2), (1, 2), (2, 1)] {
                shapes.push(geometry(1 + (c % 3), c, 9, 19, o, k, s, p));
            }
        }
    }
    // ResNet's first 3×3 stage at a reduced height, and a 1×1
    shapes.push(geometry(2, 64, 5, 56, 64, 3, 1, 1));
    shapes.push(geometry(1, 64, 7, 7, 256, 1, 1, 0));
    for (i, g) in shapes.iter().enumerate() {
        if g.output().is_err() {
            continue;
        }
        assert!(conv::row_run_amx_applies(g, KernelKind::Amx), "{g:?}");
        assert!(!conv::row_run_applies(g, KernelKind::Amx), "{g:?}");
        let seed = i as u64;
        check(
            g,
            seed,
            seed.is_multiple_of(2),
            seed % 3 != 2,
            (seed % 3) as u8,
        );
    }
    // C = 160 (≥ 128) keeps the GEMM forms and matches too.
    for (s, p) in [(1, 1), (2, 2)] {
        let g = geometry(1, 160, 7, 9, 64, 5, s, p);
        assert!(!conv::row_run_amx_applies(&g, KernelKind::Amx));
        check(&g, 7, true, true, 1);
    }
}

#[test]
fn amx_row_run_gives_the_same_bits_on_1_and_2_threads() {
    if !KernelKind::Amx.is_runnable() {
        eprintln!("AMX not runnable here: skipped");
        return;
    }
    let g = geometry(2, 64, 12, 37, 64, 3, 1, 1);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        pool.install(|| {
            check(&g, threads as u64, true, true, 1);
            check(&g, 10 + threads as u64, false, false, 0);
        });
    }
}
