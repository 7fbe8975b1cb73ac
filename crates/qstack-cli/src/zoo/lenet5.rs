//! LeNet5 for 1×32×32 inputs as a qflow [`Graph`], with PyTorch-style node names (`conv1`,
//! `relu1`, `pool1`, …) so that qflow's passes apply and a PyTorch state dict of the usual
//! `conv1`/`conv2`/`fc1`/`fc2`/`fc3` module loads as is.

use qflow::{FunctionalOp, Graph, SequentialBuilder};
use qnn::float::{Conv2d, Conv2dConfig, Linear, MaxPool2d, ReLU};
use qnn::init::Rng;

/// The child names, in order: what a graph built from this model calls its nodes.
pub const LENET5_NODES: [&str; 12] = [
    "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc1", "relu3", "fc2",
    "relu4", "fc3",
];

/// conv1 1→6 k5, relu1, pool1 (max 2), conv2 6→16 k5, relu2, pool2, flatten, fc1 400→120,
/// relu3, fc2 120→84, relu4, fc3 84→10 (flatten is a functional node); graph input `x`;
/// PyTorch's default init drawn from `rng`.
pub fn lenet5(rng: &mut Rng) -> crate::Result<Graph> {
    let [c1, r1, p1, c2, r2, p2, fl, f1, r3, f2, r4, f3] = LENET5_NODES;
    Ok(SequentialBuilder::new("x")
        .add(c1, Conv2d::new(Conv2dConfig::new(1, 6, 5), rng)?)
        .add(r1, ReLU::new())
        .add(p1, MaxPool2d::new(2)?)
        .add(c2, Conv2d::new(Conv2dConfig::new(6, 16, 5), rng)?)
        .add(r2, ReLU::new())
        .add(p2, MaxPool2d::new(2)?)
        .functional(
            fl,
            FunctionalOp::Flatten {
                start_dim: 1,
                end_dim: -1,
            },
        )
        .add(f1, Linear::new(16 * 5 * 5, 120, true, rng))
        .add(r3, ReLU::new())
        .add(f2, Linear::new(120, 84, true, rng))
        .add(r4, ReLU::new())
        .add(f3, Linear::new(84, 10, true, rng))
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use qnn::qtensor::Tensor;
    use qnn::{Module, Value};

    #[test]
    fn shapes_and_pytorch_names() {
        let mut m = lenet5(&mut Rng::new(0)).unwrap();
        let y = m
            .forward(&Value::F32(Tensor::zeros(&[2, 1, 32, 32])))
            .unwrap();
        assert_eq!(y.shape(), Some(&[2, 10][..]));
        let mut names = Vec::new();
        m.visit_params(&mut |n, p| names.push((n.to_string(), p.shape().to_vec())));
        let expected: Vec<(String, Vec<usize>)> = [
            ("conv1.weight", vec![6, 1, 5, 5]),
            ("conv1.bias", vec![6]),
            ("conv2.weight", vec![16, 6, 5, 5]),
            ("conv2.bias", vec![16]),
            ("fc1.weight", vec![120, 400]),
            ("fc1.bias", vec![120]),
            ("fc2.weight", vec![84, 120]),
            ("fc2.bias", vec![84]),
            ("fc3.weight", vec![10, 84]),
            ("fc3.bias", vec![10]),
        ]
        .into_iter()
        .map(|(n, s)| (n.to_string(), s))
        .collect();
        assert_eq!(names, expected);
        let dynm: &dyn Module = &m;
        assert_eq!(dynm.num_parameters(), 61_706);
        let nodes: Vec<&str> = LENET5_NODES
            .iter()
            .filter(|n| m.node(n).is_some())
            .copied()
            .collect();
        assert_eq!(nodes, LENET5_NODES);
    }
}
