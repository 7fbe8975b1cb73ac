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
}
