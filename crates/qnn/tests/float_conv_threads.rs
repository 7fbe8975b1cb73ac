//! The float convolution layers' forward and backward on rayon pools of 1, 2 and 3 threads
//! give the same bits (direct, Winograd, depthwise, 1 × 1 GEMM one image and batched, grouped,
//! transposed), on shapes large enough to be split; so does Linear's forward.

use qnn::float::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig, Linear};
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::{Module, Value};

fn on<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool")
        .install(f)
}

fn input(n: usize, c: usize, hw: usize) -> Tensor<f32> {
    Tensor::from_fn(&[n, c, hw, hw], |i| ((i * 31 % 97) as f32 - 48.0) / 24.0)
}

fn same_bits(what: &str, run: impl Fn() -> Tensor<f32> + Sync) {
    let one = on(1, &run);
    for threads in [2, 3] {
        let many = on(threads, &run);
        assert_eq!(one.shape(), many.shape(), "{what}");
        for (i, (a, e)) in many.data().iter().zip(one.data()).enumerate() {
            assert_eq!(
                a.to_bits(),
                e.to_bits(),
                "{what}, {threads} threads: output {i}"
            );
        }
    }
}

fn check_conv(config: Conv2dConfig, n: usize, hw: usize) {
    let conv = Conv2d::new(config, &mut Rng::new(5)).unwrap();
    let x = input(n, config.in_channels, hw);
    same_bits(&format!("{config:?} n {n} {hw}x{hw}"), || {
        conv.apply(&x).unwrap()
    });
}

#[test]
fn conv2d_forward_is_the_same_on_any_pool() {
    // Winograd (3 x 3, >= 16 channels), one image then several
    check_conv(Conv2dConfig::new(32, 45, 3).padding(1), 1, 31);
    check_conv(Conv2dConfig::new(16, 24, 3).padding(1), 5, 17);
    // direct: 5 x 5, stride 2
    check_conv(Conv2dConfig::new(6, 22, 5).stride(2).padding(2), 3, 47);
    // depthwise
    check_conv(Conv2dConfig::new(40, 40, 3).padding(1).groups(40), 1, 57);
    // 1 x 1 plain GEMM: one image, and small planes batched into one GEMM
    check_conv(Conv2dConfig::new(128, 300, 1), 1, 19);
    check_conv(Conv2dConfig::new(64, 130, 1), 9, 9);
    // grouped
    check_conv(Conv2dConfig::new(64, 96, 3).padding(1).groups(4), 2, 29);
}

#[test]
fn conv_transpose2d_forward_is_the_same_on_any_pool() {
    let mut config = ConvTranspose2dConfig::new(64, 48, 4);
    config.stride = [2, 2];
    config.padding = [1, 1];
    let conv = ConvTranspose2d::new(config, &mut Rng::new(6)).unwrap();
    let x = input(2, 64, 23);
    same_bits("conv transpose", || conv.apply(&x).unwrap());
}

/// The input gradient, then every parameter gradient, of one forward + backward of `m` on `x`.
fn gradients(m: &mut dyn Module, x: &Tensor<f32>) -> Tensor<f32> {
    m.zero_grad();
    let y = m
        .forward(&Value::F32(x.clone()))
        .unwrap()
        .into_f32("y")
        .unwrap();
    let gy = Tensor::from_fn(y.shape(), |i| ((i * 17 % 89) as f32 - 44.0) / 32.0);
    let dx = m.backward(&Value::F32(gy)).unwrap().into_f32("dx").unwrap();
    let mut all = dx.data().to_vec();
    m.visit_params(&mut |_, p| all.extend_from_slice(p.grad.data()));
    Tensor::new(&[all.len()], all).unwrap()
}

#[test]
fn backward_is_the_same_on_any_pool() {
    let cases = [
        (Conv2dConfig::new(32, 40, 3).padding(1), 2, 23),
        (Conv2dConfig::new(6, 16, 5), 20, 14),
        (Conv2dConfig::new(64, 96, 1), 1, 21),
        (Conv2dConfig::new(48, 48, 3).padding(1).groups(48), 2, 27),
        (Conv2dConfig::new(32, 64, 3).padding(1).groups(4), 2, 19),
    ];
    for (config, n, hw) in cases {
        let x = input(n, config.in_channels, hw);
        let conv = std::sync::Mutex::new(Conv2d::new(config, &mut Rng::new(7)).unwrap());
        same_bits(&format!("backward {config:?} n {n}"), || {
            gradients(&mut *conv.lock().unwrap(), &x)
        });
    }
    let mut config = ConvTranspose2dConfig::new(64, 48, 4);
    config.stride = [2, 2];
    let x = input(2, 64, 17);
    let conv = std::sync::Mutex::new(ConvTranspose2d::new(config, &mut Rng::new(8)).unwrap());
    same_bits("conv transpose backward", || {
        gradients(&mut *conv.lock().unwrap(), &x)
    });
}

#[test]
fn linear_forward_is_the_same_on_any_pool() {
    // 257 rows: bands of rows with a short last band; 300 outputs (> 64, so it is split);
    // with and without bias.
    for bias in [true, false] {
        let lin = Linear::new(512, 300, bias, &mut Rng::new(6));
        let x = Tensor::from_fn(&[257, 512], |i| ((i * 37 % 101) as f32 - 50.0) / 25.0);
        same_bits(&format!("Linear 512 -> 300, bias {bias}"), || {
            lin.apply(&x).unwrap()
        });
    }
}
