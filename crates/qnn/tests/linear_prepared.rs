//! The static quantized Linear keeps its requantization prepared for the last activation
//! qparams it saw: the output must still follow every change of the input's qparams, of
//! the loaded output qparams, and survive clones, bit for bit with the per-call pipeline.

use qkernels::gemm::{
    self, Activation, Activations, KernelKind, Output, PackedWeights, Requantize, WeightQParams,
};
use qnn::Module;
use qnn::param::BufferMut;
use qnn::quantized::{Linear, LinearReLU};
use qtensor::{IntRepr, Layout, QDType, QParams, QTensor, Tensor};

const N: usize = 29;
const K: usize = 77;
const M: usize = 3;

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

struct Setup {
    w_int: Vec<i8>,
    scales: Vec<f64>,
    w: Tensor<f32>,
    bias: Tensor<f32>,
    qparams: QParams,
}

fn setup() -> Setup {
    let w_int: Vec<i8> = bytes(N * K, 5).into_iter().map(|b| b as i8).collect();
    let scales: Vec<f64> = (0..N).map(|i| 0.004 + 0.0003 * i as f64).collect();
    let w = Tensor::new(
        &[N, K],
        w_int
            .iter()
            .enumerate()
            .map(|(i, &v)| f32::from(v) * scales[i / K] as f32)
            .collect(),
    )
    .unwrap();
    let bias = Tensor::new(&[N], (0..N).map(|i| i as f32 * 0.2 - 3.0).collect()).unwrap();
    let qparams = QParams::PerChannel {
        scales: scales.clone(),
        zero_points: vec![0; N],
        axis: 0,
    };
    Setup {
        w_int,
        scales,
        w,
        bias,
        qparams,
    }
}

fn input(a: &[u8], scale: f32, zp: i64) -> QTensor {
    QTensor::from_u8_storage(
        a.to_vec(),
        &[M, K],
        Layout::RowMajor,
        QDType::QUInt8,
        QParams::PerTensor {
            scale: f64::from(scale),
            zero_point: zp,
        },
    )
    .unwrap()
}

/// The per-call pipeline on the scalar family.
fn want(s: &Setup, a: &[u8], in_q: (f32, i32), out_q: (f32, i32), act: Activation) -> Vec<u8> {
    let s32: Vec<f32> = s.scales.iter().map(|&v| v as f32).collect();
    let zps = vec![0i32; N];
    let q = WeightQParams::PerChannel {
        scales: &s32,
        zero_points: &zps,
    };
    let scalar = PackedWeights::pack(&s.w_int, N, K, q, KernelKind::Scalar).unwrap();
    let mut out = vec![0u8; M * N];
    let acts = Activations {
        data: a,
        rows: M,
        row_stride: K,
        zero_point: in_q.1,
    };
    let params = Requantize {
        act_scale: in_q.0,
        out_scale: out_q.0,
        out_zero_point: out_q.1,
        bias: Some(s.bias.data()),
        activation: act,
    };
    let out_ref = Output::QUInt8 {
        params,
        out: &mut out,
        ldc: N,
    };
    gemm::gemm_u8s8(acts, &scalar, out_ref).unwrap();
    out
}

fn bytes_of(q: &QTensor) -> Vec<u8> {
    let IntRepr::U8(t) = q.int_repr() else {
        panic!("quint8 output expected");
    };
    t.data().to_vec()
}

#[test]
fn the_prepared_requantization_follows_input_and_output_qparams() {
    let s = setup();
    let mut layer = Linear::from_weights(&s.w, Some(&s.bias), &s.qparams, 0.3, 90).unwrap();
    let relu = LinearReLU::from_weights(&s.w, Some(&s.bias), &s.qparams, 0.3, 90).unwrap();
    let a = bytes(M * K, 13);
    let inputs = [(0.05f32, 64i32), (0.05, 65), (0.07, 64), (0.05, 64)];
    let mut nontrivial = false;
    for (scale, zp) in inputs {
        let x = input(&a, scale, i64::from(zp));
        let expect = want(&s, &a, (scale, zp), (0.3, 90), Activation::None);
        nontrivial |= expect.iter().any(|&v| v != 0 && v != 255 && v != 90);
        assert_eq!(
            bytes_of(&layer.apply(&x).unwrap()),
            expect,
            "in {scale}, {zp}"
        );
        let clone = layer.clone();
        assert_eq!(bytes_of(&clone.apply(&x).unwrap()), expect, "clone");
        let expect_relu = want(&s, &a, (scale, zp), (0.3, 90), Activation::Relu);
        assert_eq!(bytes_of(&relu.apply(&x).unwrap()), expect_relu, "relu");
    }
    assert!(nontrivial, "the comparison must see unclamped outputs");

    // New output qparams loaded into the layer: the prepared pipeline must not survive.
    let x = input(&a, 0.05, 64);
    layer.visit_buffers_mut(&mut |name, buf| match (name, buf) {
        ("scale", BufferMut::F64s(v)) => v[0] = 0.45,
        ("zero_point", BufferMut::I64s(v)) => v[0] = 70,
        _ => {}
    });
    layer.after_load().unwrap();
    let expect = want(&s, &a, (0.05, 64), (0.45, 70), Activation::None);
    assert_eq!(bytes_of(&layer.apply(&x).unwrap()), expect, "after load");
}
