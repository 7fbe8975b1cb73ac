//! A depthwise Conv2d (`groups == in == out channels`) runs the direct depthwise kernel; its
//! forward must equal the same convolution written as a dense Conv2d (`groups = 1`) with a
//! block-diagonal weight, which runs the im2col + GEMM path.

use qnn::float::{Conv2d, Conv2dConfig};
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::{Module, Value};

/// The dense twin of a depthwise layer: weight `[c, c, kh, kw]`, zero off the diagonal.
fn dense_twin(dw: &Conv2d) -> Conv2d {
    let cfg = *dw.config();
    let c = cfg.in_channels;
    let [kh, kw] = cfg.kernel_size;
    let taps = kh * kw;
    let w = dw.weight.value.data();
    let dense = Tensor::from_fn(&[c, c, kh, kw], |i| {
        let (o, rest) = (i / (c * taps), i % (c * taps));
        let (ci, t) = (rest / taps, rest % taps);
        if o == ci { w[o * taps + t] } else { 0.0 }
    });
    let bias = dw.bias.as_ref().map(|b| b.value.clone());
    Conv2d::from_tensors(Conv2dConfig { groups: 1, ..cfg }, dense, bias).unwrap()
}

fn check(cfg: Conv2dConfig, n: usize, [h, w]: [usize; 2], halve: bool) {
    let mut rng = Rng::new(7);
    let mut conv = Conv2d::new(cfg, &mut rng).unwrap();
    let mut twin = dense_twin(&conv);
    if halve {
        conv.half().unwrap();
        twin.half().unwrap();
    }
    let c = cfg.in_channels;
    let x = Tensor::from_fn(&[n, c, h, w], |i| ((i * 37 % 101) as f32 - 50.0) / 25.0);
    let got = conv.apply(&x).unwrap();
    let want = twin.apply(&x).unwrap();
    assert_eq!(got.shape(), want.shape());
    for (i, (a, e)) in got.data().iter().zip(want.data()).enumerate() {
        assert!(
            (a - e).abs() <= 1e-5 * (1.0 + e.abs()),
            "{cfg:?} n {n} {h}x{w} half {halve}: output {i}: {a} vs {e}"
        );
    }
    // forward (which also saves the input) gives the same values, twice in a row
    for _ in 0..2 {
        let Value::F32(y) = conv.forward(&Value::F32(x.clone())).unwrap() else {
            panic!("f32 output")
        };
        assert_eq!(y.data(), got.data());
    }
}

#[test]
fn depthwise_equals_the_dense_block_diagonal_convolution() {
    check(
        Conv2dConfig::new(8, 8, 3).padding(1).groups(8),
        2,
        [17, 19],
        false,
    );
    check(
        Conv2dConfig::new(6, 6, 3).padding(1).stride(2).groups(6),
        1,
        [16, 13],
        false,
    );
    check(
        Conv2dConfig::new(4, 4, 5).padding(2).groups(4).bias(false),
        2,
        [11, 28],
        false,
    );
    check(
        Conv2dConfig::new(3, 3, 5).padding(2).stride(2).groups(3),
        3,
        [9, 9],
        false,
    );
    check(
        Conv2dConfig::new(5, 5, 3).padding(2).dilation(2).groups(5),
        1,
        [10, 12],
        false,
    );
    check(Conv2dConfig::new(1, 1, 3), 2, [5, 6], false);
}

#[test]
fn halved_depthwise_equals_the_halved_dense_convolution() {
    check(
        Conv2dConfig::new(8, 8, 3).padding(1).groups(8),
        2,
        [14, 14],
        true,
    );
    check(
        Conv2dConfig::new(4, 4, 5).padding(2).stride(2).groups(4),
        1,
        [15, 9],
        true,
    );
}
