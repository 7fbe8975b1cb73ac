//! The small-C convolution (few outputs, short reduction: LeNet's first layer) on every
//! runnable exact family against the scalar oracle, with symmetric and asymmetric weights,
//! dilation, padding and pixel-block tails; and `conv_u8s8_max_pool2` (the convolution
//! followed by a 2×2 stride-2 max pool) against the oracle convolution pooled by hand, fused
//! on the AVX-512 VNNI kernel (proved by `max_pool2_fuses`) and unfused elsewhere or when the
//! requantization could overflow.

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

/// Random data for `g`: input, weights, scales, zero points, bias, input zero point, output
/// zero point.
struct Data {
    input: Vec<u8>,
    weights: Vec<i8>,
    scales: Vec<f32>,
    zps: Vec<i32>,
    bias: Vec<f32>,
    za: i32,
    z_out: i32,
}

fn data(g: &ConvGeometry, seed: u64, symmetric: bool) -> Data {
    let mut next = stream(seed);
    let o = g.out_channels;
    Data {
        input: (0..g.input_len()).map(|_| next() as u8).collect(),
        weights: (0..o * g.group_in() * g.taps())
            .map(|_| next() as i8)
            .collect(),
        scales: (0..o)
            .map(|_| 0.001 + (next() % 1000) as f32 * 1e-5)
            .collect(),
        zps: (0..o)
            .map(|_| {
                if symmetric {
                    0
                } else {
                    (next() % 21) as i32 - 10
                }
            })
            .collect(),
        bias: (0..o)
            .map(|_| ((next() % 2001) as f32 - 1000.0) * 0.01)
            .collect(),
        za: (next() % 256) as i32,
        z_out: (next() % 256) as i32,
    }
}

fn qparams(d: &Data, per_channel: bool) -> WeightQParams<'_> {
    WeightQParams::from_slices(per_channel, &d.scales, &d.zps).expect("weight qparams")
}

fn params<'a>(g: &ConvGeometry, d: &'a Data, out_scale: f32, act: u8) -> Requantize<'a> {
    Requantize {
        act_scale: 0.02,
        out_scale: out_scale * (g.k() as f32).sqrt(),
        out_zero_point: d.z_out,
        bias: Some(&d.bias),
        activation: [Activation::None, Activation::Relu, Activation::Relu6][act as usize % 3],
    }
}

/// Runs every exact runnable family on `g`: the convolution against the oracle, and the
/// pooled call against the pooled oracle. `fuse_expected`: whether the VNNI kernel must fuse.
fn check(g: &ConvGeometry, d: &Data, per_channel: bool, p: Requantize<'_>, fuse_expected: bool) {
    let q = qparams(d, per_channel);
    let want = reference::conv_u8s8(g, &d.input, d.za, &d.weights, q, p).expect("oracle");
    let [od, oh, ow] = g.output().expect("geometry");
    let pooled = (oh >= 2 && ow >= 2).then(|| {
        let planes = g.batch * od;
        let mut v = Vec::new();
        let plane = oh * ow * g.out_channels;
        for pl in 0..planes {
            let x = &want[pl * plane..(pl + 1) * plane];
            let (ph, pw, o) = (oh / 2, ow / 2, g.out_channels);
            for y in 0..ph {
                for xx in 0..pw {
                    for c in 0..o {
                        let at = |yy: usize, xc: usize| x[(yy * ow + xc) * o + c];
                        v.push(
                            at(2 * y, 2 * xx)
                                .max(at(2 * y, 2 * xx + 1))
                                .max(at(2 * y + 1, 2 * xx))
                                .max(at(2 * y + 1, 2 * xx + 1)),
                        );
                    }
                }
            }
        }
        v
    });
    for kind in KernelKind::all_runnable() {
        if kind.saturates_pairs() {
            continue;
        }
        let w = PackedConvWeights::pack(&d.weights, g, q, kind).expect("pack");
        assert_eq!(w.path(), "small", "{g:?}");
        let mut got = vec![0u8; want.len()];
        conv::conv_u8s8(g, &d.input, d.za, &w, p, &mut got).expect("conv");
        assert_eq!(got, want, "kind {kind} geometry {g:?}");
        if let Some(pooled) = &pooled {
            let mut got = vec![0u8; pooled.len()];
            conv::conv_u8s8_max_pool2(g, &d.input, d.za, &w, p, &mut got).expect("pooled");
            assert_eq!(&got, pooled, "pooled, kind {kind} geometry {g:?}");
            let fuses = conv::max_pool2_fuses(g, d.za, &w, p);
            let vnni = kind.has_avx512_vnni()
                && cfg!(target_arch = "x86_64")
                && vbmi()
                && g.stride[2] == 1
                && g.dilation[2] <= 16;
            assert_eq!(fuses, vnni && fuse_expected, "kind {kind} geometry {g:?}");
        }
    }
}

fn vbmi() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512vbmi")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)))]

    #[test]
    fn small_conv_and_pool_match_the_oracle(
        c in 1usize..=4,
        o in 1usize..=8,
        kh in 1usize..=5,
        kw in 2usize..=6,
        stride in 1usize..=2,
        sw in 1usize..=2,
        pad in 0usize..=2,
        dil in 1usize..=2,
        h in 6usize..=12,
        w in 6usize..=45,
        batch in 1usize..=3,
        seed in any::<u64>(),
        per_channel in any::<bool>(),
        symmetric in any::<bool>(),
        act in 0u8..3,
    ) {
        let g = ConvGeometry::new(batch, c, o, 1, &[h, w], &[kh, kw])
            .and_then(|g| g.with_stride(&[stride, sw]))
            .and_then(|g| g.with_padding(&[pad.min(kh / 2), pad.min(kw / 2)]))
            .and_then(|g| g.with_dilation(&[dil, dil]))
            .expect("valid geometry");
        prop_assume!(g.output().is_ok() && g.k() <= 128);
        let d = data(&g, seed, symmetric);
        let p = params(&g, &d, 0.05, act);
        check(&g, &d, per_channel, p, true);
    }
}

/// LeNet's first layer (1×32×32 → 6×28×28, 5×5) and its pool, batch 1 and 3.
#[test]
fn lenet_conv1_and_pool1() {
    for (batch, symmetric) in [(1, true), (3, true), (2, false)] {
        let g = ConvGeometry::new(batch, 1, 6, 1, &[32, 32], &[5, 5]).expect("geometry");
        let d = data(&g, 7 + batch as u64, symmetric);
        for act in 0..3 {
            check(&g, &d, true, params(&g, &d, 0.05, act), true);
        }
    }
}

/// Output scales so small that requantized values leave the i32 range (`cvtps2dq` gives
/// `i32::MIN`, so requantization is not monotone): the pooled call must not fuse, and still
/// equals the oracle.
#[test]
fn extreme_scales_do_not_fuse() {
    let g = ConvGeometry::new(2, 1, 6, 1, &[12, 20], &[5, 5]).expect("geometry");
    for seed in 0..4 {
        let d = data(&g, seed, seed % 2 == 0);
        for act in 0..3 {
            check(&g, &d, true, params(&g, &d, 1e-12, act), false);
        }
    }
}
