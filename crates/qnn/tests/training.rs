//! Losses, optimizers (PyTorch's update formulas by hand) and end-to-end training.

mod common;

use common::assert_all_close;
use qnn::float::*;
use qnn::init::Rng;
use qnn::loss::{CrossEntropyLoss, MseLoss};
use qnn::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use qnn::qtensor::Tensor;
use qnn::{Module, ModuleKind, Param, QnnError, Value};

/// A module that is just one parameter (for optimizer arithmetic).
struct OneParam(Param);

impl Module for OneParam {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Identity
    }
    fn forward(&mut self, input: &Value) -> qnn::Result<Value> {
        Ok(input.clone())
    }
    fn backward(&mut self, g: &Value) -> qnn::Result<Value> {
        Ok(g.clone())
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param)) {
        f("p", &self.0);
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        f("p", &mut self.0);
    }
    fn train(&mut self, _: bool) {}
    fn is_training(&self) -> bool {
        true
    }
}

fn one(value: f32) -> OneParam {
    OneParam(Param::new(Tensor::new(&[1], vec![value]).unwrap()))
}

fn set_grad(m: &mut OneParam, g: f32) {
    m.0.grad.data_mut()[0] = g;
}

fn value(m: &OneParam) -> f32 {
    m.0.value.data()[0]
}

#[test]
fn cross_entropy_value_and_gradient() {
    let logits = Tensor::new(&[2, 3], vec![1.0, 2.0, 3.0, 0.0, 0.0, 0.0]).unwrap();
    let mut ce = CrossEntropyLoss::new();
    let loss = ce.forward(&logits, &[2, 0]).unwrap();
    let want = (0.407_605_96 + 3.0f32.ln()) / 2.0;
    assert!((loss - want).abs() < 1e-6, "{loss} vs {want}");
    let g = ce.backward().unwrap();
    assert_all_close(
        g.data(),
        &[
            0.045_015_29,
            0.122_364_24,
            -0.167_379_53,
            -1.0 / 3.0,
            1.0 / 6.0,
            1.0 / 6.0,
        ],
        1e-6,
    );
    // the gradient matches central differences of the loss
    let h = 1e-2;
    for i in 0..6 {
        let mut up = logits.clone();
        up.data_mut()[i] += h;
        let mut down = logits.clone();
        down.data_mut()[i] -= h;
        let num = (CrossEntropyLoss::new().forward(&up, &[2, 0]).unwrap()
            - CrossEntropyLoss::new().forward(&down, &[2, 0]).unwrap())
            / (2.0 * h);
        assert!(
            (num - g.data()[i]).abs() < 1e-3,
            "logit {i}: {num} vs {}",
            g.data()[i]
        );
    }
    assert_eq!(
        ce.forward(&logits, &[3, 0]).unwrap_err(),
        QnnError::TargetOutOfRange {
            index: 0,
            target: 3,
            num_classes: 3
        }
    );
    assert!(matches!(
        ce.forward(&logits, &[0]),
        Err(QnnError::ShapeMismatch { .. })
    ));
}

#[test]
fn mse_value_and_gradient() {
    let p = Tensor::new(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let t = Tensor::new(&[2, 2], vec![0.0, 2.0, 5.0, 4.0]).unwrap();
    let mut mse = MseLoss::new();
    assert_eq!(mse.forward(&p, &t).unwrap(), (1.0 + 4.0) / 4.0);
    assert_eq!(mse.backward().unwrap().data(), &[0.5, 0.0, -1.0, 0.0]);
    let err = mse.forward(&p, &Tensor::zeros(&[4])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "MSELoss prediction vs target: shape mismatch, expected [4], got [2, 2]"
    );
}

#[test]
fn sgd_momentum_weight_decay_and_nesterov_follow_pytorch() {
    // lr 0.1, momentum 0.9, weight decay 0.01, p0 = 1, grads 0.5 then -0.2
    let mut m = one(1.0);
    let mut sgd = Sgd::new(SgdConfig {
        momentum: 0.9,
        weight_decay: 0.01,
        ..SgdConfig::new(0.1)
    })
    .unwrap();
    set_grad(&mut m, 0.5);
    sgd.step(&mut m).unwrap();
    let g1 = 0.5 + 0.01 * 1.0; // buf = g on the first step
    let p1 = 1.0 - 0.1 * g1;
    assert!((value(&m) - p1).abs() < 1e-7);
    set_grad(&mut m, -0.2);
    sgd.step(&mut m).unwrap();
    let buf = 0.9 * g1 + (-0.2 + 0.01 * p1);
    assert!((value(&m) - (p1 - 0.1 * buf)).abs() < 1e-7);

    let mut m = one(1.0);
    let mut nag = Sgd::new(SgdConfig {
        momentum: 0.9,
        nesterov: true,
        ..SgdConfig::new(0.1)
    })
    .unwrap();
    set_grad(&mut m, 0.5);
    nag.step(&mut m).unwrap();
    assert!((value(&m) - (1.0 - 0.1 * (0.5 + 0.9 * 0.5))).abs() < 1e-7);

    assert!(matches!(
        Sgd::new(SgdConfig {
            nesterov: true,
            ..SgdConfig::new(0.1)
        }),
        Err(QnnError::InvalidConfig { .. })
    ));
}

#[test]
fn adam_and_adamw_follow_pytorch() {
    let (lr, g1, g2) = (0.01f32, 0.5f32, -0.3f32);
    let mut m = one(1.0);
    let mut adam = Adam::new(AdamConfig::adam(lr)).unwrap();
    set_grad(&mut m, g1);
    adam.step(&mut m).unwrap();
    // step 1: m = 0.1 g, v = 0.001 g^2 -> update = lr * g / (|g| + eps)
    let p1 = 1.0 - lr * g1 / (g1.abs() + 1e-8);
    assert!((value(&m) - p1).abs() < 1e-7, "{} vs {p1}", value(&m));
    set_grad(&mut m, g2);
    adam.step(&mut m).unwrap();
    let m2 = 0.9 * 0.1 * g1 + 0.1 * g2;
    let v2 = 0.999 * 0.001 * g1 * g1 + 0.001 * g2 * g2;
    let (bc1, bc2) = (1.0 - 0.9f64.powi(2), 1.0 - 0.999f64.powi(2));
    let p2 = p1 as f64 - (lr as f64 / bc1) * m2 as f64 / ((v2 as f64).sqrt() / bc2.sqrt() + 1e-8);
    assert!(
        (value(&m) as f64 - p2).abs() < 1e-6,
        "{} vs {p2}",
        value(&m)
    );

    // AdamW decays the weight before the Adam step
    let mut m = one(2.0);
    let mut adamw = Adam::new(AdamConfig::adamw(lr)).unwrap();
    set_grad(&mut m, g1);
    adamw.step(&mut m).unwrap();
    let want = 2.0 * (1.0 - lr * 0.01) - lr * g1 / (g1.abs() + 1e-8);
    assert!((value(&m) - want).abs() < 1e-6);

    // Adam with L2 weight decay adds it to the gradient instead: the sign of the update follows g + wd p
    let mut m = one(2.0);
    let mut l2 = Adam::new(AdamConfig {
        weight_decay: 1.0,
        ..AdamConfig::adam(lr)
    })
    .unwrap();
    set_grad(&mut m, -1.0); // g + wd p = 1 > 0 -> p decreases
    l2.step(&mut m).unwrap();
    assert!((value(&m) - (2.0 - lr)).abs() < 1e-6);
}

/// Two Gaussian blobs in 2-d, labels 0 and 1, linearly separable.
fn blobs(n: usize, seed: u64) -> (Tensor<f32>, Vec<usize>) {
    let mut rng = Rng::new(seed);
    let mut data = Vec::with_capacity(2 * n);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % 2;
        let centre = if c == 0 { 1.5 } else { -1.5 };
        data.push(centre + 0.5 * rng.normal());
        data.push(centre + 0.5 * rng.normal());
        labels.push(c);
    }
    (Tensor::new(&[n, 2], data).unwrap(), labels)
}

fn train(
    model: &mut Sequential,
    opt: &mut dyn Optimizer,
    x: &Tensor<f32>,
    y: &[usize],
    steps: usize,
) -> (f32, f32) {
    let mut ce = CrossEntropyLoss::new();
    let mut first = f32::NAN;
    let mut last = f32::NAN;
    for step in 0..steps {
        let logits = model
            .forward(&Value::F32(x.clone()))
            .unwrap()
            .into_f32("train")
            .unwrap();
        last = ce.forward(&logits, y).unwrap();
        if step == 0 {
            first = last;
        }
        model.zero_grad();
        model.backward(&Value::F32(ce.backward().unwrap())).unwrap();
        opt.step(model).unwrap();
    }
    (first, last)
}

#[test]
fn mlp_learns_separable_blobs_with_sgd() {
    let mut rng = Rng::new(42);
    let mut model = Sequential::new()
        .push(Linear::new(2, 16, true, &mut rng))
        .push(ReLU::new())
        .push(Linear::new(16, 2, true, &mut rng));
    let (x, y) = blobs(64, 7);
    let mut sgd = Sgd::new(SgdConfig {
        momentum: 0.9,
        ..SgdConfig::new(0.05)
    })
    .unwrap();
    let (first, last) = train(&mut model, &mut sgd, &x, &y, 60);
    eprintln!("mlp blobs: loss {first} -> {last}");
    assert!(first > 0.3, "initial loss {first}");
    assert!(last < 0.05, "final loss {last} (initial {first})");
    // every training point is classified correctly
    model.eval();
    let logits = model
        .forward(&Value::F32(x))
        .unwrap()
        .into_f32("eval")
        .unwrap();
    for (row, &label) in logits.data().chunks_exact(2).zip(&y) {
        assert_eq!(usize::from(row[1] > row[0]), label);
    }
}

#[test]
fn small_conv_net_learns_bar_orientation_with_adam() {
    // 6x6 images: a horizontal bar (class 0) or a vertical bar (class 1) at a random position, plus noise
    let n = 32;
    let mut rng = Rng::new(5);
    let mut data = vec![0.0f32; n * 36];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % 2;
        let pos = rng.below(6);
        for a in 0..6 {
            let (r, c) = if class == 0 { (pos, a) } else { (a, pos) };
            data[i * 36 + r * 6 + c] = 1.0;
        }
        for v in &mut data[i * 36..(i + 1) * 36] {
            *v += 0.1 * rng.normal();
        }
        labels.push(class);
    }
    let x = Tensor::new(&[n, 1, 6, 6], data).unwrap();
    let mut init = Rng::new(11);
    let mut model = Sequential::new()
        .push(Conv2d::new(Conv2dConfig::new(1, 4, 3).padding(1), &mut init).unwrap())
        .push(BatchNorm2d::new(BatchNormConfig::new(4)))
        .push(ReLU::new())
        .push(MaxPool2d::new(2).unwrap())
        .push(Flatten::default())
        .push(Linear::new(36, 2, true, &mut init));
    let mut adam = Adam::new(AdamConfig::adam(0.02)).unwrap();
    let (first, last) = train(&mut model, &mut adam, &x, &labels, 40);
    eprintln!("conv bars: loss {first} -> {last}");
    assert!(last < 0.1 * first && last < 0.1, "loss {first} -> {last}");
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let run_once = || {
        let mut rng = Rng::new(3);
        let mut model = Sequential::new()
            .push(Linear::new(2, 4, true, &mut rng))
            .push(Tanh::new())
            .push(Dropout::new(0.2, 9).unwrap())
            .push(Linear::new(4, 2, true, &mut rng));
        let (x, y) = blobs(16, 1);
        let mut sgd = Sgd::new(SgdConfig::new(0.1)).unwrap();
        train(&mut model, &mut sgd, &x, &y, 5).1
    };
    let first = run_once();
    assert!(first.is_finite());
    assert_eq!(first.to_bits(), run_once().to_bits());
}
