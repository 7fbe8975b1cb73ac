//! The ResNet basic block and the MobileNetV2 inverted residual of the PyTorch comparison
//! (`flow_support`) through the automatic fuser, prepare, calibration and convert; property
//! tests that auto-fusion keeps the float outputs and that prepare → convert keeps the graph's
//! interface (input names, output count, output dtype and shapes) on all three models.

mod flow_support;

use flow_support::{MODELS, Model, batch, randomize_bn, run_f32};
use proptest::prelude::*;
use qflow::Graph;
use qflow::numeric_suite::sqnr;
use qflow::passes::{convert, find_fusable, fuse_auto, prepare};
use qflow::qconfig::{Backend, QConfig, QConfigMapping, default_qconfig, get_default_qconfig};
use qnn::Value;
use qnn::qtensor::Tensor;

/// The model with random weights and non-trivial BatchNorm statistics, in eval mode.
fn model_graph(model: Model, seed: u64) -> Graph {
    let mut g = model.graph(seed);
    randomize_bn(&mut g, model, seed);
    g
}

fn kinds(g: &Graph) -> Vec<String> {
    g.nodes()
        .map(|n| format!("{}: {}", n.name(), n.op().describe()))
        .collect()
}

/// Auto-fuse, prepare with `qconfig`, calibrate on three batches, convert.
fn quantize(g: &mut Graph, model: Model, qconfig: QConfig, seed: u64) {
    fuse_auto(g).unwrap();
    prepare(g, &QConfigMapping::new().set_global(Some(qconfig))).unwrap();
    for i in 0..3 {
        run_f32(g, &batch(model, 4, seed * 7 + 100 + i));
    }
    convert(g).unwrap();
}

#[test]
fn the_auto_fuser_finds_pytorchs_groups() {
    for model in MODELS {
        let g = model_graph(model, 1);
        let want: Vec<Vec<String>> = model
            .fuse_groups()
            .into_iter()
            .map(|grp| grp.into_iter().map(str::to_string).collect())
            .collect();
        assert_eq!(find_fusable(&g), want, "{}", model.stem());
    }
}

#[test]
fn resnet_block_fuses_quantizes_and_runs() {
    let model = Model::ResNetBlock;
    let mut float = model_graph(model, 2);
    let mut g = model_graph(model, 2);
    quantize(&mut g, model, get_default_qconfig(Backend::Fbgemm), 2);
    assert_eq!(
        kinds(&g),
        [
            "quant: Quantize",
            "layer1.0.conv1: QuantizedConvReLU2d",
            "layer1.0.bn1: Identity",
            "layer1.0.relu: Identity",
            "layer1.0.conv2: QuantizedConv2d",
            "layer1.0.bn2: Identity",
            "layer1.0.skip_add_relu: QFunctional",
            "dequant: DeQuantize",
        ]
    );
    let x = batch(model, 4, 77);
    let db = sqnr(&run_f32(&mut float, &x), &run_f32(&mut g, &x)).unwrap();
    assert!(db > 25.0, "SQNR {db} dB");
}

#[test]
fn mobilenet_block_fuses_quantizes_and_runs() {
    let model = Model::MobileNetBlock;
    let mut float = model_graph(model, 3);
    let mut g = model_graph(model, 3);
    quantize(&mut g, model, get_default_qconfig(Backend::Fbgemm), 3);
    assert_eq!(
        kinds(&g),
        [
            "quant: Quantize",
            "features.0.conv.0.0: QuantizedConv2d",
            "features.0.conv.0.1: Identity",
            "features.0.conv.0.2: QuantizedReLU6",
            "features.0.conv.1.0: QuantizedConv2d",
            "features.0.conv.1.1: Identity",
            "features.0.conv.1.2: QuantizedReLU6",
            "features.0.conv.2: QuantizedConv2d",
            "features.0.conv.3: Identity",
            "features.0.skip_add: QFunctional",
            "dequant: DeQuantize",
        ]
    );
    let x = batch(model, 4, 78);
    let db = sqnr(&run_f32(&mut float, &x), &run_f32(&mut g, &x)).unwrap();
    assert!(db > 25.0, "SQNR {db} dB");
}

fn model_strategy() -> impl Strategy<Value = Model> {
    prop::sample::select(MODELS.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// Eval-mode auto-fusion (conv-bn folding, conv-relu, linear-relu) keeps the float outputs.
    #[test]
    fn auto_fusion_preserves_float_outputs(model in model_strategy(), seed in 0u64..1000) {
        let mut g = model_graph(model, seed);
        let x = batch(model, 2, seed + 1);
        let before = run_f32(&mut g, &x);
        let groups = fuse_auto(&mut g).unwrap();
        prop_assert_eq!(groups.len(), model.fuse_groups().len());
        let after = run_f32(&mut g, &x);
        prop_assert_eq!(before.shape(), after.shape());
        let peak = before.data().iter().fold(0f32, |m, v| m.max(v.abs()));
        for (a, b) in before.data().iter().zip(after.data()) {
            prop_assert!((a - b).abs() <= 1e-5 * (1.0 + peak), "{} vs {}", a, b);
        }
    }

    /// prepare → calibrate → convert keeps the interface: the same input names, as many
    /// outputs, each f32 with the float graph's shape, for any batch size.
    #[test]
    fn prepare_convert_preserves_the_interface(
        model in model_strategy(),
        seed in 0u64..1000,
        n in 1usize..4,
        histogram in any::<bool>(),
    ) {
        let mut float = model_graph(model, seed);
        let x = batch(model, n, seed + 2);
        let float_out = float.run(&[Value::F32(x.clone())]).unwrap();
        let mut g = model_graph(model, seed);
        let qconfig = if histogram { get_default_qconfig(Backend::Fbgemm) } else { default_qconfig() };
        quantize(&mut g, model, qconfig, seed);
        prop_assert_eq!(g.inputs(), float.inputs());
        prop_assert_eq!(g.outputs().len(), float.outputs().len());
        let out = g.run(&[Value::F32(x)]).unwrap();
        prop_assert_eq!(out.len(), float_out.len());
        for (q, f) in out.iter().zip(&float_out) {
            prop_assert!(matches!(q, Value::F32(_)), "output is {}", q.kind_name());
            prop_assert_eq!(q.shape(), f.shape());
        }
    }
}

#[test]
fn quantized_blocks_accept_other_batch_sizes() {
    // Calibrated on batches of 4, run on 1 and 3 images (shapes follow the input).
    for model in [Model::ResNetBlock, Model::MobileNetBlock] {
        let mut g = model_graph(model, 5);
        quantize(&mut g, model, default_qconfig(), 5);
        for n in [1, 3] {
            let y: Tensor<f32> = run_f32(&mut g, &batch(model, n, 9));
            let [c, h, w] = model.image_shape();
            assert_eq!(y.shape(), &[n, c, h, w]);
        }
    }
}
