//! The transposed convolution (GEMM + col2im + requantization) against its scalar oracle on
//! every runnable exact kernel family, over random geometries (strides, padding, output
//! padding, dilation, groups), asymmetric weights, with and without bias; and its errors.

use proptest::prelude::*;
use qkernels::conv::ConvError;
use qkernels::conv::transpose::{
    self, PackedTransposeWeights, TransposeGeometry, conv_transpose_reference,
};
use qkernels::gemm::{Activation, KernelKind, Requantize};

#[derive(Debug, Clone)]
struct Case {
    g: TransposeGeometry,
    input: Vec<u8>,
    za: i32,
    weights: Vec<i8>,
    zw: i32,
    bias: Option<Vec<f32>>,
    out_zp: i32,
}

fn geometry() -> impl Strategy<Value = TransposeGeometry> {
    (
        (1usize..=2, 1usize..=3, 1usize..=4, 1usize..=4),
        (1usize..=4, 1usize..=3, 1usize..=3),
        (1usize..=3, 0usize..=2, 0usize..=2, 1usize..=2),
        (2usize..=5, 1usize..=5),
    )
        .prop_map(
            |((batch, groups, cg, og), (kh, kw, _), (s, p, op, d), (h, w))| {
                let op = op.min(s.max(d) - 1);
                let mut g = TransposeGeometry::new(
                    batch,
                    groups * cg,
                    groups * og,
                    groups,
                    [h, w],
                    [kh, kw],
                )
                .with_stride([s, (s % 2) + 1])
                .with_dilation([d, 1])
                .with_output_padding([op, 0]);
                let p = [p, p.min(1)];
                g = g.with_padding(p);
                if g.output().is_err() {
                    g = g.with_padding([0, 0]);
                }
                g
            },
        )
}

fn case() -> impl Strategy<Value = Case> {
    geometry().prop_flat_map(|g| {
        let n_in = g.input_len();
        let n_w = g.weight_len();
        (
            proptest::collection::vec(any::<u8>(), n_in),
            0i32..=255,
            proptest::collection::vec(-127i8..=127, n_w),
            -5i32..=5,
            proptest::option::of(proptest::collection::vec(-50.0f32..50.0, g.out_channels)),
            0i32..=255,
        )
            .prop_map(move |(input, za, weights, zw, bias, out_zp)| Case {
                g,
                input,
                za,
                weights,
                zw,
                bias,
                out_zp,
            })
    })
}

fn params(c: &Case) -> Requantize<'_> {
    Requantize {
        act_scale: 0.02,
        out_scale: 0.4
            * ((c.g.in_channels / c.g.groups * c.g.kernel[0] * c.g.kernel[1]) as f32).sqrt(),
        out_zero_point: c.out_zp,
        bias: c.bias.as_deref(),
        activation: Activation::None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)))]

    #[test]
    fn every_family_matches_the_oracle(c in case()) {
        let want = conv_transpose_reference(&c.g, &c.input, c.za, &c.weights, 0.05, c.zw, params(&c))
            .expect("oracle");
        // skip the rare all-clamped outputs: they would compare nothing but the clamp
        prop_assume!(want.iter().any(|&v| v != 0 && v != 255));
        for kind in KernelKind::all_runnable() {
            if kind.saturates_pairs() {
                continue;
            }
            let w = PackedTransposeWeights::pack(&c.weights, &c.g, 0.05, c.zw, kind).expect("pack");
            let mut got = vec![0u8; want.len()];
            let ran = transpose::conv_transpose_u8s8(&c.g, &c.input, c.za, &w, params(&c), &mut got)
                .expect("conv transpose");
            prop_assert_eq!(ran, kind);
            prop_assert_eq!(&got, &want, "kind {} geometry {:?}", kind, c.g);
        }
    }
}

#[test]
fn a_known_value_by_hand() {
    // 1 channel 1x2 input, kernel 1x3 of [1, 2, 3], stride 2: output width 5,
    // [x0, 2x0, 3x0 + x1, 2x1, 3x1] with x = q - 10.
    let g = TransposeGeometry::new(1, 1, 1, 1, [1, 2], [1, 3]).with_stride([1, 2]);
    assert_eq!(g.output().unwrap(), [1, 5]);
    let w = PackedTransposeWeights::pack_best(&[1, 2, 3], &g, 1.0, 0).unwrap();
    let p = Requantize {
        act_scale: 1.0,
        out_scale: 1.0,
        out_zero_point: 100,
        bias: Some(&[0.5]),
        activation: Activation::None,
    };
    let mut y = [0u8; 5];
    transpose::conv_transpose_u8s8(&g, &[12, 7], 10, &w, p, &mut y).unwrap();
    // raw [2, 4, 6 - 3, -6, -9] + 0.5 rounds half to even
    assert_eq!(y, [102, 104, 104, 94, 92]);
}

#[test]
fn errors_name_the_value() {
    let g = TransposeGeometry::new(1, 3, 4, 2, [3, 3], [2, 2]);
    assert_eq!(
        g.output().unwrap_err(),
        ConvError::Groups {
            what: "in_channels",
            channels: 3,
            groups: 2
        }
    );
    let g = TransposeGeometry::new(1, 2, 2, 1, [3, 3], [2, 2]).with_output_padding([1, 0]);
    assert!(matches!(
        g.output(),
        Err(ConvError::Geometry { value: 1, .. })
    ));
    let g = TransposeGeometry::new(1, 1, 1, 1, [1, 1], [1, 1]).with_padding([1, 0]);
    assert!(matches!(
        g.output(),
        Err(ConvError::Geometry { value: 1, .. })
    ));

    let g = TransposeGeometry::new(1, 2, 2, 1, [3, 3], [2, 2]);
    assert!(matches!(
        PackedTransposeWeights::pack_best(&[0; 15], &g, 1.0, 0),
        Err(ConvError::Length {
            what: "weight",
            expected: 16,
            got: 15
        })
    ));
    let w = PackedTransposeWeights::pack_best(&[1; 16], &g, 1.0, 0).unwrap();
    let p = Requantize {
        act_scale: 1.0,
        out_scale: 1.0,
        out_zero_point: 0,
        bias: None,
        activation: Activation::None,
    };
    let mut y = vec![0u8; g.output_len().unwrap()];
    assert!(matches!(
        transpose::conv_transpose_u8s8(&g, &[0; 17], 0, &w, p, &mut y),
        Err(ConvError::Length {
            what: "input",
            expected: 18,
            got: 17
        })
    ));
    assert!(transpose::conv_transpose_u8s8(&g, &[0; 18], 256, &w, p, &mut y).is_err());
    let relu = Requantize {
        activation: Activation::Relu,
        ..p
    };
    assert!(transpose::conv_transpose_u8s8(&g, &[0; 18], 0, &w, relu, &mut y).is_err());
    let other = TransposeGeometry::new(1, 2, 2, 1, [3, 3], [3, 2]);
    assert!(matches!(
        transpose::conv_transpose_u8s8(
            &other,
            &[0; 18],
            0,
            &w,
            p,
            &mut vec![0u8; other.output_len().unwrap()]
        ),
        Err(ConvError::WeightMismatch {
            what: "kernel height",
            ..
        })
    ));
}
