//! `Module::half()`: f16 weights, f32 activations and accumulation.

use half::f16;
use qnn::float::*;
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::state_dict::{StateEntry, load_state_dict, state_dict};
use qnn::{Module, QnnError, Value};

/// A small LeNet-shaped model (Conv2d, pooling, Linear) with a Conv1d-free trunk.
fn lenet(seed: u64) -> Sequential {
    let mut rng = Rng::new(seed);
    Sequential::new()
        .push(Conv2d::new(Conv2dConfig::new(1, 6, 5).padding(2), &mut rng).unwrap())
        .push(ReLU::new())
        .push(MaxPool2d::new(2).unwrap())
        .push(Conv2d::new(Conv2dConfig::new(6, 16, 5), &mut rng).unwrap())
        .push(ReLU::new())
        .push(MaxPool2d::new(2).unwrap())
        .push(Flatten::default())
        .push(Linear::new(16 * 5 * 5, 120, true, &mut rng))
        .push(ReLU::new())
        .push(Linear::new(120, 10, true, &mut rng))
}

/// Rounds every `weight` parameter of `model` to f16 and back, in f32 storage.
fn round_weights(model: &mut dyn Module) {
    model.visit_params_mut(&mut |name, p| {
        if name.ends_with("weight") {
            p.value
                .data_mut()
                .iter_mut()
                .for_each(|v| *v = f16::from_f32(*v).to_f32());
        }
    });
}

fn forward(model: &mut dyn Module, x: &Tensor<f32>) -> Tensor<f32> {
    model
        .forward(&Value::F32(x.clone()))
        .unwrap()
        .into_f32("test")
        .unwrap()
}

fn max_abs_diff(a: &Tensor<f32>, b: &Tensor<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.data()
        .iter()
        .zip(b.data())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn input(n: usize) -> Tensor<f32> {
    Tensor::from_fn(&[n, 1, 28, 28], |i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
}

#[test]
fn half_model_equals_f32_model_with_rounded_weights() {
    let x = input(3);
    let mut plain = lenet(7);
    let mut rounded = lenet(7);
    round_weights(&mut rounded);
    let mut halved = lenet(7);
    halved.half().unwrap();

    let (y_plain, y_rounded, y_half) = (
        forward(&mut plain, &x),
        forward(&mut rounded, &x),
        forward(&mut halved, &x),
    );
    // same arithmetic up to the GEMM's summation order
    assert!(max_abs_diff(&y_half, &y_rounded) < 1e-5);
    // and the rounding really happened: the unrounded model differs by more than that
    assert!(max_abs_diff(&y_half, &y_plain) > 1e-5);
}

#[test]
fn half_halves_the_weight_bytes_and_keeps_biases_f32() {
    let mut model = lenet(1);
    let (mut weights, mut biases) = (0, 0);
    model.visit_params(&mut |name, p| {
        if name.ends_with("weight") {
            weights += p.value.numel();
        } else {
            biases += p.value.numel();
        }
    });
    assert_eq!(model.param_bytes(), 4 * (weights + biases));
    model.half().unwrap();
    assert_eq!(model.param_bytes(), 2 * weights + 4 * biases);
    // the f32 copy is gone from the layer
    let conv = (&model as &dyn Module)
        .downcast_ref::<Sequential>()
        .unwrap()
        .children()
        .next()
        .unwrap()
        .1
        .downcast_ref::<Conv2d>()
        .unwrap();
    assert_eq!(conv.weight.value.numel(), 0);
    assert_eq!(conv.weight_f16().unwrap().shape(), &[6, 1, 5, 5]);
    // halving twice changes nothing
    model.half().unwrap();
    assert_eq!(model.param_bytes(), 2 * weights + 4 * biases);
}

#[test]
fn half_keeps_state_dict_names_shapes_and_rounded_values() {
    let mut rounded = lenet(3);
    round_weights(&mut rounded);
    let mut halved = lenet(3);
    halved.half().unwrap();
    assert_eq!(state_dict(&halved), state_dict(&rounded));

    // loading into a halved model rounds the loaded weights to f16
    let mut dict = state_dict(&lenet(4));
    let mut other = lenet(4);
    round_weights(&mut other);
    load_state_dict(&mut halved, &dict, true).unwrap();
    assert_eq!(state_dict(&halved), state_dict(&other));

    // and still checks shapes, naming the key
    dict.insert("7.weight".into(), StateEntry::F32(Tensor::zeros(&[120, 7])));
    match load_state_dict(&mut halved, &dict, true) {
        Err(QnnError::KeyShapeMismatch { key, expected, got }) => {
            assert_eq!(key, "7.weight");
            assert_eq!(expected, vec![120, 400]);
            assert_eq!(got, vec![120, 7]);
        }
        other => panic!("expected KeyShapeMismatch, got {other:?}"),
    }
}

#[test]
fn half_layers_are_inference_only() {
    let mut model = lenet(5);
    model.half().unwrap();
    let y = forward(&mut model, &input(2));
    let err = model
        .backward(&Value::F32(Tensor::zeros(y.shape())))
        .unwrap_err();
    assert!(err.to_string().contains("half()"), "{err}");
}

#[test]
fn conv1d_and_linear_half_match_rounded_f32() {
    let mut rng = Rng::new(11);
    let conv = Conv1d::new(Conv1dConfig::new(3, 4, 3), &mut rng).unwrap();
    let lin = Linear::new(4 * 6, 5, false, &mut rng);
    let build = |c: &Conv1d, l: &Linear| {
        Sequential::new()
            .push(c.clone())
            .push(Flatten::default())
            .push(l.clone())
    };
    let x = Tensor::from_fn(&[2, 3, 8], |i| (i as f32 * 0.37).sin());
    let mut rounded = build(&conv, &lin);
    round_weights(&mut rounded);
    let mut halved = build(&conv, &lin);
    halved.half().unwrap();
    let (a, b) = (forward(&mut rounded, &x), forward(&mut halved, &x));
    assert!(max_abs_diff(&a, &b) < 1e-5);
    assert_eq!(halved.param_bytes(), 2 * (4 * 3 * 3 + 5 * 24) + 4 * 4);
}
