//! A quantized 2-d convolution followed by a 2×2 stride-2 max pool runs fused
//! (`Module::forward_fused`, what a graph does for LeNet's `conv → relu → pool`): the result
//! equals the two modules run one after the other, and pairs it cannot fuse answer `None`.

use qnn::qtensor::{QDType, QParams, Tensor};
use qnn::quantized::{Conv2d, ConvOptions, ConvReLU2d, MaxPool2d, Quantize};
use qnn::{Module, Value};

fn det(shape: &[usize], seed: u32) -> Tensor<f32> {
    Tensor::from_fn(shape, |i| {
        let v = (i as u32)
            .wrapping_mul(2_654_435_761)
            .wrapping_add(seed.wrapping_mul(40_503));
        ((v >> 8) % 2001) as f32 / 1000.0 - 1.0
    })
}

fn per_channel(n: usize, asymmetric: bool) -> QParams {
    QParams::PerChannel {
        scales: (0..n).map(|i| 0.005 + 0.001 * i as f64).collect(),
        zero_points: (0..n as i64)
            .map(|i| if asymmetric { i % 5 - 2 } else { 0 })
            .collect(),
        axis: 0,
    }
}

fn input(shape: &[usize]) -> Value {
    let mut q = Quantize::new(0.02, 60, QDType::QUInt8).unwrap();
    q.forward(&Value::F32(det(shape, 7))).unwrap()
}

fn pool(k: usize, s: usize, ceil_mode: bool) -> MaxPool2d {
    MaxPool2d::new([k, k], [s, s], [0, 0], [1, 1], ceil_mode).unwrap()
}

/// `conv.forward_fused(x, pool)`, checked against the two steps when it fuses.
fn fused(conv: &mut dyn Module, pool: &mut MaxPool2d, x: &Value) -> Option<Value> {
    let two_steps = pool.forward(&conv.forward(x).unwrap()).unwrap();
    let y = conv.forward_fused(x, pool)?.unwrap();
    let (Value::Quantized(a), Value::Quantized(b)) = (&y, &two_steps) else {
        panic!("quantized outputs expected");
    };
    assert_eq!(a.shape(), b.shape());
    assert_eq!(a.layout(), b.layout());
    assert_eq!(a.qparams(), b.qparams());
    assert_eq!(a.int_repr(), b.int_repr());
    Some(y)
}

#[test]
fn conv_then_two_by_two_pool_equals_the_two_steps() {
    // LeNet's conv1 (the small-C kernel, fused on AVX-512 VNNI) with symmetric and
    // asymmetric weights, odd output sizes, padding, and a GEMM-path conv (conv2's shape)
    for (c, o, hw, pad, asym, batch) in [
        (1, 6, [32, 32], 0, false, 1),
        (1, 6, [32, 32], 0, true, 3),
        (1, 6, [13, 16], 0, false, 2),
        (3, 5, [12, 17], 2, true, 1),
        (6, 16, [14, 14], 0, false, 2),
    ] {
        let w = det(&[o, c, 5, 5], 3);
        let b = det(&[o], 4);
        let opts = ConvOptions {
            padding: [pad, pad],
            ..Default::default()
        };
        let x = input(&[batch, c, hw[0], hw[1]]);
        let q = per_channel(o, asym);
        let mut relu = ConvReLU2d::from_weights(&w, Some(&b), opts, &q, 0.05, 70).unwrap();
        let mut plain = Conv2d::from_weights(&w, Some(&b), opts, &q, 0.04, 128).unwrap();
        for conv in [&mut relu as &mut dyn Module, &mut plain] {
            let y = fused(conv, &mut pool(2, 2, false), &x).expect("fuses");
            let oh = (hw[0] + 2 * pad - 4) / 2;
            assert_eq!(
                y.shape(),
                Some(&[batch, o, oh, (hw[1] + 2 * pad - 4) / 2][..])
            );
            // ceil mode fuses when the conv output is even
            let even = (hw[0] + 2 * pad - 4) % 2 == 0 && (hw[1] + 2 * pad - 4) % 2 == 0;
            assert_eq!(fused(conv, &mut pool(2, 2, true), &x).is_some(), even);
        }
    }
}

#[test]
fn other_pools_and_other_modules_do_not_fuse() {
    let w = det(&[6, 1, 5, 5], 3);
    let q = per_channel(6, false);
    let mut conv = ConvReLU2d::from_weights(&w, None, ConvOptions::default(), &q, 0.05, 0).unwrap();
    let x = input(&[1, 1, 32, 32]);
    assert!(fused(&mut conv, &mut pool(3, 2, false), &x).is_none());
    assert!(fused(&mut conv, &mut pool(2, 1, false), &x).is_none());
    let mut identity = qnn::float::Identity::new();
    assert!(conv.forward_fused(&x, &mut identity).is_none());
    // a float value is not the quantized conv's input: no fusion (forward reports the error)
    let xf = Value::F32(det(&[1, 1, 32, 32], 1));
    assert!(conv.forward_fused(&xf, &mut pool(2, 2, false)).is_none());
}
