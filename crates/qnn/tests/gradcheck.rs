//! Finite-difference gradient checks (central differences, f32) for every float layer:
//! input gradients and parameter gradients against `backward`.

mod common;

use common::{avoid_kinks, check_gradients, rand_tensor};
use qnn::float::*;
use qnn::init::Rng;
use qnn::{Module, Value};

const H: f32 = 1e-2;
const ATOL: f64 = 2e-3;
const RTOL: f64 = 1e-2;

fn check(m: &mut dyn Module, shape: &[usize], seed: u64, kinks: &[f32]) {
    let mut x = rand_tensor(shape, -4.0, 4.0, seed);
    avoid_kinks(&mut x, kinks, 0.05);
    let n = check_gradients(m, &x, H, ATOL, RTOL);
    assert!(n >= x.numel(), "checked {n} entries");
}

#[test]
fn linear_gradients() {
    let mut rng = Rng::new(1);
    check(&mut Linear::new(4, 3, true, &mut rng), &[2, 3, 4], 10, &[]);
    check(&mut Linear::new(5, 2, false, &mut rng), &[3, 5], 11, &[]);
}

#[test]
fn conv2d_gradients_over_options() {
    let mut rng = Rng::new(2);
    let configs = [
        (Conv2dConfig::new(2, 3, 3), [2, 2, 5, 5]),
        (
            Conv2dConfig::new(2, 2, 3).stride(2).padding(1),
            [1, 2, 6, 5],
        ),
        (
            Conv2dConfig::new(1, 2, 2).dilation(2).bias(false),
            [2, 1, 5, 6],
        ),
        (
            Conv2dConfig::new(4, 2, 3).groups(2).padding(1),
            [1, 4, 4, 4],
        ),
        (
            Conv2dConfig {
                kernel_size: [1, 3],
                stride: [2, 1],
                padding: [0, 1],
                ..Conv2dConfig::new(3, 6, 1).groups(3)
            },
            [1, 3, 5, 4],
        ),
    ];
    for (i, (cfg, shape)) in configs.into_iter().enumerate() {
        let mut conv = Conv2d::new(cfg, &mut rng).unwrap();
        check(&mut conv, &shape, 20 + i as u64, &[]);
    }
    // unbatched (C, H, W) input
    let mut conv = Conv2d::new(Conv2dConfig::new(2, 2, 2), &mut rng).unwrap();
    check(&mut conv, &[2, 3, 3], 30, &[]);
}

#[test]
fn conv1d_and_conv_transpose2d_gradients() {
    let mut rng = Rng::new(3);
    let c1 = [
        (Conv1dConfig::new(2, 3, 3), vec![2, 2, 7]),
        (
            Conv1dConfig {
                stride: 2,
                padding: 1,
                dilation: 2,
                groups: 2,
                bias: false,
                ..Conv1dConfig::new(4, 2, 3)
            },
            vec![1, 4, 9],
        ),
        (Conv1dConfig::new(1, 2, 2), vec![1, 5]),
    ];
    for (i, (cfg, shape)) in c1.into_iter().enumerate() {
        check(
            &mut Conv1d::new(cfg, &mut rng).unwrap(),
            &shape,
            130 + i as u64,
            &[],
        );
    }
    let ct = [
        (ConvTranspose2dConfig::new(2, 3, 3), [1, 2, 3, 3]),
        (
            ConvTranspose2dConfig::new(2, 2, 3)
                .stride(2)
                .padding(1)
                .output_padding(1),
            [2, 2, 3, 2],
        ),
        (
            ConvTranspose2dConfig {
                dilation: [2, 1],
                groups: 2,
                bias: false,
                ..ConvTranspose2dConfig::new(4, 2, 2)
            },
            [1, 4, 3, 3],
        ),
    ];
    for (i, (cfg, shape)) in ct.into_iter().enumerate() {
        check(
            &mut ConvTranspose2d::new(cfg, &mut rng).unwrap(),
            &shape,
            140 + i as u64,
            &[],
        );
    }
}

#[test]
fn activation_gradients() {
    let shape = [2, 3, 4];
    check(&mut ReLU::new(), &shape, 40, &[0.0]);
    check(&mut ReLU6::new(), &[2, 3, 4], 41, &[0.0, 6.0]);
    check(&mut LeakyReLU::new(0.1), &shape, 42, &[0.0]);
    check(&mut Elu::new(1.5), &shape, 43, &[0.0]);
    check(&mut Hardswish::new(), &shape, 44, &[-3.0, 3.0]);
    check(&mut Hardsigmoid::new(), &shape, 45, &[-3.0, 3.0]);
    check(&mut Gelu::new(), &shape, 46, &[]);
    check(&mut SiLU::new(), &shape, 47, &[]);
    check(&mut Sigmoid::new(), &shape, 48, &[]);
    check(&mut Tanh::new(), &shape, 49, &[]);
}

#[test]
fn softmax_gradients() {
    check(&mut Softmax::new(1), &[2, 4, 3], 50, &[]);
    check(&mut Softmax::new(-1), &[3, 5], 51, &[]);
    check(&mut LogSoftmax::new(1), &[2, 4, 3], 52, &[]);
    check(&mut LogSoftmax::new(-1), &[3, 5], 53, &[]);
}

/// Distinct values at least `4 h` apart, so that no max-pool window has a near tie.
fn spread(shape: &[usize], seed: u64) -> qnn::qtensor::Tensor<f32> {
    let n: usize = shape.iter().product();
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = Rng::new(seed);
    for i in (1..n).rev() {
        order.swap(i, rng.below(i + 1));
    }
    qnn::qtensor::Tensor::from_fn(shape, |i| order[i] as f32 * 0.05 - 1.0)
}

#[test]
fn pooling_gradients() {
    let pools: Vec<(Box<dyn Module>, [usize; 4])> = vec![
        (Box::new(MaxPool2d::new(2).unwrap()), [2, 2, 4, 4]),
        (
            Box::new(MaxPool2d::with_options([3, 2], [2, 1], [1, 1], [1, 1], true).unwrap()),
            [1, 2, 5, 4],
        ),
        (
            Box::new(MaxPool2d::with_options([2, 2], [1, 1], [0, 0], [2, 2], false).unwrap()),
            [1, 1, 5, 5],
        ),
        (Box::new(AvgPool2d::new(2).unwrap()), [2, 2, 4, 4]),
        (
            Box::new(AvgPool2d::with_options([3, 3], [2, 2], [1, 1], true, false, None).unwrap()),
            [1, 2, 6, 5],
        ),
        (
            Box::new(
                AvgPool2d::with_options([2, 3], [2, 2], [1, 1], false, true, Some(4)).unwrap(),
            ),
            [1, 1, 5, 6],
        ),
        (
            Box::new(AdaptiveAvgPool2d::new([3, 2]).unwrap()),
            [2, 1, 5, 7],
        ),
        (
            Box::new(AdaptiveAvgPool2d::new([1, 1]).unwrap()),
            [2, 3, 3, 3],
        ),
    ];
    for (i, (mut m, shape)) in pools.into_iter().enumerate() {
        let x = spread(&shape, 60 + i as u64);
        let n = check_gradients(m.as_mut(), &x, H, ATOL, RTOL);
        assert_eq!(n, x.numel(), "pool {i}");
    }
}

#[test]
fn shape_layer_gradients() {
    check(&mut Flatten::default(), &[2, 3, 2, 2], 70, &[]);
    check(&mut Flatten::new(0, 1), &[2, 3, 2], 71, &[]);
    check(&mut Identity::new(), &[3, 2], 72, &[]);
}

#[test]
fn batchnorm_gradients_train_and_eval() {
    let mut rng = Rng::new(8);
    let randomize = |m: &mut dyn Module, rng: &mut Rng| {
        m.visit_params_mut(&mut |_, p| rng.fill_uniform(p.value.data_mut(), 0.5, 1.5))
    };
    let mut bn2 = BatchNorm2d::new(BatchNormConfig::new(3));
    randomize(&mut bn2, &mut rng);
    check(&mut bn2, &[2, 3, 3, 2], 80, &[]);
    bn2.eval();
    check(&mut bn2, &[2, 3, 3, 2], 81, &[]);

    let mut bn1 = BatchNorm1d::new(BatchNormConfig::new(4));
    randomize(&mut bn1, &mut rng);
    check(&mut bn1, &[5, 4], 82, &[]);
    check(&mut bn1, &[3, 4, 2], 83, &[]);
    bn1.eval();
    check(&mut bn1, &[3, 4, 2], 84, &[]);

    let mut no_affine = BatchNorm2d::new(BatchNormConfig {
        affine: false,
        track_running_stats: false,
        ..BatchNormConfig::new(2)
    });
    no_affine.eval(); // without running stats, eval still uses batch statistics
    check(&mut no_affine, &[3, 2, 2, 2], 85, &[]);
}

#[test]
fn layernorm_gradients() {
    let mut rng = Rng::new(9);
    let mut ln = LayerNorm::new(&[3, 4], 1e-5, true);
    ln.visit_params_mut(&mut |_, p| rng.fill_uniform(p.value.data_mut(), 0.5, 1.5));
    check(&mut ln, &[2, 3, 4], 90, &[]);
    check(&mut LayerNorm::new(&[5], 1e-5, false), &[3, 5], 91, &[]);
}

#[test]
fn sequential_conv_net_gradients() {
    let mut rng = Rng::new(10);
    let mut net = Sequential::new()
        .push(Conv2d::new(Conv2dConfig::new(1, 2, 3).padding(1), &mut rng).unwrap())
        .push(BatchNorm2d::new(BatchNormConfig::new(2)))
        .push(Tanh::new())
        .push(AvgPool2d::new(2).unwrap())
        .push(Flatten::default())
        .push(Linear::new(8, 3, true, &mut rng));
    let x = rand_tensor(&[2, 1, 4, 4], -1.0, 1.0, 100);
    let n = check_gradients(&mut net, &x, H, ATOL, RTOL);
    assert_eq!(n, 32 + (18 + 2) + (2 + 2) + (24 + 3));
}

/// `L = Σ out · r` for index input `input` (the table is the only differentiable thing).
fn index_probe(m: &mut dyn Module, input: &Value, r: &[f32]) -> f64 {
    let y = m.forward(input).unwrap().into_f32("probe").unwrap();
    assert_eq!(y.numel(), r.len());
    y.data()
        .iter()
        .zip(r)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum()
}

/// Central differences of every table entry of an index-input layer against the `weight`
/// gradient `backward` accumulates; `frozen` rows (PyTorch's `padding_idx`) must get exactly
/// zero. Returns the number of entries compared with a difference.
fn check_table_gradients(
    m: &mut dyn Module,
    input: &Value,
    d: usize,
    frozen: Option<usize>,
) -> usize {
    let y = m.forward(input).unwrap().into_f32("check").unwrap();
    let r = rand_tensor(y.shape(), -1.0, 1.0, 77);
    m.zero_grad();
    assert_eq!(
        m.backward(&Value::F32(r.clone())).unwrap(),
        Value::no_grad()
    );
    let mut grad = Vec::new();
    m.visit_params(&mut |n, p| {
        assert_eq!(n, "weight");
        grad = p.grad.data().to_vec();
    });
    let mut checked = 0;
    for (i, &g) in grad.iter().enumerate() {
        if Some(i / d) == frozen {
            assert_eq!(g, 0.0, "padding row entry {i} got a gradient");
            continue;
        }
        let nudge = |m: &mut dyn Module, delta: f32| {
            m.visit_params_mut(&mut |_, p| p.value.data_mut()[i] += delta)
        };
        nudge(m, H);
        let up = index_probe(m, input, r.data());
        nudge(m, -2.0 * H);
        let down = index_probe(m, input, r.data());
        nudge(m, H);
        let numeric = (up - down) / (2.0 * f64::from(H));
        assert!(
            (numeric - f64::from(g)).abs() <= ATOL + RTOL * f64::from(g.abs()),
            "weight[{i}]: numeric {numeric:.6} vs analytic {g:.6}"
        );
        checked += 1;
    }
    checked
}

fn indices(shape: &[usize], data: &[i32]) -> Value {
    Value::I32(qnn::qtensor::Tensor::new(shape, data.to_vec()).unwrap())
}

#[test]
fn embedding_gradients_with_repeats_and_padding() {
    let mut rng = Rng::new(8);
    // Repeated indices accumulate; row 4 is never looked up (gradient 0 both ways).
    let idx = indices(&[2, 3], &[1, 3, 1, 0, 2, 3]);
    let mut e = Embedding::new(5, 3, None, &mut rng).unwrap();
    assert_eq!(check_table_gradients(&mut e, &idx, 3, None), 15);
    // padding_idx 2: looked up (its values reach the output) but never gets a gradient.
    let mut e = Embedding::new(5, 3, Some(2), &mut rng).unwrap();
    assert_eq!(check_table_gradients(&mut e, &idx, 3, Some(2)), 12);
}

#[test]
fn embedding_bag_gradients_in_every_mode() {
    let mut rng = Rng::new(9);
    // (indices, offsets): bags [0, 2, 2], [], [4, 1], [3]; and a [2, 2] batch of bags.
    let with_offsets = Value::Tuple(vec![
        indices(&[6], &[0, 2, 2, 4, 1, 3]),
        indices(&[4], &[0, 3, 3, 5]),
    ]);
    let batch = indices(&[2, 2], &[1, 1, 0, 4]);
    for mode in [BagMode::Sum, BagMode::Mean, BagMode::Max] {
        for input in [&with_offsets, &batch] {
            // Max is piecewise linear: the difference quotient is its gradient unless two
            // rows of a bag are within 2h in a column. N(0, 1) rows from this seed are not (a
            // near tie would show up as a mismatch, not pass silently).
            let mut bag = EmbeddingBag::new(5, 4, mode, &mut rng);
            assert_eq!(
                check_table_gradients(&mut bag, input, 4, None),
                20,
                "{mode:?}"
            );
        }
    }
}

#[test]
fn dropout_gradient_is_the_forward_mask() {
    let mut d = Dropout::new(0.5, 7).unwrap();
    let x = rand_tensor(&[4, 25], 1.0, 2.0, 110);
    let y = common::run(&mut d, &x);
    let g = rand_tensor(&[4, 25], -1.0, 1.0, 111);
    let dx = d
        .backward(&Value::F32(g.clone()))
        .unwrap()
        .into_f32("t")
        .unwrap();
    let mut dropped = 0;
    for i in 0..x.numel() {
        let mask = y.data()[i] / x.data()[i];
        assert!(mask == 0.0 || (mask - 2.0).abs() < 1e-6, "mask {mask}");
        assert!((dx.data()[i] - g.data()[i] * mask).abs() < 1e-6);
        dropped += usize::from(mask == 0.0);
    }
    assert!(
        (30..=70).contains(&dropped),
        "dropped {dropped} of 100 with p = 0.5"
    );
    d.eval();
    assert_eq!(common::run(&mut d, &x), x);
}

/// A layer whose backward is off by 10 %: the checker must reject it.
struct WrongGradient(Tanh);

impl Module for WrongGradient {
    fn kind(&self) -> qnn::ModuleKind {
        self.0.kind()
    }
    fn forward(&mut self, input: &Value) -> qnn::Result<Value> {
        self.0.forward(input)
    }
    fn backward(&mut self, grad_output: &Value) -> qnn::Result<Value> {
        let g = self.0.backward(grad_output)?.into_f32("wrong")?;
        Ok(Value::F32(g.map(|v| v * 1.1)))
    }
    fn train(&mut self, mode: bool) {
        self.0.train(mode);
    }
    fn is_training(&self) -> bool {
        self.0.is_training()
    }
}

#[test]
#[should_panic(expected = "input grad")]
fn the_checker_rejects_a_wrong_gradient() {
    check(&mut WrongGradient(Tanh::new()), &[2, 3], 120, &[]);
}
