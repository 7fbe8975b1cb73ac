//! The indirect exact-AVX2 convolution (`conv::indirect_applies`) against the scalar oracle:
//! one-group K×K convolutions with even kernel-row runs `kw·C`, output channel counts around
//! the 16-column tile (with tails), pixel counts around the 6-row tile, every border
//! (padding, strides, height dilation, 3-d windows), symmetric and asymmetric weights; and
//! LeNet's second layer, which must take that path on AVX2 CPUs.

use proptest::prelude::*;
use qkernels::conv::{self, ConvGeometry};
use qkernels::gemm::KernelKind;

mod conv_support;

use conv_support::check;

#[test]
fn lenet_conv2_takes_the_indirect_path_and_matches_the_oracle() {
    for batch in [1, 3] {
        let g = ConvGeometry::new(batch, 6, 16, 1, &[14, 14], &[5, 5]).expect("geometry");
        assert_eq!(
            conv::indirect_applies(&g, KernelKind::Avx2),
            cfg!(target_arch = "x86_64")
        );
        assert!(!conv::indirect_applies(&g, KernelKind::Scalar));
        for seed in 0..4 {
            check(&g, seed, seed % 2 == 0, seed < 2, seed as u8);
        }
    }
}

#[test]
fn odd_runs_grouped_and_pointwise_convs_keep_the_gemm_path() {
    let odd = ConvGeometry::new(1, 3, 16, 1, &[9, 9], &[3, 3]).expect("geometry");
    let grouped = ConvGeometry::new(1, 8, 16, 2, &[9, 9], &[3, 3]).expect("geometry");
    let pointwise = ConvGeometry::new(1, 8, 16, 1, &[9, 9], &[1, 1]).expect("geometry");
    for g in [odd, grouped, pointwise] {
        assert!(!conv::indirect_applies(&g, KernelKind::Avx2), "{g:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48)))]

    #[test]
    fn indirect_tiles_tails_and_borders(
        c in 1usize..=8,
        o in 1usize..=40,
        kh in 1usize..=5,
        kw in 1usize..=5,
        stride in 1usize..=2,
        pad in 0usize..=2,
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
        // an even run, and a reduction beyond the small-conv kernel's when O ≤ 8
        let c = if (kw * c) % 2 == 1 { c + 1 } else { c };
        let small = o <= 8 && kh * kw * c <= 128;
        let (kh, kw, c) = if small { (5, kw.max(4), 8) } else { (kh, kw, c) };
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
        prop_assert_eq!(
            conv::indirect_applies(&g, KernelKind::Avx2),
            cfg!(target_arch = "x86_64") && !(kh == 1 && kw == 1 && pad == 0 && stride == 1 && depth == 1)
        );
        check(&g, seed, per_channel, symmetric, act);
    }
}
