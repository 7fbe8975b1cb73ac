//! ReLU6's upper bound is the quantized 6.0, which with a tiny output scale wraps below the
//! output zero point (fbgemm's quantize adds the zero point after a clip to 2³¹, wrapping).
//! PyTorch then clamps `min(max(q, zp), six)`, so every output is that bound; every kernel
//! family and the oracle must agree, and none may panic.

use qkernels::gemm::{
    self, Activation, Activations, KernelKind, Output, PackedWeights, Requantize, WeightQParams,
    quantized_six, reference,
};

#[test]
fn relu6_bound_below_the_zero_point_is_the_output() {
    let (m, k, n) = (5usize, 19usize, 21usize);
    let a: Vec<u8> = (0..m * k).map(|i| (i * 37 % 256) as u8).collect();
    let w: Vec<i8> = (0..n * k).map(|i| (i * 53 % 256) as u8 as i8).collect();
    let q = WeightQParams::PerTensor {
        scale: 0.01,
        zero_point: 0,
    };
    let (out_scale, zp) = (1e-12f32, 200);
    let six = quantized_six(out_scale, zp);
    assert!(
        six < zp,
        "the bound must wrap below the zero point here (got {six})"
    );
    let params = Requantize {
        act_scale: 0.02,
        out_scale,
        out_zero_point: zp,
        bias: None,
        activation: Activation::Relu6,
    };
    let mut want = vec![0u8; m * n];
    reference::gemm_u8s8(
        &a,
        m,
        k,
        3,
        &w,
        n,
        k,
        q,
        reference::Accumulation::Exact,
        Output::QUInt8 {
            params,
            out: &mut want,
            ldc: n,
        },
    )
    .expect("oracle");
    assert!(want.iter().all(|&v| i32::from(v) == six), "{want:?}");
    for kind in KernelKind::all_runnable() {
        let packed = PackedWeights::pack(&w, n, k, q, kind).expect("pack");
        let mut got = vec![0u8; m * n];
        gemm::gemm_u8s8(
            Activations {
                data: &a,
                rows: m,
                row_stride: k,
                zero_point: 3,
            },
            &packed,
            Output::QUInt8 {
                params,
                out: &mut got,
                ldc: n,
            },
        )
        .expect("gemm");
        assert_eq!(got, want, "{kind}");
    }
}
