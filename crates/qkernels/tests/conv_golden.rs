//! PyTorch goldens (torch 2.15.0, fbgemm engine, `tools/golden/gen_conv.py`):
//! `quantized::conv1d/conv2d/conv3d(_relu)` must be reproduced bit for bit by every runnable
//! kernel family (the exact ones; the saturating AVX2 family is opt-in and skipped), and
//! by the scalar oracle.

mod common;

use common::{parse, yes};

use qkernels::conv::{self, ConvGeometry, PackedConvWeights, reference};
use qkernels::gemm::{Activation, KernelKind, Requantize, WeightQParams};

fn check_file(text: &str, expected_cases: usize) {
    let cases = parse(text);
    assert_eq!(cases.len(), expected_cases);
    let mut runs = 0;
    for c in &cases {
        let g: Vec<usize> = c.i64s("geom").iter().map(|&v| v as usize).collect();
        let geometry = ConvGeometry {
            batch: g[0],
            in_channels: g[1],
            out_channels: g[2],
            groups: g[3],
            input: [g[4], g[5], g[6]],
            kernel: [g[7], g[8], g[9]],
            stride: [g[10], g[11], g[12]],
            padding: [g[13], g[14], g[15]],
            dilation: [g[16], g[17], g[18]],
        };
        let w: Vec<i8> = c.u8s("w").iter().map(|&b| b as i8).collect();
        // PyTorch stores the weight scales as float after prepack.
        let scales: Vec<f32> = c.f64s("w_scales").iter().map(|&s| s as f32).collect();
        let zps: Vec<i32> = c.i64s("w_zps").iter().map(|&z| z as i32).collect();
        let q = WeightQParams::from_slices(yes(c, "per_channel"), &scales, &zps)
            .expect("weight qparams");
        let bias = c.f32s("bias");
        let params = Requantize {
            act_scale: c.f64s("x_scale")[0] as f32,
            out_scale: c.f64s("out_scale")[0] as f32,
            out_zero_point: c.i64s("out_zp")[0] as i32,
            bias: yes(c, "has_bias").then_some(bias),
            activation: if yes(c, "relu") {
                Activation::Relu
            } else {
                Activation::None
            },
        };
        let x = c.u8s("x_q");
        let za = c.i64s("x_zp")[0] as i32;
        let want = c.u8s("y");
        let oracle = reference::conv_u8s8(&geometry, x, za, &w, q, params).expect("oracle");
        assert_eq!(&oracle[..], want, "oracle, case {}", c.name);
        for kind in KernelKind::all_runnable() {
            if kind.saturates_pairs() {
                continue;
            }
            let packed = PackedConvWeights::pack(&w, &geometry, q, kind).expect("pack");
            let mut got = vec![0u8; want.len()];
            conv::conv_u8s8(&geometry, x, za, &packed, params, &mut got).expect("conv");
            let diff = got.iter().zip(want).filter(|(a, b)| a != b).count();
            assert_eq!(
                diff, 0,
                "kind {kind}, case {}: {diff} outputs differ",
                c.name
            );
            runs += 1;
        }
        // the case is informative: outputs are not all one value
        assert!(want.iter().any(|&v| v != want[0]), "case {}", c.name);
    }
    assert!(runs >= cases.len());
}

#[test]
fn conv2d_goldens_are_bit_exact() {
    check_file(include_str!("data/conv/conv2d.golden"), 57);
}

#[test]
fn conv1d_goldens_are_bit_exact() {
    check_file(include_str!("data/conv/conv1d.golden"), 12);
}

#[test]
fn conv3d_goldens_are_bit_exact() {
    check_file(include_str!("data/conv/conv3d.golden"), 15);
}
