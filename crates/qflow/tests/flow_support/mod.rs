//! The three models of the PyTorch flow comparison (`tools/golden/gen_flow.py`) as qflow
//! graphs, with node names equal to the PyTorch module paths: LeNet5, a ResNet basic block
//! (torchvision's quantizable `BasicBlock`, skip add as `add_relu`) and a MobileNetV2
//! inverted-residual block (expand 1×1, depthwise 3×3, project 1×1, ReLU6, skip `add`).
#![allow(dead_code)]

use qflow::{FunctionalBuilder, FunctionalOp, Graph, SequentialBuilder};
use qnn::float::{
    BatchNorm2d, BatchNormConfig, Conv2d, Conv2dConfig, Linear, MaxPool2d, ReLU, ReLU6,
};
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::{Module, Value};

/// One model of the comparison: its golden/safetensors file stem, its graph, PyTorch's fusion
/// groups and the input image shape `[C, H, W]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// LeNet5 (tiny channel counts), input 1×32×32.
    LeNet5,
    /// `layer1.0`: a ResNet basic block, 4 channels, 8×8.
    ResNetBlock,
    /// `features.0`: a MobileNetV2 inverted residual (4 → 8 → 4 channels), 8×8.
    MobileNetBlock,
}

/// All three models.
pub const MODELS: [Model; 3] = [Model::LeNet5, Model::ResNetBlock, Model::MobileNetBlock];

impl Model {
    /// The stem of the model's files under `tests/data/flow`.
    pub fn stem(self) -> &'static str {
        match self {
            Model::LeNet5 => "lenet5",
            Model::ResNetBlock => "resnet",
            Model::MobileNetBlock => "mobilenet",
        }
    }

    /// The input shape of one image `[C, H, W]`.
    pub fn image_shape(self) -> [usize; 3] {
        match self {
            Model::LeNet5 => [1, 32, 32],
            Model::ResNetBlock | Model::MobileNetBlock => [4, 8, 8],
        }
    }

    /// The fusion groups the generator hands to PyTorch's `fuse_modules`.
    pub fn fuse_groups(self) -> Vec<Vec<&'static str>> {
        match self {
            Model::LeNet5 => vec![
                vec!["conv1", "relu1"],
                vec!["conv2", "relu2"],
                vec!["fc1", "relu3"],
                vec!["fc2", "relu4"],
            ],
            Model::ResNetBlock => vec![
                vec!["layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu"],
                vec!["layer1.0.conv2", "layer1.0.bn2"],
            ],
            Model::MobileNetBlock => vec![
                vec!["features.0.conv.0.0", "features.0.conv.0.1"],
                vec!["features.0.conv.1.0", "features.0.conv.1.1"],
                vec!["features.0.conv.2", "features.0.conv.3"],
            ],
        }
    }

    /// The float graph with weights drawn from `seed` (input `x`), in eval mode.
    pub fn graph(self, seed: u64) -> Graph {
        let mut rng = Rng::new(seed);
        let mut g = match self {
            Model::LeNet5 => lenet5(&mut rng),
            Model::ResNetBlock => resnet_block(&mut rng),
            Model::MobileNetBlock => mobilenet_block(&mut rng),
        };
        g.eval();
        g
    }
}

fn conv(cfg: Conv2dConfig, rng: &mut Rng) -> Conv2d {
    Conv2d::new(cfg, rng).expect("valid conv config")
}

fn bn(c: usize) -> BatchNorm2d {
    BatchNorm2d::new(BatchNormConfig::new(c))
}

fn lenet5(rng: &mut Rng) -> Graph {
    SequentialBuilder::new("x")
        .add("conv1", conv(Conv2dConfig::new(1, 3, 5), rng))
        .add("relu1", ReLU::new())
        .add("pool1", MaxPool2d::new(2).expect("pool"))
        .add("conv2", conv(Conv2dConfig::new(3, 6, 5), rng))
        .add("relu2", ReLU::new())
        .add("pool2", MaxPool2d::new(2).expect("pool"))
        .functional(
            "flatten",
            FunctionalOp::Flatten {
                start_dim: 1,
                end_dim: -1,
            },
        )
        .add("fc1", Linear::new(150, 24, true, rng))
        .add("relu3", ReLU::new())
        .add("fc2", Linear::new(24, 16, true, rng))
        .add("relu4", ReLU::new())
        .add("fc3", Linear::new(16, 10, true, rng))
        .build()
        .expect("lenet5 graph")
}

fn resnet_block(rng: &mut Rng) -> Graph {
    let c3 = || Conv2dConfig::new(4, 4, 3).padding(1).bias(false);
    let mut b = FunctionalBuilder::new();
    let x = b.input("x");
    let h = b.module("layer1.0.conv1", conv(c3(), rng), &[&x]);
    let h = b.module("layer1.0.bn1", bn(4), &[&h]);
    let h = b.module("layer1.0.relu", ReLU::new(), &[&h]);
    let h = b.module("layer1.0.conv2", conv(c3(), rng), &[&h]);
    let h = b.module("layer1.0.bn2", bn(4), &[&h]);
    let y = b.functional("layer1.0.skip_add_relu", FunctionalOp::AddRelu, &[&h, &x]);
    b.output(&y);
    b.build().expect("resnet block graph")
}

fn mobilenet_block(rng: &mut Rng) -> Graph {
    let p = "features.0.conv";
    let mut b = FunctionalBuilder::new();
    let x = b.input("x");
    let expand = Conv2dConfig::new(4, 8, 1).bias(false);
    let h = b.module(&format!("{p}.0.0"), conv(expand, rng), &[&x]);
    let h = b.module(&format!("{p}.0.1"), bn(8), &[&h]);
    let h = b.module(&format!("{p}.0.2"), ReLU6::new(), &[&h]);
    let dw = Conv2dConfig::new(8, 8, 3).padding(1).groups(8).bias(false);
    let h = b.module(&format!("{p}.1.0"), conv(dw, rng), &[&h]);
    let h = b.module(&format!("{p}.1.1"), bn(8), &[&h]);
    let h = b.module(&format!("{p}.1.2"), ReLU6::new(), &[&h]);
    let project = Conv2dConfig::new(8, 4, 1).bias(false);
    let h = b.module(&format!("{p}.2"), conv(project, rng), &[&h]);
    let h = b.module(&format!("{p}.3"), bn(4), &[&h]);
    let y = b.functional("features.0.skip_add", FunctionalOp::Add, &[&x, &h]);
    b.output(&y);
    b.build().expect("mobilenet block graph")
}

/// A batch of `n` images of the model's shape, normal-ish values from `seed`.
pub fn batch(model: Model, n: usize, seed: u64) -> Tensor<f32> {
    let [c, h, w] = model.image_shape();
    let mut rng = Rng::new(seed);
    Tensor::from_fn(&[n, c, h, w], |_| rng.uniform(-2.0, 2.0))
}

/// Gives every BatchNorm2d of `g` non-trivial running statistics and affine parameters by
/// running a few training-mode batches through a copy of the graph's batch norms; leaves the
/// graph in eval mode.
pub fn randomize_bn(g: &mut Graph, model: Model, seed: u64) {
    g.train(true);
    for i in 0..3 {
        let x = batch(model, 4, seed * 31 + i);
        g.run(&[Value::F32(x)]).expect("training forward");
    }
    g.eval();
}

/// Runs a one-input, one-output graph and returns the f32 output.
pub fn run_f32(g: &mut Graph, x: &Tensor<f32>) -> Tensor<f32> {
    let mut out = g.run(&[Value::F32(x.clone())]).expect("graph run");
    out.pop()
        .expect("one output")
        .into_f32("test")
        .expect("f32 output")
}
