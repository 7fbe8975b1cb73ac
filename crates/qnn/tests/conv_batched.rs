//! Conv2d lays several images side by side in one GEMM; the result must equal running each
//! image alone (the one-image path).

use qnn::float::{Conv2d, Conv2dConfig};
use qnn::init::Rng;
use qnn::qtensor::Tensor;

fn check(config: Conv2dConfig, n: usize, hw: usize) {
    let mut rng = Rng::new(3);
    let conv = Conv2d::new(config, &mut rng).unwrap();
    let c = config.in_channels;
    let x = Tensor::from_fn(&[n, c, hw, hw], |i| ((i * 31 % 97) as f32 - 48.0) / 24.0);
    let y = conv.apply(&x).unwrap();
    let per = y.numel() / n;
    for b in 0..n {
        let img = Tensor::new(
            &[1, c, hw, hw],
            x.data()[b * c * hw * hw..(b + 1) * c * hw * hw].to_vec(),
        )
        .unwrap();
        let alone = conv.apply(&img).unwrap();
        let batched = &y.data()[b * per..(b + 1) * per];
        for (a, e) in batched.iter().zip(alone.data()) {
            assert!(
                (a - e).abs() <= 1e-5 * (1.0 + e.abs()),
                "image {b}: {a} vs {e}"
            );
        }
    }
}

#[test]
fn batched_images_equal_one_image_at_a_time() {
    check(Conv2dConfig::new(6, 16, 5), 5, 14);
    check(Conv2dConfig::new(1, 6, 5).padding(2), 3, 12);
    check(Conv2dConfig::new(2, 3, 3).stride(2).bias(false), 4, 9);
    // 1 x 1 convolutions stay on the im2col GEMM path (the others take the direct kernel)
    check(Conv2dConfig::new(4, 6, 1), 3, 7);
}

/// Backward on a batch equals the per-image backward: `dx` image by image, `dW` and `db` summed.
fn check_backward(config: Conv2dConfig, n: usize, hw: usize) {
    use qnn::{Module, Value};
    let mut rng = Rng::new(5);
    let c = config.in_channels;
    let x = Tensor::from_fn(&[n, c, hw, hw], |i| ((i * 17 % 89) as f32 - 44.0) / 22.0);
    let mut conv = Conv2d::new(config, &mut rng).unwrap();
    let mut alone = conv.clone();
    let y = conv.forward(&Value::F32(x.clone())).unwrap();
    let gy = Tensor::from_fn(y.shape().unwrap(), |i| ((i * 13 % 29) as f32 - 14.0) / 7.0);
    let dx = conv
        .backward(&Value::F32(gy.clone()))
        .unwrap()
        .into_f32("t")
        .unwrap();
    let (per_x, per_y) = (x.numel() / n, gy.numel() / n);
    let shape_x = [1, c, hw, hw];
    let mut shape_y = gy.shape().to_vec();
    shape_y[0] = 1;
    for b in 0..n {
        let xb = Tensor::new(&shape_x, x.data()[b * per_x..(b + 1) * per_x].to_vec()).unwrap();
        let gb = Tensor::new(&shape_y, gy.data()[b * per_y..(b + 1) * per_y].to_vec()).unwrap();
        alone.forward(&Value::F32(xb)).unwrap();
        let dxb = alone
            .backward(&Value::F32(gb))
            .unwrap()
            .into_f32("t")
            .unwrap();
        for (a, e) in dx.data()[b * per_x..(b + 1) * per_x].iter().zip(dxb.data()) {
            assert!(
                (a - e).abs() <= 1e-4 * (1.0 + e.abs()),
                "dx image {b}: {a} vs {e}"
            );
        }
    }
    let close = |a: &[f32], e: &[f32]| {
        a.iter()
            .zip(e)
            .all(|(a, e)| (a - e).abs() <= 1e-3 * (1.0 + e.abs()))
    };
    assert!(close(conv.weight.grad.data(), alone.weight.grad.data()));
    let (bb, ba) = (conv.bias.as_ref(), alone.bias.as_ref());
    if let (Some(bb), Some(ba)) = (bb, ba) {
        assert!(close(bb.grad.data(), ba.grad.data()));
    }
    assert!(conv.weight.grad.data().iter().any(|&v| v != 0.0));
}

#[test]
fn batched_backward_equals_one_image_at_a_time() {
    check_backward(Conv2dConfig::new(6, 16, 5), 5, 14);
    check_backward(
        Conv2dConfig::new(2, 3, 3).stride(2).padding(1).bias(false),
        4,
        9,
    );
}
