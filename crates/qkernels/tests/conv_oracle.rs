//! Every runnable kernel family against the scalar conv oracle, over random geometries
//! (1-d, 2-d and 3-d; strides, padding, dilation, groups, depthwise, pointwise), per-tensor
//! and per-channel (asymmetric) weights, with and without bias, ReLU and ReLU6.

use proptest::prelude::*;
use qkernels::conv::{self, ConvError, ConvGeometry, PackedConvWeights, reference};
use qkernels::gemm::{Activation, KernelKind, Requantize, WeightQParams};

#[derive(Debug, Clone)]
struct Case {
    g: ConvGeometry,
    input: Vec<u8>,
    za: i32,
    weights: Vec<i8>,
    per_channel: bool,
    scales: Vec<f32>,
    zps: Vec<i32>,
    bias: Option<Vec<f32>>,
    activation: Activation,
    out_zp: i32,
}

fn geometry() -> impl Strategy<Value = ConvGeometry> {
    (
        1usize..=3, // spatial dims
        1usize..=2, // batch
        0usize..=4, // group style
        1usize..=5, // channels per group
        1usize..=5, // out per group
        1usize..=3, // kernel
        1usize..=2, // stride
        0usize..=2, // padding
        1usize..=2, // dilation
        3usize..=7, // spatial size
    )
        .prop_map(|(dims, batch, style, cg, og, k, s, p, d, size)| {
            let (groups, cg, og) = match style {
                0 => (1, cg + 1, og + 2),
                1 => (3, cg, og),
                2 => (cg + 2, 1, 1),                    // depthwise
                4 => (8 * (cg % 2 + 1), 1, og % 2 + 1), // fbgemm depthwise fast path
                _ => (1, cg * 4 + 3, og * 3 + 1),
            };
            let (k, p, d) = match style {
                3 => (1, 0, d),
                4 => (2 * (k % 2) + 3, k % 2 + 1, 1),
                _ => (k, p, d),
            };
            let s = if style == 3 && dims == 2 { 1 } else { s };
            let size = size.max(d * (k - 1) + 1);
            let spatial: Vec<usize> = (0..dims).map(|i| size + (i % 2)).collect();
            let kernel = vec![k; dims];
            ConvGeometry::new(batch, groups * cg, groups * og, groups, &spatial, &kernel)
                .and_then(|g| g.with_stride(&vec![s; dims]))
                .and_then(|g| g.with_padding(&vec![p; dims]))
                .and_then(|g| g.with_dilation(&vec![d; dims]))
                .expect("valid geometry")
        })
}

fn case() -> impl Strategy<Value = Case> {
    (
        geometry(),
        any::<u64>(),
        any::<bool>(),
        any::<bool>(),
        0u8..3,
    )
        .prop_map(|(g, seed, per_channel, has_bias, act)| {
            let mut s = seed | 1;
            let mut next = move || {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s
            };
            let input: Vec<u8> = (0..g.input_len()).map(|_| next() as u8).collect();
            let n_w = g.out_channels * g.group_in() * g.taps();
            let weights: Vec<i8> = (0..n_w).map(|_| next() as i8).collect();
            let o = g.out_channels;
            let scales: Vec<f32> = (0..o)
                .map(|_| 0.001 + (next() % 1000) as f32 * 1e-5)
                .collect();
            let zps: Vec<i32> = (0..o).map(|_| (next() % 21) as i32 - 10).collect();
            let bias = has_bias.then(|| {
                (0..o)
                    .map(|_| ((next() % 2001) as f32 - 1000.0) * 0.01)
                    .collect()
            });
            let activation = [Activation::None, Activation::Relu, Activation::Relu6][act as usize];
            Case {
                g,
                input,
                za: (next() % 256) as i32,
                weights,
                per_channel,
                scales,
                zps,
                bias,
                activation,
                out_zp: (next() % 256) as i32,
            }
        })
}

fn qparams(c: &Case) -> WeightQParams<'_> {
    WeightQParams::from_slices(c.per_channel, &c.scales, &c.zps).expect("weight qparams")
}

fn params(c: &Case) -> Requantize<'_> {
    Requantize {
        act_scale: 0.02,
        out_scale: 0.05 * (c.g.k() as f32).sqrt(),
        out_zero_point: c.out_zp,
        bias: c.bias.as_deref(),
        activation: c.activation,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96)))]

    #[test]
    fn every_family_matches_the_oracle(c in case()) {
        let want = reference::conv_u8s8(&c.g, &c.input, c.za, &c.weights, qparams(&c), params(&c))
            .expect("oracle");
        let raw = reference::conv_raw(&c.g, &c.input, c.za, &c.weights,
            &if c.per_channel { c.zps.clone() } else { vec![c.zps[0]; c.g.out_channels] })
            .expect("raw");
        // the outputs must not be all clamped, or the comparison proves little
        prop_assert!(raw.iter().any(|&r| r != 0) || c.g.k() < 3);
        for kind in KernelKind::all_runnable() {
            if kind.saturates_pairs() {
                continue;
            }
            let w = PackedConvWeights::pack(&c.weights, &c.g, qparams(&c), kind).expect("pack");
            let mut got = vec![0u8; want.len()];
            let ran = conv::conv_u8s8(&c.g, &c.input, c.za, &w, params(&c), &mut got).expect("conv");
            prop_assert_eq!(ran, kind);
            prop_assert_eq!(&got, &want, "kind {} geometry {:?}", kind, c.g);
        }
    }
}

#[test]
fn geometry_errors_name_the_value() {
    let e = ConvGeometry::new(1, 3, 4, 2, &[5, 5], &[3, 3])
        .unwrap()
        .output()
        .unwrap_err();
    assert_eq!(
        e,
        ConvError::Groups {
            what: "in_channels",
            channels: 3,
            groups: 2
        }
    );
    let e = ConvGeometry::new(1, 2, 2, 1, &[2, 2], &[3, 3])
        .unwrap()
        .output()
        .unwrap_err();
    assert_eq!(
        e,
        ConvError::KernelTooLarge {
            dim: 1,
            extent: 3,
            padded: 2
        }
    );
    let g = ConvGeometry::new(1, 2, 2, 1, &[4, 4], &[3, 3]).unwrap();
    let w = PackedConvWeights::pack_best(
        &[1; 36],
        &g,
        WeightQParams::PerTensor {
            scale: 1.0,
            zero_point: 0,
        },
    )
    .unwrap();
    let p = Requantize {
        act_scale: 1.0,
        out_scale: 1.0,
        out_zero_point: 0,
        bias: None,
        activation: Activation::None,
    };
    let mut out = vec![0u8; 8];
    let e = conv::conv_u8s8(&g, &[0; 31], 0, &w, p, &mut out).unwrap_err();
    assert_eq!(
        e,
        ConvError::Length {
            what: "input",
            expected: 32,
            got: 31
        }
    );
    let e = conv::conv_u8s8(&g, &[0; 32], 256, &w, p, &mut out).unwrap_err();
    assert!(e.to_string().contains("256"), "{e}");
    let g2 = ConvGeometry::new(1, 2, 2, 1, &[4, 4], &[2, 2]).unwrap();
    let e = conv::conv_u8s8(&g2, &[0; 32], 0, &w, p, &mut [0u8; 18]).unwrap_err();
    assert_eq!(
        e,
        ConvError::WeightMismatch {
            what: "kernel height",
            packed: 3,
            given: 2
        }
    );
}
