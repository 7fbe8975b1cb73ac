//! Shared by the pass tests: a LeNet5-shaped graph after conv+relu / linear+relu fusion (the
//! ReLU nodes are Identity, as PyTorch's fuse_modules leaves them), random data, qconfigs.
#![allow(dead_code)]

use qflow::qconfig::{QConfig, QuantSpec};
use qflow::{FunctionalOp, Graph, SequentialBuilder};
use qnn::float::{Conv2d, Conv2dConfig, Identity, Linear, MaxPool2d, ReLU};
use qnn::fused::{ConvReLU2d, LinearReLU};
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::qtensor::observer::ObserverSpec;
use qnn::{Module, Value};

/// The node names of the fused LeNet5, in order.
pub const LENET_NODES: [&str; 12] = [
    "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc1", "relu3", "fc2",
    "relu4", "fc3",
];

/// The float layers of LeNet5 (28x28 input), deterministic from `seed`.
pub struct LeNetLayers {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    pub fc1: Linear,
    pub fc2: Linear,
    pub fc3: Linear,
}

pub fn layers(seed: u64) -> LeNetLayers {
    let mut rng = Rng::new(seed);
    let mut l = LeNetLayers {
        conv1: Conv2d::new(Conv2dConfig::new(1, 6, 5), &mut rng).unwrap(),
        conv2: Conv2d::new(Conv2dConfig::new(6, 16, 5), &mut rng).unwrap(),
        fc1: Linear::new(16 * 4 * 4, 120, true, &mut rng),
        fc2: Linear::new(120, 84, true, &mut rng),
        fc3: Linear::new(84, 10, true, &mut rng),
    };
    l.conv1.eval();
    l.conv2.eval();
    l.fc1.eval();
    l.fc2.eval();
    l.fc3.eval();
    l
}

/// The fused LeNet5 graph (input `x`, output `fc3`), in eval mode.
pub fn fused_lenet(seed: u64) -> Graph {
    let l = layers(seed);
    let mut g = SequentialBuilder::new("x")
        .add("conv1", ConvReLU2d::new(l.conv1, ReLU::new()))
        .add("relu1", Identity::new())
        .add("pool1", MaxPool2d::new(2).unwrap())
        .add("conv2", ConvReLU2d::new(l.conv2, ReLU::new()))
        .add("relu2", Identity::new())
        .add("pool2", MaxPool2d::new(2).unwrap())
        .functional(
            "flatten",
            FunctionalOp::Flatten {
                start_dim: 1,
                end_dim: -1,
            },
        )
        .add("fc1", LinearReLU::new(l.fc1, ReLU::new()))
        .add("relu3", Identity::new())
        .add("fc2", LinearReLU::new(l.fc2, ReLU::new()))
        .add("relu4", Identity::new())
        .add("fc3", l.fc3)
        .build()
        .unwrap();
    g.eval();
    g
}

/// A batch of `n` random 1x28x28 images in `[-1, 1)` (MNIST-normalized-like).
pub fn images(n: usize, seed: u64) -> Tensor<f32> {
    let mut rng = Rng::new(seed);
    Tensor::from_fn(&[n, 1, 28, 28], |_| rng.uniform(-1.0, 1.0))
}

/// fbgemm-like static qconfig with min/max observers: `default_observer` (quint8 0..127)
/// activations, per-channel symmetric qint8 weights.
pub fn static_qconfig() -> QConfig {
    QConfig {
        activation: QuantSpec::Observer(ObserverSpec::default_observer()),
        weight: QuantSpec::Observer(ObserverSpec::default_per_channel_weight_observer()),
    }
}

/// Runs a one-input, one-output graph on an f32 tensor.
pub fn run_f32(g: &mut Graph, x: &Tensor<f32>) -> Tensor<f32> {
    let mut out = g.run(&[Value::F32(x.clone())]).unwrap();
    out.pop().unwrap().into_f32("test").unwrap()
}

/// The kinds of the graph's nodes, as `name: Kind` strings.
pub fn kinds(g: &Graph) -> Vec<String> {
    g.nodes()
        .map(|n| format!("{}: {}", n.name(), n.op().describe()))
        .collect()
}

/// The unfused float LeNet5 (conv1, relu1, pool1, …, fc3) as the CLI zoo builds it, in the
/// given mode.
pub fn float_lenet(seed: u64, training: bool) -> Graph {
    let l = layers(seed);
    let mut g = SequentialBuilder::new("x")
        .add("conv1", l.conv1)
        .add("relu1", ReLU::new())
        .add("pool1", MaxPool2d::new(2).unwrap())
        .add("conv2", l.conv2)
        .add("relu2", ReLU::new())
        .add("pool2", MaxPool2d::new(2).unwrap())
        .functional(
            "flatten",
            FunctionalOp::Flatten {
                start_dim: 1,
                end_dim: -1,
            },
        )
        .add("fc1", l.fc1)
        .add("relu3", ReLU::new())
        .add("fc2", l.fc2)
        .add("relu4", ReLU::new())
        .add("fc3", l.fc3)
        .build()
        .unwrap();
    g.train(training);
    g
}

/// PyTorch's LeNet5 fusion groups.
pub const LENET_FUSE_GROUPS: [&[&str]; 4] = [
    &["conv1", "relu1"],
    &["conv2", "relu2"],
    &["fc1", "relu3"],
    &["fc2", "relu4"],
];
