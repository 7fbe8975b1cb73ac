//! The fuse pass: PyTorch's fuse_modules semantics by node names (eval folding, QAT fused
//! modules, Identity placeholders keeping names), the automatic fuser, typed errors, and the
//! property that eval-mode fusion preserves the float outputs.

use proptest::prelude::*;
use qflow::passes::{find_fusable, fuse_auto, fuse_modules, fuse_modules_qat};
use qflow::{FunctionalBuilder, FunctionalOp, Graph, QflowError, SequentialBuilder};
use qnn::float::{
    BatchNorm1d, BatchNorm2d, BatchNormConfig, Conv1d, Conv1dConfig, Conv2d, Conv2dConfig, Linear,
    ReLU,
};
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::{Module, ModuleKind, ModuleKind as K, Value};

fn rand(shape: &[usize], seed: u64) -> Value {
    let mut rng = Rng::new(seed);
    Value::F32(Tensor::from_fn(shape, |_| rng.uniform(-1.0, 1.0)))
}

fn close(a: &Value, b: &Value, tol: f32) {
    let (a, b) = (a.as_f32("t").unwrap(), b.as_f32("t").unwrap());
    assert_eq!(a.shape(), b.shape());
    for (x, y) in a.data().iter().zip(b.data()) {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{x} vs {y}");
    }
}

/// conv1 -> bn1 -> relu1 -> conv2 -> bn2, trained a few steps so the running stats are real.
fn conv_net(seed: u64, c: usize) -> Graph {
    let mut rng = Rng::new(seed);
    let mut g = SequentialBuilder::new("x")
        .add(
            "conv1",
            Conv2d::new(Conv2dConfig::new(2, c, 3).padding(1), &mut rng).unwrap(),
        )
        .add("bn1", BatchNorm2d::new(BatchNormConfig::new(c)))
        .add("relu1", ReLU::new())
        .add(
            "conv2",
            Conv2d::new(Conv2dConfig::new(c, 3, 1).bias(false), &mut rng).unwrap(),
        )
        .add("bn2", BatchNorm2d::new(BatchNormConfig::new(3)))
        .build()
        .unwrap();
    for s in 0..3 {
        g.run(&[rand(&[4, 2, 5, 5], seed * 10 + s)]).unwrap();
    }
    // Non-trivial affine parameters.
    let mut k = 0.0f32;
    g.visit_params_mut(&mut |n, p| {
        if n.starts_with("bn") {
            for v in p.value.data_mut() {
                k += 0.37;
                *v += k.sin() * 0.5;
            }
        }
    });
    g
}

fn kinds(g: &Graph) -> Vec<ModuleKind> {
    g.nodes().filter_map(|n| n.kind()).collect()
}

#[test]
fn eval_mode_folds_conv_bn_and_keeps_names() {
    let mut g = conv_net(1, 4);
    g.eval();
    let x = rand(&[2, 2, 5, 5], 7);
    let want = g.run(std::slice::from_ref(&x)).unwrap();
    fuse_modules(&mut g, &[&["conv1", "bn1", "relu1"], &["conv2", "bn2"]]).unwrap();
    assert_eq!(g.node_names(), ["conv1", "bn1", "relu1", "conv2", "bn2"]);
    assert_eq!(
        kinds(&g),
        [
            K::ConvReLU2d,
            K::Identity,
            K::Identity,
            K::Conv2d,
            K::Identity
        ]
    );
    assert!(g.nodes().all(|n| !n.module().unwrap().is_training()));
    close(&g.run(&[x]).unwrap()[0], &want[0], 1e-5);
    // The folded conv has a bias even though conv2 had none (PyTorch's fusion adds one).
    assert!(g.module_as::<Conv2d>("conv2").unwrap().bias.is_some());
    let keys: Vec<String> = qnn::state_dict::state_dict(&g).into_keys().collect();
    assert_eq!(
        keys,
        [
            "conv1.0.bias",
            "conv1.0.weight",
            "conv2.bias",
            "conv2.weight"
        ]
    );
}

#[test]
fn train_mode_builds_qat_fused_modules_with_identical_outputs() {
    let mut g = conv_net(2, 3);
    let mut reference = conv_net(2, 3);
    fuse_modules(&mut g, &[&["conv1", "bn1", "relu1"], &["conv2", "bn2"]]).unwrap();
    assert_eq!(
        kinds(&g),
        [
            K::ConvBnReLU2d,
            K::Identity,
            K::Identity,
            K::ConvBn2d,
            K::Identity
        ]
    );
    let x = rand(&[3, 2, 5, 5], 9);
    assert_eq!(
        g.run(std::slice::from_ref(&x)).unwrap(),
        reference.run(&[x]).unwrap()
    );
    let keys: Vec<String> = qnn::state_dict::state_dict(&g).into_keys().collect();
    assert!(
        keys.contains(&"conv1.1.running_mean".to_string()),
        "{keys:?}"
    );
    assert!(g.nodes().all(|n| n.module().unwrap().is_training()));

    // fuse_modules_qat builds the QAT form from eval-mode modules too.
    let mut h = conv_net(2, 3);
    h.eval();
    fuse_modules_qat(&mut h, &[&["conv2", "bn2"]]).unwrap();
    assert_eq!(h.node("conv2").unwrap().kind(), Some(K::ConvBn2d));
}

#[test]
fn linear_conv1d_and_bn_relu_patterns() {
    let mut rng = Rng::new(3);
    let mut b = FunctionalBuilder::new();
    let x = b.input("x");
    let s = b.input("seq");
    let i = b.input("img");
    let l = b.module("fc", Linear::new(4, 5, true, &mut rng), &[&x]);
    let l = b.module("fc_bn", BatchNorm1d::new(BatchNormConfig::new(5)), &[&l]);
    let l2 = b.module("fc2", Linear::new(5, 2, true, &mut rng), &[&l]);
    let l2 = b.module("fc2_relu", ReLU::new(), &[&l2]);
    let c = b.module(
        "c1",
        Conv1d::new(Conv1dConfig::new(2, 3, 3), &mut rng).unwrap(),
        &[&s],
    );
    let c = b.module("c1_bn", BatchNorm1d::new(BatchNormConfig::new(3)), &[&c]);
    let c = b.module("c1_relu", ReLU::new(), &[&c]);
    let c2 = b.module(
        "c2",
        Conv1d::new(Conv1dConfig::new(3, 3, 1), &mut rng).unwrap(),
        &[&c],
    );
    let c2 = b.module("c2_relu", ReLU::new(), &[&c2]);
    let m = b.module("bn", BatchNorm2d::new(BatchNormConfig::new(2)), &[&i]);
    let m = b.module("bn_relu", ReLU::new(), &[&m]);
    for o in [&l2, &c2, &m] {
        b.output(o);
    }
    let mut g = b.build().unwrap();
    let inputs = [
        rand(&[6, 4], 1),
        rand(&[2, 2, 7], 2),
        rand(&[2, 2, 3, 3], 3),
    ];
    for _ in 0..2 {
        g.run(&inputs).unwrap();
    }
    g.eval();
    let want = g.run(&inputs).unwrap();
    let groups = find_fusable(&g);
    assert_eq!(
        groups,
        [
            vec!["fc", "fc_bn"],
            vec!["fc2", "fc2_relu"],
            vec!["c1", "c1_bn", "c1_relu"],
            vec!["c2", "c2_relu"],
            vec!["bn", "bn_relu"],
        ]
    );
    assert_eq!(fuse_auto(&mut g).unwrap(), groups);
    let got = g.run(&inputs).unwrap();
    for (a, b) in got.iter().zip(&want) {
        close(a, b, 1e-5);
    }
    let fused: Vec<_> = ["fc", "fc2", "c1", "c2", "bn"]
        .iter()
        .map(|n| g.node(n).unwrap().kind().unwrap())
        .collect();
    assert_eq!(
        fused,
        [
            K::Linear,
            K::LinearReLU,
            K::ConvReLU1d,
            K::ConvReLU1d,
            K::BNReLU2d
        ]
    );
    assert!(find_fusable(&g).is_empty());
}

#[test]
fn auto_fuser_respects_dataflow_in_a_residual_block() {
    let mut rng = Rng::new(4);
    let mut b = FunctionalBuilder::new();
    let x = b.input("x");
    let h = b.module(
        "layer1.0.conv1",
        Conv2d::new(Conv2dConfig::new(2, 2, 3).padding(1), &mut rng).unwrap(),
        &[&x],
    );
    let h = b.module(
        "layer1.0.bn1",
        BatchNorm2d::new(BatchNormConfig::new(2)),
        &[&h],
    );
    let h = b.module("layer1.0.relu1", ReLU::new(), &[&h]);
    let h = b.module(
        "layer1.0.conv2",
        Conv2d::new(Conv2dConfig::new(2, 2, 3).padding(1), &mut rng).unwrap(),
        &[&h],
    );
    let bn2 = b.module(
        "layer1.0.bn2",
        BatchNorm2d::new(BatchNormConfig::new(2)),
        &[&h],
    );
    let s = b.functional("layer1.0.add", FunctionalOp::Add, &[&bn2, &x]);
    let r = b.module("layer1.0.relu2", ReLU::new(), &[&s]);
    // conv2 is also a graph output: conv2+bn2 must not fuse (bn2 being read twice would be
    // fine: the Identity left at bn2 still outputs the fused value).
    b.output(&r);
    b.output(&h);
    let g = b.build().unwrap();
    assert_eq!(
        find_fusable(&g),
        [vec!["layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu1"]]
    );
}

#[test]
fn impossible_fusions_are_typed_errors() {
    let mut g = conv_net(5, 2);
    let err = |r: Result<(), QflowError>| match r {
        Err(QflowError::Fuse { reason, .. }) => reason,
        other => panic!("expected a Fuse error, got {other:?}"),
    };
    let r = err(fuse_modules(&mut g, &[&["relu1", "conv2"]]));
    assert!(r.contains("no fuser method"), "{r}");
    let r = err(fuse_modules(&mut g, &[&["conv1", "relu1"]]));
    assert!(r.contains("must read exactly `conv1`"), "{r}");
    let r = err(fuse_modules(&mut g, &[&["bn1", "relu1", "conv2"]]));
    assert!(r.contains("no fuser method"), "{r}");
    let r = err(fuse_modules(&mut g, &[&["conv1"]]));
    assert!(r.contains("at least two"), "{r}");
    assert!(matches!(
        fuse_modules(&mut g, &[&["conv1", "nope"]]),
        Err(QflowError::UnknownNode { .. })
    ));
    // Modes differ.
    g.node_mut("bn1").unwrap().module_mut().unwrap().eval();
    let r = err(fuse_modules(&mut g, &[&["conv1", "bn1"]]));
    assert!(r.contains("same mode"), "{r}");
    // Not a chain: conv2 does not read conv1.
    let r = err(fuse_modules(&mut g, &[&["conv1", "bn2"]]));
    assert!(
        r.contains("no fuser method") || r.contains("must read"),
        "{r}"
    );

    // A fan-out between the nodes.
    let mut rng = Rng::new(6);
    let mut b = FunctionalBuilder::new();
    let x = b.input("x");
    let c = b.module(
        "conv",
        Conv2d::new(Conv2dConfig::new(1, 1, 1), &mut rng).unwrap(),
        &[&x],
    );
    let r = b.module("relu", ReLU::new(), &[&c]);
    let s = b.functional("add", FunctionalOp::Add, &[&r, &c]);
    b.output(&s);
    let mut g = b.build().unwrap();
    let r = err(fuse_modules(&mut g, &[&["conv", "relu"]]));
    assert!(r.contains("also read"), "{r}");
    let r = err(fuse_modules(&mut g, &[&["conv", "add"]]));
    assert!(r.contains("functional add"), "{r}");
    assert_eq!(g.node("conv").unwrap().kind(), Some(ModuleKind::Conv2d));

    // QAT needs an affine batch norm; eval folding needs running statistics.
    let mut rng = Rng::new(7);
    let mk = |cfg: BatchNormConfig, rng: &mut Rng| {
        SequentialBuilder::new("x")
            .add(
                "conv",
                Conv2d::new(Conv2dConfig::new(1, 2, 1), rng).unwrap(),
            )
            .add("bn", BatchNorm2d::new(cfg))
            .build()
            .unwrap()
    };
    let mut g = mk(
        BatchNormConfig {
            affine: false,
            ..BatchNormConfig::new(2)
        },
        &mut rng,
    );
    let r = err(fuse_modules(&mut g, &[&["conv", "bn"]]));
    assert!(r.contains("affine"), "{r}");
    let mut g = mk(
        BatchNormConfig {
            track_running_stats: false,
            ..BatchNormConfig::new(2)
        },
        &mut rng,
    );
    g.eval();
    let r = err(fuse_modules(&mut g, &[&["conv", "bn"]]));
    assert!(r.contains("running statistics"), "{r}");
    assert_eq!(g.node("conv").unwrap().kind(), Some(ModuleKind::Conv2d));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    /// Eval-mode fusion (manual or automatic) keeps the float outputs within f32 rounding.
    #[test]
    fn eval_fusion_preserves_outputs(seed in 0u64..1000, c in 1usize..5, auto in any::<bool>()) {
        let mut g = conv_net(seed, c);
        g.eval();
        let x = rand(&[2, 2, 4, 3], seed + 1);
        let want = g.run(std::slice::from_ref(&x)).unwrap();
        if auto {
            prop_assert_eq!(fuse_auto(&mut g).unwrap().len(), 2);
        } else {
            fuse_modules(&mut g, &[&["conv1", "bn1", "relu1"], &["conv2", "bn2"]]).unwrap();
        }
        let got = g.run(&[x]).unwrap();
        let (a, b) = (got[0].as_f32("t").unwrap(), want[0].as_f32("t").unwrap());
        for (p, q) in a.data().iter().zip(b.data()) {
            prop_assert!((p - q).abs() <= 1e-4 * (1.0 + q.abs()), "{} vs {}", p, q);
        }
    }
}
