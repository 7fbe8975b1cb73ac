//! Zero-size dimensions through the kernels (issue #9): GEMM with M, N or K = 0, convolution
//! with batch 0, pooling with empty batches, channels or planes, and quantize / dequantize of
//! empty slices. Each gives a result equal to the scalar oracle's (an empty output, left
//! untouched) or a typed error, the same for every runnable kernel family — never a panic.

use qkernels::GemmError;
use qkernels::conv::{self, ConvError, ConvGeometry, PackedConvWeights};
use qkernels::eltwise::QParams;
use qkernels::gemm::reference::{self, Accumulation};
use qkernels::gemm::{
    self, Activation, Activations, KernelKind, Output, PackedWeights, Requantize, WeightQParams,
};
use qkernels::pool::{self, Pool2d};
use qkernels::quant;

const W_Q: WeightQParams<'static> = WeightQParams::PerTensor {
    scale: 0.5,
    zero_point: 1,
};

fn requantize() -> Requantize<'static> {
    Requantize {
        act_scale: 0.1,
        out_scale: 0.2,
        out_zero_point: 9,
        bias: None,
        activation: Activation::None,
    }
}

#[test]
fn gemm_with_no_rows_runs_and_writes_nothing() {
    let (n, k) = (5, 7);
    let w: Vec<i8> = (0..n * k).map(|i| i as i8).collect();
    for kind in KernelKind::all_runnable() {
        let packed = PackedWeights::pack(&w, n, k, W_Q, kind).expect("pack");
        let acts = Activations {
            data: &[],
            rows: 0,
            row_stride: k,
            zero_point: 3,
        };
        let mut out: [i32; 0] = [];
        let ran = gemm::gemm_u8s8(
            acts,
            &packed,
            Output::I32 {
                out: &mut out,
                ldc: n,
            },
        );
        assert_eq!(ran, Ok(kind));
        // The same problem with a non-empty output buffer: nothing may be written.
        let mut spare = [7u8; 4];
        let ran = gemm::gemm_u8s8(
            acts,
            &packed,
            Output::QUInt8 {
                params: requantize(),
                out: &mut spare,
                ldc: n,
            },
        );
        assert_eq!(ran, Ok(kind));
        assert_eq!(spare, [7; 4], "{kind}");
    }
    let mut out: [i32; 0] = [];
    let oracle = reference::gemm_u8s8(
        &[],
        0,
        k,
        3,
        &w,
        n,
        k,
        W_Q,
        Accumulation::Exact,
        Output::I32 {
            out: &mut out,
            ldc: n,
        },
    );
    assert_eq!(oracle, Ok(()));
}

#[test]
fn gemm_packing_refuses_no_columns_or_no_depth() {
    for kind in KernelKind::all_runnable() {
        for (n, k, what) in [(0, 7, "n"), (5, 0, "k"), (0, 0, "n")] {
            let w = vec![1i8; n * k];
            let err = PackedWeights::pack(&w, n, k, W_Q, kind).unwrap_err();
            match err {
                GemmError::EmptyDimension { what: got } => {
                    assert!(got.starts_with(what), "{kind} n={n} k={k}: {got}")
                }
                other => panic!("{kind} n={n} k={k}: {other:?}"),
            }
        }
    }
}

/// Convolution geometry requires a positive batch, channel count and plane (PyTorch's
/// batch-0 convolution is handled a layer up, by the modules): the kernels, packing and the
/// oracle all refuse with the same typed `Geometry` error naming the value.
#[test]
fn conv_with_an_empty_dimension_is_a_geometry_error() {
    for (batch, cin, cout, spatial, what) in [
        (0usize, 4usize, 4usize, 5usize, "batch"),
        (1, 0, 4, 5, "in_channels"),
        (1, 4, 0, 5, "out_channels"),
        (1, 4, 4, 0, "input size"),
    ] {
        let want = ConvError::Geometry { what, value: 0 };
        let g = ConvGeometry::new(batch, cin, cout, 1, &[spatial, spatial], &[1, 1])
            .expect("constructor stores the values");
        assert_eq!(g.output(), Err(want.clone()));
        assert_eq!(g.output_len(), Err(want.clone()));
        let weights = vec![1i8; cout * cin];
        let input = vec![0u8; g.input_len()];
        assert_eq!(
            conv::reference::conv_u8s8(&g, &input, 0, &weights, W_Q, requantize()),
            Err(want.clone())
        );
        for kind in KernelKind::all_runnable() {
            assert_eq!(
                PackedConvWeights::pack(&weights, &g, W_Q, kind).map(|p| p.kind()),
                Err(want.clone()),
                "{kind} {what}"
            );
        }
        // Weights packed for a valid geometry, run on the empty one.
        let ok = ConvGeometry::new(1, 4, 4, 1, &[5, 5], &[1, 1]).expect("geometry");
        let packed = PackedConvWeights::pack_best(&[1; 16], &ok, W_Q).expect("pack");
        let mut out = [7u8; 4];
        let got = conv::conv_u8s8(&g, &input, 0, &packed, requantize(), &mut out);
        assert_eq!(got, Err(want.clone()), "{what}");
        assert_eq!(out, [7; 4]);
    }
}

#[test]
fn pooling_empty_batches_and_channels_writes_nothing() {
    let q = QParams {
        scale: 0.1,
        zero_point: 4,
    };
    for input in [[0usize, 4, 4, 3], [2, 4, 4, 0]] {
        let p = Pool2d {
            input,
            kernel: [2, 2],
            stride: [2, 2],
            padding: [0, 0],
            dilation: [1, 1],
            ceil_mode: false,
        };
        assert_eq!(p.output(), Ok([2, 2]));
        let mut out: [u8; 0] = [];
        assert_eq!(pool::max_pool2d(&[], &p, &mut out), Ok(()), "{input:?}");
        assert_eq!(
            pool::avg_pool2d(&[], q, &p, true, None, q, &mut out),
            Ok(()),
            "{input:?}"
        );
        assert_eq!(
            pool::adaptive_avg_pool2d(&[], q, input, [1, 1], q, &mut out),
            Ok(()),
            "{input:?}"
        );
    }
}

#[test]
fn pooling_an_empty_plane_is_a_typed_error() {
    let q = QParams {
        scale: 0.1,
        zero_point: 4,
    };
    let p = Pool2d {
        input: [1, 0, 4, 3],
        kernel: [1, 1],
        stride: [1, 1],
        padding: [0, 0],
        dilation: [1, 1],
        ceil_mode: false,
    };
    let mut out: [u8; 0] = [];
    for got in [
        pool::max_pool2d(&[], &p, &mut out),
        pool::avg_pool2d(&[], q, &p, true, None, q, &mut out),
        pool::adaptive_avg_pool2d(&[], q, [1, 0, 4, 3], [1, 1], q, &mut out),
        pool::adaptive_avg_pool2d(&[0; 12], q, [1, 1, 4, 3], [0, 1], q, &mut out),
    ] {
        assert!(
            matches!(got, Err(GemmError::EmptyDimension { .. })),
            "{got:?}"
        );
    }
}

#[test]
fn quantize_and_dequantize_empty_slices() {
    let (mut u, mut i, mut f): ([u8; 0], [i8; 0], [f32; 0]) = ([], [], []);
    assert_eq!(quant::quantize_u8(&[], 0.5, 3, &mut u), Ok(()));
    assert_eq!(quant::quantize_i8(&[], 0.5, -3, &mut i), Ok(()));
    assert_eq!(quant::dequantize_u8(&[], 0.5, 3, &mut f), Ok(()));
    assert_eq!(quant::dequantize_i8(&[], 0.5, -3, &mut f), Ok(()));
    // bad qparams are still refused on empty data
    assert!(quant::quantize_u8(&[], -1.0, 3, &mut u).is_err());
    assert!(quant::quantize_u8(&[], 0.5, 256, &mut u).is_err());
}
