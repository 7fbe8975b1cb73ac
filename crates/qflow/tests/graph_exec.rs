//! Graph execution: forward in topological order, backward with gradient accumulation at
//! fan-out (checked against the same layers composed by hand and against finite differences),
//! training through the `Module` impl, and parameter naming for state dicts.

use qflow::{FunctionalBuilder, FunctionalOp, Graph, SequentialBuilder};
use qnn::float::{Conv2d, Conv2dConfig, Flatten, Linear, MaxPool2d, ReLU};
use qnn::init::Rng;
use qnn::loss::CrossEntropyLoss;
use qnn::optim::{Optimizer, Sgd, SgdConfig};
use qnn::qtensor::Tensor;
use qnn::{Module, Value};

fn rand(shape: &[usize], seed: u64) -> Tensor<f32> {
    let mut rng = Rng::new(seed);
    Tensor::from_fn(shape, |_| rng.uniform(-1.0, 1.0))
}

fn f32v(v: Value) -> Tensor<f32> {
    v.into_f32("test").unwrap()
}

/// x -> fc1 -> relu -> add(relu, x) -> fc2, plus a second output mul(fc2, fc2): `x` fans out
/// to fc1 and add, `fc2` fans out to both inputs of mul and to the first graph output.
fn residual(fc1: &Linear, fc2: &Linear) -> Graph {
    let mut b = FunctionalBuilder::new();
    let x = b.input("x");
    let h = b.module("fc1", fc1.clone(), &[&x]);
    let h = b.module("relu", ReLU::new(), &[&h]);
    let s = b.functional("add", FunctionalOp::Add, &[&h, &x]);
    let y = b.module("fc2", fc2.clone(), &[&s]);
    let sq = b.functional("square", FunctionalOp::Mul, &[&y, &y]);
    b.output(&y);
    b.output(&sq);
    b.build().unwrap()
}

#[test]
fn residual_gradients_equal_hand_composition() {
    let mut rng = Rng::new(0);
    let (fc1, fc2) = (
        Linear::new(4, 4, true, &mut rng),
        Linear::new(4, 3, true, &mut rng),
    );
    let mut g = residual(&fc1, &fc2);
    let x = rand(&[5, 4], 1);
    let (gy, gsq) = (rand(&[5, 3], 2), rand(&[5, 3], 3));
    let outs = g.run(&[Value::F32(x.clone())]).unwrap();
    let gx = f32v(
        g.backward_all(&[Value::F32(gy.clone()), Value::F32(gsq.clone())])
            .unwrap()
            .remove(0),
    );

    // The same computation by hand.
    let (mut l1, mut r, mut l2) = (fc1.clone(), ReLU::new(), fc2.clone());
    let h = f32v(
        r.forward(&l1.forward(&Value::F32(x.clone())).unwrap())
            .unwrap(),
    );
    let s = Tensor::new(
        h.shape(),
        h.data().iter().zip(x.data()).map(|(a, b)| a + b).collect(),
    )
    .unwrap();
    let y = f32v(l2.forward(&Value::F32(s)).unwrap());
    assert_eq!(f32v(outs[0].clone()), y);
    let sq: Vec<f32> = y.data().iter().map(|v| v * v).collect();
    assert_eq!(f32v(outs[1].clone()).data(), sq.as_slice());
    // dL/dy = gy + g y + g y: the output's gradient first, then mul's two (equal) inputs.
    let dy: Vec<f32> = (0..y.numel())
        .map(|i| gy.data()[i] + gsq.data()[i] * y.data()[i] + gsq.data()[i] * y.data()[i])
        .collect();
    let ds = f32v(
        l2.backward(&Value::F32(Tensor::new(y.shape(), dy).unwrap()))
            .unwrap(),
    );
    let dh = f32v(
        l1.backward(&r.backward(&Value::F32(ds.clone())).unwrap())
            .unwrap(),
    );
    let want: Vec<f32> = dh
        .data()
        .iter()
        .zip(ds.data())
        .map(|(a, b)| a + b)
        .collect();
    for (a, b) in gx.data().iter().zip(&want) {
        assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{a} vs {b}");
    }
    let node = g.module_as::<Linear>("fc1").unwrap();
    assert_eq!(node.weight.grad, l1.weight.grad);
    assert_eq!(
        g.module_as::<Linear>("fc2")
            .unwrap()
            .bias
            .as_ref()
            .unwrap()
            .grad,
        l2.bias.unwrap().grad
    );
}

/// Central finite differences of `sum(out * w)` with respect to every input element.
fn check_fd(g: &mut Graph, inputs: Vec<Tensor<f32>>, out_seed: u64) {
    let outs = g
        .run(&inputs.iter().cloned().map(Value::F32).collect::<Vec<_>>())
        .unwrap();
    let ws: Vec<Tensor<f32>> = outs
        .iter()
        .enumerate()
        .map(|(i, o)| rand(o.shape().unwrap(), out_seed + i as u64))
        .collect();
    let grads = g
        .backward_all(&ws.iter().cloned().map(Value::F32).collect::<Vec<_>>())
        .unwrap();
    let loss = |g: &mut Graph, xs: &[Tensor<f32>]| -> f64 {
        let outs = g
            .run(&xs.iter().cloned().map(Value::F32).collect::<Vec<_>>())
            .unwrap();
        outs.into_iter()
            .zip(&ws)
            .map(|(o, w)| {
                f32v(o)
                    .data()
                    .iter()
                    .zip(w.data())
                    .map(|(a, b)| (*a as f64) * (*b as f64))
                    .sum::<f64>()
            })
            .sum()
    };
    let eps = 1e-2f32;
    for (k, x) in inputs.iter().enumerate() {
        let gk = f32v(grads[k].clone());
        for i in 0..x.numel() {
            let mut xs = inputs.clone();
            xs[k].data_mut()[i] += eps;
            let up = loss(g, &xs);
            xs[k].data_mut()[i] -= 2.0 * eps;
            let down = loss(g, &xs);
            let fd = ((up - down) / (2.0 * eps as f64)) as f32;
            let an = gk.data()[i];
            assert!(
                (fd - an).abs() <= 2e-2 * (1.0 + an.abs()),
                "input {k}[{i}]: fd {fd} vs {an}"
            );
        }
    }
}

#[test]
fn functional_ops_match_finite_differences() {
    // cat -> reshape -> matmul (cat fans out), scalars, add_relu; `c` is also an output.
    let mut b = FunctionalBuilder::new();
    let (a, c) = (b.input("a"), b.input("c"));
    let cat = b.functional("cat", FunctionalOp::Cat { dim: 1 }, &[&a, &c]); // [2, 5]
    let r = b.functional("reshape", FunctionalOp::Reshape(vec![5, -1]), &[&cat]); // [5, 2]
    let mm = b.functional("matmul", FunctionalOp::Matmul, &[&cat, &r]); // [2, 2]
    let s = b.functional("scale", FunctionalOp::MulScalar(1.5), &[&mm]);
    let t = b.functional("shift", FunctionalOp::AddScalar(-0.2), &[&s]);
    let ar = b.functional("add_relu", FunctionalOp::AddRelu, &[&t, &mm]);
    let f = b.functional(
        "flat",
        FunctionalOp::Flatten {
            start_dim: 0,
            end_dim: -1,
        },
        &[&ar],
    );
    b.output(&f);
    b.output(&c);
    let mut g = b.build().unwrap();
    check_fd(&mut g, vec![rand(&[2, 3], 7), rand(&[2, 2], 8)], 9);
}

#[test]
fn graph_trains_through_the_module_trait() {
    let mut rng = Rng::new(3);
    let mut g = SequentialBuilder::new("x")
        .add(
            "conv1",
            Conv2d::new(Conv2dConfig::new(1, 4, 3), &mut rng).unwrap(),
        )
        .add("relu1", ReLU::new())
        .add("pool1", MaxPool2d::new(2).unwrap())
        .add("flatten", Flatten::default())
        .add("fc1", Linear::new(4 * 3 * 3, 16, true, &mut rng))
        .add("relu2", ReLU::new())
        .add("fc2", Linear::new(16, 3, true, &mut rng))
        .build()
        .unwrap();
    let x = rand(&[12, 1, 8, 8], 4);
    // Targets the net can learn: the sign pattern of a few pixels.
    let targets: Vec<usize> = (0..12).map(|i| i % 3).collect();
    let x = Tensor::from_fn(&[12, 1, 8, 8], |j| {
        x.data()[j] + (targets[j / 64] as f32) * ((j % 7) as f32) * 0.1
    });
    let mut loss_fn = CrossEntropyLoss::new();
    let mut sgd = Sgd::new(SgdConfig {
        momentum: 0.9,
        ..SgdConfig::new(0.05)
    })
    .unwrap();
    let mut losses = Vec::new();
    for _ in 0..30 {
        let logits = f32v(g.forward(&Value::F32(x.clone())).unwrap());
        losses.push(loss_fn.forward(&logits, &targets).unwrap());
        g.zero_grad();
        g.backward(&Value::F32(loss_fn.backward().unwrap()))
            .unwrap();
        sgd.step(&mut g).unwrap();
    }
    assert!(
        losses[29] < 0.5 * losses[0],
        "loss {} -> {}",
        losses[0],
        losses[29]
    );

    let keys: Vec<String> = qnn::state_dict::state_dict(&g).into_keys().collect();
    assert_eq!(
        keys,
        [
            "conv1.bias",
            "conv1.weight",
            "fc1.bias",
            "fc1.weight",
            "fc2.bias",
            "fc2.weight"
        ]
    );
    // A safetensors round trip into a freshly initialised graph of the same shape.
    let bytes = qnn::state_dict::to_safetensors(&qnn::state_dict::state_dict(&g)).unwrap();
    let mut rng = Rng::new(99);
    let mut h = SequentialBuilder::new("x")
        .add(
            "conv1",
            Conv2d::new(Conv2dConfig::new(1, 4, 3), &mut rng).unwrap(),
        )
        .add("relu1", ReLU::new())
        .add("pool1", MaxPool2d::new(2).unwrap())
        .add("flatten", Flatten::default())
        .add("fc1", Linear::new(4 * 3 * 3, 16, true, &mut rng))
        .add("relu2", ReLU::new())
        .add("fc2", Linear::new(16, 3, true, &mut rng))
        .build()
        .unwrap();
    let dict = qnn::state_dict::from_safetensors(&bytes).unwrap();
    qnn::state_dict::load_state_dict(&mut h, &dict, true).unwrap();
    g.eval();
    h.eval();
    assert_eq!(
        g.forward(&Value::F32(x.clone())).unwrap(),
        h.forward(&Value::F32(x)).unwrap()
    );
}

/// A user-defined layer: doubles its input.
struct Double {
    training: bool,
}

impl Module for Double {
    fn kind(&self) -> qnn::ModuleKind {
        qnn::ModuleKind::Custom
    }
    fn forward(&mut self, input: &Value) -> qnn::Result<Value> {
        Ok(Value::F32(input.as_f32("Double")?.map(|v| 2.0 * v)))
    }
    fn backward(&mut self, g: &Value) -> qnn::Result<Value> {
        Ok(Value::F32(g.as_f32("Double")?.map(|v| 2.0 * v)))
    }
    fn train(&mut self, mode: bool) {
        self.training = mode;
    }
    fn is_training(&self) -> bool {
        self.training
    }
}

#[test]
fn custom_modules_and_multi_input_modules_run() {
    let mut b = FunctionalBuilder::new();
    let x = b.input("x");
    let d = b.module("double", Double { training: true }, &[&x]);
    let o = b.functional("out", FunctionalOp::Add, &[&d, &x]);
    b.output(&o);
    let mut g = b.build().unwrap();
    let y = f32v(
        g.forward(&Value::F32(Tensor::new(&[2], vec![1.0, -2.0]).unwrap()))
            .unwrap(),
    );
    assert_eq!(y.data(), [3.0, -6.0]);
    let gx = f32v(
        g.backward(&Value::F32(Tensor::new(&[2], vec![1.0, 1.0]).unwrap()))
            .unwrap(),
    );
    assert_eq!(gx.data(), [3.0, 3.0]);
    assert_eq!(
        g.node("double").unwrap().kind(),
        Some(qnn::ModuleKind::Custom)
    );
    assert!(g.module_as::<Double>("double").is_some());
    g.eval();
    assert!(!g.module_as::<Double>("double").unwrap().training);
}

#[test]
fn run_with_reports_every_node_in_order() {
    let mut rng = Rng::new(5);
    let (fc1, fc2) = (
        Linear::new(4, 4, true, &mut rng),
        Linear::new(4, 3, true, &mut rng),
    );
    let mut g = residual(&fc1, &fc2);
    let mut seen = Vec::new();
    g.run_with(&[Value::F32(rand(&[1, 4], 0))], &mut |n, v| {
        seen.push((n.name().to_string(), v.shape().unwrap().to_vec()))
    })
    .unwrap();
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["fc1", "relu", "add", "fc2", "square"]);
    assert_eq!(seen[3].1, [1, 3]);
}

/// A two-input layer (like `QFunctional.add` after convert): receives a tuple, returns the
/// tuple of input gradients.
struct Sum2;

impl Module for Sum2 {
    fn kind(&self) -> qnn::ModuleKind {
        qnn::ModuleKind::Custom
    }
    fn forward(&mut self, input: &Value) -> qnn::Result<Value> {
        let Value::Tuple(items) = input else {
            return Err(qnn::QnnError::WrongValueKind {
                module: "Sum2",
                expected: "tuple",
                got: input.kind_name(),
            });
        };
        let (a, b) = (items[0].as_f32("Sum2")?, items[1].as_f32("Sum2")?);
        Ok(Value::F32(Tensor::new(
            a.shape(),
            a.data()
                .iter()
                .zip(b.data())
                .map(|(x, y)| x + 2.0 * y)
                .collect(),
        )?))
    }
    fn backward(&mut self, g: &Value) -> qnn::Result<Value> {
        let g = g.as_f32("Sum2")?;
        Ok(Value::Tuple(vec![
            Value::F32(g.clone()),
            Value::F32(g.map(|v| 2.0 * v)),
        ]))
    }
    fn train(&mut self, _: bool) {}
    fn is_training(&self) -> bool {
        true
    }
}

#[test]
fn multi_input_modules_get_a_tuple_and_return_one_gradient_per_input() {
    let mut b = FunctionalBuilder::new();
    let x = b.input("x");
    let y = b.input("y");
    let r = b.module("relu", ReLU::new(), &[&x]);
    let s = b.module("sum", Sum2, &[&r, &y]);
    b.output(&s);
    let mut g = b.build().unwrap();
    let (xv, yv) = (
        Tensor::new(&[3], vec![-1.0, 2.0, 3.0]).unwrap(),
        Tensor::new(&[3], vec![1.0, 1.0, 0.5]).unwrap(),
    );
    let out = g
        .forward(&Value::Tuple(vec![Value::F32(xv), Value::F32(yv)]))
        .unwrap();
    assert_eq!(f32v(out).data(), [2.0, 4.0, 4.0]);
    let grads = g
        .backward(&Value::F32(Tensor::new(&[3], vec![1.0, 1.0, 1.0]).unwrap()))
        .unwrap();
    let Value::Tuple(grads) = grads else {
        panic!("two inputs give a tuple of gradients")
    };
    assert_eq!(f32v(grads[0].clone()).data(), [0.0, 1.0, 1.0]);
    assert_eq!(f32v(grads[1].clone()).data(), [2.0, 2.0, 2.0]);
}

/// Values are handed to their last consumer (`Module::forward_owned`) and freed after it;
/// a value that fans out, or that is a graph output, must still reach every reader intact,
/// also through a functional node and through identities.
#[test]
fn values_reach_every_reader_when_handed_over_and_freed() {
    use qnn::float::Identity;
    let mut rng = Rng::new(7);
    let fc = Linear::new(4, 4, true, &mut rng);
    let mut b = FunctionalBuilder::new();
    let x = b.input("x");
    let h = b.module("fc", fc.clone(), &[&x]);
    // `h` fans out: an identity reads it first, the add later (its last reader)
    let i1 = b.module("id1", Identity::new(), &[&h]);
    let s = b.functional("add", FunctionalOp::Add, &[&i1, &h]);
    // `s` is a graph output and also read by an identity: never handed over
    let i2 = b.module("id2", Identity::new(), &[&s]);
    // a functional node is the last reader of a module output
    let r = b.module("relu", ReLU::new(), &[&i2]);
    let f = b.functional(
        "flat",
        FunctionalOp::Flatten {
            start_dim: 0,
            end_dim: -1,
        },
        &[&r],
    );
    let i3 = b.module("id3", Identity::new(), &[&f]);
    b.output(&s);
    b.output(&i3);
    let mut g = b.build().unwrap();
    let xt = rand(&[3, 4], 8);
    let hv = f32v(fc.clone().forward(&Value::F32(xt.clone())).unwrap());
    let sum: Vec<f32> = hv.data().iter().map(|v| v + v).collect();
    let relu: Vec<f32> = sum.iter().map(|v| v.max(0.0)).collect();
    for _ in 0..2 {
        let outs = g.run(&[Value::F32(xt.clone())]).unwrap();
        let (o0, o1) = (f32v(outs[0].clone()), f32v(outs[1].clone()));
        assert_eq!(o0.shape(), &[3, 4]);
        assert_eq!(o0.data(), sum.as_slice());
        assert_eq!(o1.shape(), &[12]);
        assert_eq!(o1.data(), relu.as_slice());
    }
}

/// Adds 1; fused with a following [`Double`] it answers 1000 instead (a marker, so the
/// tests see which path ran; real fused pairs compute the same values).
struct AddOne;

impl Module for AddOne {
    fn kind(&self) -> qnn::ModuleKind {
        qnn::ModuleKind::Custom
    }
    fn forward(&mut self, input: &Value) -> qnn::Result<Value> {
        Ok(Value::F32(input.as_f32("AddOne")?.map(|v| v + 1.0)))
    }
    fn forward_fused(
        &mut self,
        input: &Value,
        next: &mut dyn Module,
    ) -> Option<qnn::Result<Value>> {
        next.downcast_ref::<Double>()?;
        Some(
            input
                .as_f32("AddOne")
                .map(|x| Value::F32(x.map(|_| 1000.0))),
        )
    }
    fn backward(&mut self, g: &Value) -> qnn::Result<Value> {
        Ok(g.clone())
    }
    fn train(&mut self, _mode: bool) {}
    fn is_training(&self) -> bool {
        false
    }
}

/// x -> add -> relu (identity) -> double, with optional extra outputs.
fn fusable(identity_output: bool, add_fans_out: bool) -> Graph {
    let mut b = FunctionalBuilder::new();
    let x = b.input("x");
    let a = b.module("add", AddOne, &[&x]);
    let r = b.module("relu", qnn::float::Identity::new(), &[&a]);
    let d = b.module("double", Double { training: false }, &[&r]);
    b.output(&d);
    if identity_output {
        b.output(&r);
    }
    if add_fans_out {
        let o = b.functional("other", FunctionalOp::Add, &[&a, &x]);
        b.output(&o);
    }
    b.build().unwrap()
}

#[test]
fn run_fuses_single_reader_pairs_across_identities_only_without_a_hook() {
    let x = [Value::F32(Tensor::new(&[2], vec![1.0, -2.0]).unwrap())];
    let first = |outs: Vec<Value>| f32v(outs.into_iter().next().unwrap()).data().to_vec();
    // fused: the marker
    let mut g = fusable(false, false);
    assert_eq!(first(g.run(&x).unwrap()), [1000.0, 1000.0]);
    // a hook sees every node, so nothing fuses
    let mut seen = Vec::new();
    let outs = g
        .run_with(&x, &mut |n, _| seen.push(n.name().to_string()))
        .unwrap();
    assert_eq!(first(outs), [4.0, -2.0]);
    assert_eq!(seen, ["add", "relu", "double"]);
    // the identity's value is a graph output, or add's value has another reader: no fusion
    for (identity_output, fans_out) in [(true, false), (false, true)] {
        let mut g = fusable(identity_output, fans_out);
        assert_eq!(first(g.run(&x).unwrap()), [4.0, -2.0]);
    }
}
