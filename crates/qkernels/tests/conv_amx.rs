//! One-group convolutions with at least 128 input channels packed for the AMX family take the
//! GEMM forms (1×1 as a direct GEMM, K×K as the implicit GEMM on the AMX tiles) instead of the
//! AVX-512 VNNI row-run kernel, and equal the oracle (with every other runnable family):
//! padding, strides, M tails, N at panel boundaries, per-channel and asymmetric weights.
//! Skipped where the AMX family cannot run.

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
    // Below 128 channels the AMX family keeps the row-run kernel.
    let narrow = padded(1, 64, 6, 64, 3, 1);
    assert_eq!(path_for_amx(&narrow), "row-run");
}
