//! QAT graphs in model files (issue 7): a LeNet-style graph after `prepare_qat`, saved halfway
//! through training and loaded, computes, trains and converts bit for bit like the original;
//! toggles and frozen batch norms survive; the QAT layers and fake-quant nodes `prepare_qat` does
//! not insert (Conv1d, per-channel activation fake-quants) round-trip too.

use qflow::io::{describe_graph, graph_from_bytes, graph_to_bytes};
use qflow::passes::{
    convert, disable_observer, freeze_bn_stats, fuse_modules_qat, prepare_qat, set_node_fake_quant,
    set_node_observer,
};
use qflow::qconfig::{Backend, QConfigMapping, default_qat_qconfig, get_default_qat_qconfig};
use qflow::{FunctionalOp, Graph, SequentialBuilder};
use qnn::float::{
    BatchNorm2d, BatchNormConfig, Conv1d, Conv1dConfig, Conv2d, Conv2dConfig, Linear, MaxPool2d,
    ReLU, Sigmoid,
};
use qnn::init::Rng;
use qnn::loss::CrossEntropyLoss;
use qnn::optim::{Optimizer, Sgd, SgdConfig};
use qnn::qat::{self, FakeQuant, FakeQuantSpec};
use qnn::qtensor::observer::{ObserverConfig, ObserverSpec};
use qnn::qtensor::{QDType, QScheme, Tensor};
use qnn::state_dict::state_dict;
use qnn::{Module, ModuleKind, Value};

/// LeNet-shaped float graph whose fusion gives every QAT layer `prepare_qat` swaps in:
/// Conv+BN+ReLU, Conv+BN, Conv+ReLU, Conv, Linear+ReLU, Linear (and a Sigmoid, which gets a
/// fixed-qparams fake-quant).
fn float_model(seed: u64) -> Graph {
    let mut rng = Rng::new(seed);
    let conv = |i, o, k, rng: &mut Rng| Conv2d::new(Conv2dConfig::new(i, o, k), rng).unwrap();
    let bn = |c| BatchNorm2d::new(BatchNormConfig::new(c));
    let mut g = SequentialBuilder::new("x")
        .add("conv1", conv(1, 6, 5, &mut rng))
        .add("bn1", bn(6))
        .add("relu1", ReLU::new())
        .add("pool1", MaxPool2d::new(2).unwrap())
        .add("conv2", conv(6, 16, 5, &mut rng))
        .add("bn2", bn(16))
        .add("pool2", MaxPool2d::new(2).unwrap())
        .add("conv3", conv(16, 16, 1, &mut rng))
        .add("relu3", ReLU::new())
        .add("conv4", conv(16, 8, 1, &mut rng))
        .functional(
            "flatten",
            FunctionalOp::Flatten {
                start_dim: 1,
                end_dim: -1,
            },
        )
        .add("fc1", Linear::new(8 * 4 * 4, 32, true, &mut rng))
        .add("relu4", ReLU::new())
        .add("fc2", Linear::new(32, 10, true, &mut rng))
        .add("sig", Sigmoid::new())
        .build()
        .unwrap();
    g.train(true);
    g
}

/// `float_model` after QAT fusion and `prepare_qat` with the fbgemm QAT QConfig `version`
/// (0: FakeQuantize, 1: FusedMovingAvgObsFakeQuantize), `fc2` with per-tensor weights.
fn qat_model(seed: u64, version: u32) -> Graph {
    let mut g = float_model(seed);
    fuse_modules_qat(
        &mut g,
        &[
            &["conv1", "bn1", "relu1"],
            &["conv2", "bn2"],
            &["conv3", "relu3"],
            &["fc1", "relu4"],
        ],
    )
    .unwrap();
    let mapping = QConfigMapping::new()
        .set_global(Some(
            get_default_qat_qconfig(Backend::Fbgemm, version).unwrap(),
        ))
        .set_name("fc2", Some(default_qat_qconfig()));
    prepare_qat(&mut g, &mapping).unwrap();
    g
}

fn images(n: usize, seed: u64) -> Tensor<f32> {
    let mut rng = Rng::new(seed);
    Tensor::from_fn(&[n, 1, 28, 28], |_| rng.uniform(-1.0, 1.0))
}

fn labels(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = Rng::new(seed + 100);
    (0..n).map(|_| rng.below(10)).collect()
}

fn run(g: &mut Graph, x: &Tensor<f32>) -> Tensor<f32> {
    let mut out = g.run(&[Value::F32(x.clone())]).unwrap();
    out.pop().unwrap().into_f32("test").unwrap()
}

/// One SGD step (fresh optimizer without momentum, so no optimizer state is involved).
fn sgd_step(g: &mut Graph, seed: u64) {
    let x = images(4, seed);
    let logits = run(g, &x);
    let mut ce = CrossEntropyLoss::new();
    ce.forward(&logits, &labels(4, seed)).unwrap();
    g.zero_grad();
    g.backward_all(&[Value::F32(ce.backward().unwrap())])
        .unwrap();
    Sgd::new(SgdConfig::new(0.1)).unwrap().step(g).unwrap();
}

fn roundtrip(g: &Graph) -> Graph {
    graph_from_bytes(&graph_to_bytes(g).unwrap()).unwrap()
}

fn kinds(g: &Graph) -> Vec<Option<ModuleKind>> {
    g.nodes().map(|n| n.kind()).collect()
}

/// The original and the loaded graph agree on everything observable: structure, state dict,
/// modes, outputs (which also update observers and BN statistics), and the state after that.
fn assert_same(a: &mut Graph, b: &mut Graph, seed: u64) {
    assert_eq!(b.node_names(), a.node_names());
    assert_eq!(kinds(b), kinds(a));
    assert_eq!(describe_graph(b).unwrap(), describe_graph(a).unwrap());
    assert_eq!(state_dict(b), state_dict(a));
    assert_eq!(b.is_training(), a.is_training());
    let x = images(3, seed);
    assert_eq!(run(b, &x).data(), run(a, &x).data());
    assert_eq!(state_dict(b), state_dict(a));
}

fn weight_fq<'a>(g: &'a Graph, node: &str) -> &'a dyn FakeQuant {
    let m = g.node(node).unwrap().module().unwrap();
    match m.kind() {
        ModuleKind::QatConvBnReLU2d => m
            .downcast_ref::<qat::ConvBnReLU2d>()
            .unwrap()
            .weight_fake_quant(),
        ModuleKind::QatLinear => m.downcast_ref::<qat::Linear>().unwrap().weight_fake_quant(),
        other => panic!("{other:?}"),
    }
}

fn conv1(g: &Graph) -> &qat::ConvBnReLU2d {
    g.module_as::<qat::ConvBnReLU2d>("conv1").unwrap()
}

#[test]
fn qat_graph_trains_and_converts_identically_after_loading() {
    for version in [0, 1] {
        let mut g = qat_model(1, version);
        assert_eq!(
            kinds(&g)
                .into_iter()
                .flatten()
                .filter(|k| format!("{k:?}").starts_with("Qat"))
                .collect::<Vec<_>>(),
            [
                ModuleKind::QatConvBnReLU2d,
                ModuleKind::QatConvBn2d,
                ModuleKind::QatConvReLU2d,
                ModuleKind::QatConv2d,
                ModuleKind::QatLinearReLU,
                ModuleKind::QatLinear,
            ]
        );
        let fq_kinds: Vec<_> = kinds(&g)
            .into_iter()
            .flatten()
            .filter(|k| format!("{k:?}").ends_with("FakeQuantize"))
            .collect();
        assert!(fq_kinds.contains(&ModuleKind::FixedQParamsFakeQuantize));
        let act = if version == 0 {
            ModuleKind::FakeQuantize
        } else {
            ModuleKind::FusedMovingAvgObsFakeQuantize
        };
        assert!(fq_kinds.contains(&act), "{fq_kinds:?}");

        // Freshly prepared (nothing observed yet), then after a few SGD steps.
        let mut back = roundtrip(&g);
        assert_same(&mut g, &mut back, 7);
        for s in 0..3 {
            sgd_step(&mut g, s);
        }
        let mut back = roundtrip(&g);
        assert_same(&mut g, &mut back, 8);

        // A further training step from both gives the same weights and statistics.
        sgd_step(&mut g, 20);
        sgd_step(&mut back, 20);
        assert_eq!(state_dict(&back), state_dict(&g));

        // Convert of both: the same int8 graph, bit for bit.
        disable_observer(&mut g);
        freeze_bn_stats(&mut g);
        g.eval();
        let mut back = roundtrip(&g);
        assert_same(&mut g, &mut back, 9);
        convert(&mut g).unwrap();
        convert(&mut back).unwrap();
        assert_eq!(
            back.node("conv1").unwrap().kind(),
            Some(ModuleKind::QuantizedConvReLU2d)
        );
        assert_eq!(state_dict(&back), state_dict(&g));
        let x = images(5, 30);
        assert_eq!(run(&mut back, &x).data(), run(&mut g, &x).data());
        // The converted graph is a file too.
        let mut again = roundtrip(&g);
        assert_eq!(run(&mut again, &x).data(), run(&mut g, &x).data());
    }
}

#[test]
fn toggles_and_frozen_batch_norms_survive() {
    let mut g = qat_model(2, 0);
    sgd_step(&mut g, 1);
    set_node_observer(&mut g, "conv1", false).unwrap();
    set_node_fake_quant(&mut g, "fc2", false).unwrap();
    set_node_observer(&mut g, "x.activation_post_process", false).unwrap();
    freeze_bn_stats(&mut g);
    let mut back = roundtrip(&g);
    assert!(!weight_fq(&back, "conv1").observer_enabled());
    assert!(weight_fq(&back, "conv1").fake_quant_enabled());
    assert!(!weight_fq(&back, "fc2").fake_quant_enabled());
    assert!(weight_fq(&back, "fc2").observer_enabled());
    let x_fq = back.node("x.activation_post_process").unwrap().module();
    let x_fq = qflow::passes::qat::as_fake_quant(x_fq.unwrap()).unwrap();
    assert!(!x_fq.observer_enabled());
    assert!(conv1(&back).is_bn_frozen());
    assert!(!conv1(&back).bn().is_training());
    assert!(back.is_training());
    assert_same(&mut g, &mut back, 3);
    sgd_step(&mut g, 4);
    sgd_step(&mut back, 4);
    assert_eq!(state_dict(&back), state_dict(&g));

    // Unfrozen again, and a batch norm left updating in an eval-mode layer
    // (PyTorch's update_bn_stats sets bn.training = True whatever the layer's mode).
    qflow::passes::update_bn_stats(&mut g);
    let back = roundtrip(&g);
    assert!(!conv1(&back).is_bn_frozen());
    assert!(conv1(&back).bn().is_training());
    g.eval();
    qflow::passes::update_bn_stats(&mut g);
    assert!(conv1(&g).bn().is_training());
    let mut back = roundtrip(&g);
    assert!(!back.is_training());
    assert!(conv1(&back).bn().is_training());
    assert_same(&mut g, &mut back, 5);
}

fn moving_avg_per_channel(dtype: QDType, ch_axis: usize) -> ObserverSpec {
    let (qmin, qmax) = if dtype == QDType::QInt8 {
        (-128, 127)
    } else {
        (0, 255)
    };
    ObserverSpec::MovingAveragePerChannelMinMax {
        config: ObserverConfig {
            quant_min: Some(qmin),
            quant_max: Some(qmax),
            ..ObserverConfig::new(
                dtype,
                if dtype == QDType::QInt8 {
                    QScheme::PerChannelSymmetric
                } else {
                    QScheme::PerChannelAffine
                },
            )
        },
        ch_axis,
        averaging_constant: 0.01,
    }
}

#[test]
fn other_qat_layers_and_fake_quant_nodes_round_trip() {
    let mut rng = Rng::new(5);
    let weight = FakeQuantSpec::FakeQuantize {
        observer: moving_avg_per_channel(QDType::QInt8, 0),
    };
    let conv = Conv1d::new(Conv1dConfig::new(3, 4, 3), &mut rng).unwrap();
    // One output: a per-channel weight fake-quant with a single channel.
    let fc = Linear::new(4 * 6, 1, true, &mut rng);
    let per_tensor = ObserverSpec::MinMax(ObserverConfig::new(
        QDType::QUInt8,
        QScheme::PerTensorAffine,
    ));
    let mut g = SequentialBuilder::new("x")
        .add("fq_in", qat::FakeQuantize::new(&per_tensor).unwrap())
        .add("conv", qat::Conv1d::from_float(&conv, &weight).unwrap())
        .add(
            "fq_pc",
            qat::FakeQuantize::new(&moving_avg_per_channel(QDType::QUInt8, 1)).unwrap(),
        )
        .add(
            "fused_pc",
            qat::FusedMovingAvgObsFakeQuantize::new(&moving_avg_per_channel(QDType::QUInt8, 0))
                .unwrap(),
        )
        .add(
            "fixed",
            qat::FixedQParamsFakeQuantize::new(1.0 / 128.0, 128, QDType::QUInt8, 0, 255).unwrap(),
        )
        .functional(
            "flatten",
            FunctionalOp::Flatten {
                start_dim: 1,
                end_dim: -1,
            },
        )
        .add("fc", qat::Linear::from_float(&fc, &weight).unwrap())
        .build()
        .unwrap();
    g.train(true);
    let input = |seed| {
        let mut rng = Rng::new(seed);
        Value::F32(Tensor::from_fn(&[2, 3, 8], |_| rng.uniform(-2.0, 2.0)))
    };
    // Before any observation, then after two.
    let back = roundtrip(&g);
    assert_eq!(state_dict(&back), state_dict(&g));
    for s in 0..2 {
        g.run(&[input(s)]).unwrap();
    }
    let fused = g
        .module_as::<qat::FusedMovingAvgObsFakeQuantize>("fused_pc")
        .unwrap();
    assert_eq!(fused.min_val().shape(), &[2]);
    let mut back = roundtrip(&g);
    assert_eq!(kinds(&back), kinds(&g));
    assert_eq!(state_dict(&back), state_dict(&g));
    for s in 2..4 {
        assert_eq!(
            back.run(&[input(s)]).unwrap(),
            g.run(&[input(s)]).unwrap(),
            "step {s}"
        );
    }
    assert_eq!(state_dict(&back), state_dict(&g));
    let fc = back.module_as::<qat::Linear>("fc").unwrap();
    assert_eq!(fc.weight_fake_quant().scale().shape(), &[1]);
}

#[test]
fn histogram_fake_quant_resumes_exactly() {
    let histogram = ObserverSpec::Histogram {
        config: ObserverConfig::new(QDType::QUInt8, QScheme::PerTensorAffine),
        bins: 256,
        upsample_rate: 16,
    };
    let mut g = SequentialBuilder::new("x")
        .add("hist_fq", qat::FakeQuantize::new(&histogram).unwrap())
        .build()
        .unwrap();
    g.train(true);
    let input = |seed: u64, width: f32| {
        let mut rng = Rng::new(seed);
        Value::F32(Tensor::from_fn(&[64], |_| rng.uniform(-width, width)))
    };
    g.run(&[input(1, 1.0)]).unwrap();
    let mut back = roundtrip(&g);
    assert_eq!(state_dict(&back), state_dict(&g));
    let file = qnn::state_dict::from_safetensors(&graph_to_bytes(&g).unwrap()).unwrap();
    assert!(file.contains_key("hist_fq.activation_post_process.histogram"));
    // A wider batch rebins the histogram: both do it the same way.
    for (s, w) in [(2, 3.0), (3, 0.5)] {
        assert_eq!(
            back.run(&[input(s, w)]).unwrap(),
            g.run(&[input(s, w)]).unwrap()
        );
    }
    assert_eq!(state_dict(&back), state_dict(&g));
    let fq = |g: &Graph| {
        qflow::passes::qat::as_fake_quant(g.node("hist_fq").unwrap().module().unwrap())
            .unwrap()
            .calculate_qparams()
            .unwrap()
    };
    assert_eq!(fq(&back), fq(&g));
}

#[test]
fn file_tensors_carry_pytorch_names_and_the_modules_qparams() {
    for version in [0, 1] {
        let mut g = qat_model(3, version);
        sgd_step(&mut g, 1);
        let bytes = graph_to_bytes(&g).unwrap();
        let file = qnn::state_dict::from_safetensors(&bytes).unwrap();
        let f32s = |key: &str| match file.get(key) {
            Some(qnn::state_dict::StateEntry::F32(t)) => t.data().to_vec(),
            other => panic!("v{version} `{key}`: {other:?}"),
        };
        // PyTorch's names for a QAT ConvBnReLU2d and its weight fake-quant.
        for key in [
            "conv1.weight",
            "conv1.bias",
            "conv1.bn.weight",
            "conv1.bn.bias",
            "conv1.bn.running_mean",
            "conv1.bn.running_var",
            "conv1.bn.num_batches_tracked",
            "conv1.weight_fake_quant.fake_quant_enabled",
            "conv1.weight_fake_quant.observer_enabled",
            "conv1.weight_fake_quant.scale",
            "conv1.weight_fake_quant.zero_point",
            "conv1.weight_fake_quant.activation_post_process.eps",
            "conv1.weight_fake_quant.activation_post_process.min_val",
            "conv1.weight_fake_quant.activation_post_process.max_val",
            "fc2.weight_fake_quant.scale",
            "conv1.activation_post_process.scale",
            "conv1.activation_post_process.zero_point",
            "conv1.activation_post_process.activation_post_process.min_val",
            "sig.activation_post_process.scale",
        ] {
            assert!(file.contains_key(key), "v{version}: no `{key}`");
        }
        // The qparams in the file are the modules' current ones.
        let wfq = weight_fq(&g, "conv1");
        assert_eq!(wfq.scale().shape(), &[6]);
        assert_eq!(
            f32s("conv1.weight_fake_quant.scale"),
            wfq.scale().data().to_vec()
        );
        assert_eq!(
            f32s("fc2.weight_fake_quant.scale"),
            weight_fq(&g, "fc2").scale().data()
        );
        let act = g.node("conv1.activation_post_process").unwrap().module();
        let act = qflow::passes::qat::as_fake_quant(act.unwrap()).unwrap();
        assert_eq!(
            f32s("conv1.activation_post_process.scale"),
            act.scale().data()
        );
        assert_ne!(act.scale().data(), [1.0], "observed after a step");
        assert_eq!(
            f32s("sig.activation_post_process.scale"),
            [1.0 / 256.0],
            "the fixed qparams of sigmoid"
        );
    }
}
