//! Under `QSTACK_ISA=avx2` an AVX-512 host packs depthwise weights for the AVX2 family, and
//! the AVX2 row kernel (not the AVX-512 one) runs them, with the oracle's results. The
//! environment is read once per process, so this file is its own test binary with a single
//! test that sets the cap before anything reads it (unless the caller already set one).

use qkernels::conv::{self, ConvGeometry, PackedConvWeights, reference};
use qkernels::gemm::{Activation, KernelKind, Requantize, WeightQParams};
use qkernels::isa::{self, Isa};

#[test]
fn avx2_cap_runs_the_avx2_row_kernel() {
    if std::env::var_os(isa::ISA_ENV).is_none() {
        // SAFETY: this binary's only test runs before any other thread reads the environment.
        unsafe { std::env::set_var(isa::ISA_ENV, "avx2") };
    }
    let cap = isa::env_cap().expect("a known cap is set");
    let g = ConvGeometry::new(1, 48, 48, 48, &[6, 7], &[3, 3])
        .and_then(|g| g.with_padding(&[1, 1]))
        .expect("valid geometry");
    let input: Vec<u8> = (0..g.input_len()).map(|i| (i * 37 % 256) as u8).collect();
    let weights: Vec<i8> = (0..48 * 9).map(|i| (i * 53 % 256) as u8 as i8).collect();
    let scales = vec![0.003f32; 48];
    let zps = vec![0; 48];
    let q = WeightQParams::PerChannel {
        scales: &scales,
        zero_points: &zps,
    };
    let p = Requantize {
        act_scale: 0.02,
        out_scale: 0.4,
        out_zero_point: 128,
        bias: None,
        activation: Activation::Relu,
    };
    let w = PackedConvWeights::pack_best(&weights, &g, q).expect("pack");
    let ran = conv::depthwise_kernel(&g, &w).expect("a depthwise kernel");
    let expected = if !cfg!(target_arch = "x86_64") || cap == Isa::Scalar {
        "per-pixel"
    } else if cap == Isa::Avx2 && Isa::Avx2.is_supported() {
        assert_eq!(w.kind(), KernelKind::Avx2);
        "avx2-rows"
    } else {
        ran
    };
    assert_eq!(ran, expected, "cap {cap}");
    let want = reference::conv_u8s8(&g, &input, 3, &weights, q, p).expect("oracle");
    let mut got = vec![0u8; want.len()];
    conv::conv_u8s8(&g, &input, 3, &w, p, &mut got).expect("conv");
    assert_eq!(got, want);
}
