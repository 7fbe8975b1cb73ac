//! The indirect exact-AVX2 convolution (`conv::indirect_applies`) against the scalar oracle:
//! one-group K×K convolutions with even kernel-row runs `kw·C`, output channel counts around
//! the 16-column tile (with tails), pixel counts around the 6-row tile, every border
//! (padding, strides, height dilation, 3-d windows), symmetric and asymmetric weights; and
//! LeNet's second layer, which must take that path on AVX2 CPUs.

use proptest::prelude::*;
use qkernels::conv::{self, ConvGeometry, PackedConvWeights, reference};
use qkernels::gemm::{Activation, KernelKind, Requantize, WeightQParams};

/// xorshift64 stream from a seed.
fn stream(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

/// Runs every exact runnable family on `g` with random data from `seed` (weight zero
/// points 0 when `symmetric`) and compares each with the oracle.
fn check(g: &ConvGeometry, seed: u64, per_channel: bool, symmetric: bool, act: u8) {
    let mut next = stream(seed);
    let input: Vec<u8> = (0..g.input_len()).map(|_| next() as u8).collect();
    let n_w = g.out_channels * g.group_in() * g.taps();
    let weights: Vec<i8> = (0..n_w).map(|_| next() as i8).collect();
    let o = g.out_channels;
    let scales: Vec<f32> = (0..o)
        .map(|_| 0.001 + (next() % 1000) as f32 * 1e-5)
        .collect();
    let zps: Vec<i32> = (0..o)
        .map(|_| {
            if symmetric {
                0
            } else {
                (next() % 21) as i32 - 10
            }
        })
        .collect();
    let bias: Vec<f32> = (0..o)
        .map(|_| ((next() % 2001) as f32 - 1000.0) * 0.01)
        .collect();
    let za = (next() % 256) as i32;
    let q = if per_channel {
        WeightQParams::PerChannel {
            scales: &scales,
            zero_points: &zps,
        }
    } else {
        WeightQParams::PerTensor {
            scale: scales[0],
            zero_point: zps[0],
        }
    };
    let p = Requantize {
        act_scale: 0.02,
        out_scale: 0.05 * (g.k() as f32).sqrt(),
        out_zero_point: (next() % 256) as i32,
        bias: Some(&bias),
        activation: [Activation::None, Activation::Relu, Activation::Relu6][act as usize % 3],
    };
    let want = reference::conv_u8s8(g, &input, za, &weights, q, p).expect("oracle");
    for kind in KernelKind::all_runnable() {
        if kind.saturates_pairs() {
            continue;
        }
        let w = PackedConvWeights::pack(&weights, g, q, kind).expect("pack");
        let mut got = vec![0u8; want.len()];
        conv::conv_u8s8(g, &input, za, &w, p, &mut got).expect("conv");
        assert_eq!(got, want, "kind {kind} geometry {g:?}");
    }
}

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
