//! The QAT Conv1d/Linear+BatchNorm1d layers in model files: `qat::ConvBnReLU1d`,
//! `qat::ConvBn1d` and `qat::LinearBn1d` are written under their own op names
//! (`QatConvBnReLU1d`, `QatConvBn1d`, `QatLinearBn1d`), and a graph saved halfway through
//! training — BN statistics updating, frozen, or updating in an eval-mode layer — loads with the
//! same structure, state dict and modes, computes the same outputs and trains on identically.

use qflow::io::{describe_graph, graph_from_bytes, graph_to_bytes};
use qflow::passes::{freeze_bn_stats, update_bn_stats};
use qflow::{FunctionalOp, Graph, SequentialBuilder};
use qnn::float::{BatchNorm1d, BatchNormConfig, Conv1d, Conv1dConfig, Linear};
use qnn::init::Rng;
use qnn::qat::{self, FakeQuantSpec};
use qnn::qtensor::observer::{ObserverConfig, ObserverSpec};
use qnn::qtensor::{QDType, QScheme, Tensor};
use qnn::state_dict::state_dict;
use qnn::{Module, Value};

fn weight_spec() -> FakeQuantSpec {
    FakeQuantSpec::FusedMovingAvgObs {
        observer: ObserverSpec::MovingAveragePerChannelMinMax {
            config: ObserverConfig {
                quant_min: Some(-128),
                quant_max: Some(127),
                ..ObserverConfig::new(QDType::QInt8, QScheme::PerChannelSymmetric)
            },
            ch_axis: 0,
            averaging_constant: 0.01,
        },
    }
}

fn bn(c: usize) -> BatchNorm1d {
    BatchNorm1d::new(BatchNormConfig::new(c))
}

/// x `[2, 3, 8]` → ConvBnReLU1d(3→4, k3, pad 1) → ConvBn1d(4→4, k3, pad 1) → flatten →
/// LinearBn1d(32→3), in training mode.
fn graph() -> Graph {
    let mut rng = Rng::new(9);
    let w = weight_spec();
    let c1 = Conv1dConfig {
        padding: 1,
        ..Conv1dConfig::new(3, 4, 3)
    };
    let c2 = Conv1dConfig {
        padding: 1,
        bias: false,
        ..Conv1dConfig::new(4, 4, 3)
    };
    let conv1 = Conv1d::new(c1, &mut rng).unwrap();
    let conv2 = Conv1d::new(c2, &mut rng).unwrap();
    let fc = Linear::new(32, 3, true, &mut rng);
    let mut g = SequentialBuilder::new("x")
        .add(
            "c1",
            qat::ConvBnReLU1d::from_parts(conv1, bn(4), &w).unwrap(),
        )
        .add("c2", qat::ConvBn1d::from_parts(conv2, bn(4), &w).unwrap())
        .functional(
            "flatten",
            FunctionalOp::Flatten {
                start_dim: 1,
                end_dim: -1,
            },
        )
        .add("fc", qat::LinearBn1d::from_parts(fc, bn(3), &w).unwrap())
        .build()
        .unwrap();
    g.train(true);
    g
}

fn input(seed: u64) -> Value {
    let mut rng = Rng::new(seed);
    Value::F32(Tensor::from_fn(&[2, 3, 8], |_| rng.uniform(-2.0, 2.0)))
}

/// Forward, backward of `sum(y)`, `p -= 0.1 * grad`.
fn step(g: &mut Graph, seed: u64) -> Tensor<f32> {
    let y = g.run(&[input(seed)]).unwrap().pop().unwrap();
    let y = y.into_f32("test").unwrap();
    g.zero_grad();
    let ones = Tensor::from_fn(y.shape(), |_| 1.0);
    g.backward_all(&[Value::F32(ones)]).unwrap();
    g.visit_params_mut(&mut |_, p| {
        let grad = p.grad.data().to_vec();
        for (v, d) in p.value.data_mut().iter_mut().zip(grad) {
            *v -= 0.1 * d;
        }
    });
    y
}

fn roundtrip(g: &Graph) -> Graph {
    graph_from_bytes(&graph_to_bytes(g).unwrap()).unwrap()
}

fn bn_state(g: &Graph) -> Vec<(bool, bool)> {
    vec![
        {
            let m = g.module_as::<qat::ConvBnReLU1d>("c1").unwrap();
            (m.is_bn_frozen(), m.bn().is_training())
        },
        {
            let m = g.module_as::<qat::ConvBn1d>("c2").unwrap();
            (m.is_bn_frozen(), m.bn().is_training())
        },
        {
            let m = g.module_as::<qat::LinearBn1d>("fc").unwrap();
            (m.is_bn_frozen(), m.bn().is_training())
        },
    ]
}

/// Same description, state dict, modes; the same outputs and state after two more steps.
fn assert_same(a: &mut Graph, b: &mut Graph, seed: u64) {
    assert_eq!(describe_graph(b).unwrap(), describe_graph(a).unwrap());
    assert_eq!(state_dict(b), state_dict(a));
    assert_eq!(b.is_training(), a.is_training());
    assert_eq!(bn_state(b), bn_state(a));
    for s in seed..seed + 2 {
        assert_eq!(step(b, s).data(), step(a, s).data(), "step {s}");
    }
    assert_eq!(state_dict(b), state_dict(a));
}

#[test]
fn qat_bn1d_layers_round_trip_through_model_files() {
    let mut g = graph();
    let text = describe_graph(&g).unwrap();
    for op in ["QatConvBnReLU1d", "QatConvBn1d", "QatLinearBn1d"] {
        assert!(text.contains(op), "{op} in\n{text}");
    }
    // Before any step (empty per-channel ranges), then after two.
    let mut back = roundtrip(&g);
    assert_same(&mut g, &mut back, 1);
    let mut back = roundtrip(&g);
    assert_same(&mut g, &mut back, 3);

    // Frozen BN statistics (all three layers), then a BN left updating in eval mode.
    assert_eq!(freeze_bn_stats(&mut g), 3);
    let mut back = roundtrip(&g);
    assert_eq!(bn_state(&back), vec![(true, false); 3]);
    assert_same(&mut g, &mut back, 5);
    g.eval();
    assert_eq!(update_bn_stats(&mut g), 3);
    let mut back = roundtrip(&g);
    assert!(!back.is_training());
    assert_eq!(bn_state(&back), vec![(false, true); 3]);
    assert_same(&mut g, &mut back, 7);
}
