//! Shared by the conv path tests: random data for a geometry, every exact runnable family
//! against the scalar oracle.

use qkernels::conv::{self, ConvGeometry, PackedConvWeights, reference};
use qkernels::gemm::{Activation, KernelKind, Requantize, WeightQParams};

/// xorshift64 stream from a seed.
pub fn stream(seed: u64) -> impl FnMut() -> u64 {
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
#[allow(dead_code)] // not every test binary that includes this module calls it
pub fn check(g: &ConvGeometry, seed: u64, per_channel: bool, symmetric: bool, act: u8) {
    check_with(g, seed, per_channel, symmetric, act, |_, _, _| {});
}

/// [`check`], calling `inspect` with each family's packed weights (and the weight qparams)
/// before it runs, for tests that also assert which path or kernel the weights select.
pub fn check_with(
    g: &ConvGeometry,
    seed: u64,
    per_channel: bool,
    symmetric: bool,
    act: u8,
    inspect: impl Fn(KernelKind, &PackedConvWeights, WeightQParams<'_>),
) {
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
    let q = WeightQParams::from_slices(per_channel, &scales, &zps).expect("weight qparams");
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
        inspect(kind, &w, q);
        let mut got = vec![0u8; want.len()];
        conv::conv_u8s8(g, &input, za, &w, p, &mut got).expect("conv");
        assert_eq!(got, want, "kind {kind} geometry {g:?}");
    }
}
