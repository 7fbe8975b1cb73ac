//! Model files for the static quantized kinds beyond conv/linear (issue 7): BatchNorm2d,
//! BNReLU2d, InstanceNorm2d, GroupNorm, ConvTranspose2d, LayerNorm, Embedding and EmbeddingBag
//! (8-bit and 4-bit rows). Each round trip computes the same bits, and the file's qparams are
//! the module's.

use std::collections::BTreeMap;

use qflow::io::{describe_graph, graph_from_bytes, graph_to_bytes};
use qflow::{FunctionalBuilder, Graph, SequentialBuilder};
use qnn::float::{BagMode, ConvTranspose2dConfig};
use qnn::init::Rng;
use qnn::qtensor::{QDType, QParams, QTensor, Tensor};
use qnn::quantized::{
    BNReLU2d, BatchNorm2d, ConvTranspose2d, Embedding, EmbeddingBag, GroupNorm, InstanceNorm2d,
    LayerNorm, Quantize,
};
use qnn::state_dict::{StateEntry, state_dict};
use qnn::{Module, Value};

fn rand(shape: &[usize], lo: f32, hi: f32, seed: u64) -> Tensor<f32> {
    let mut rng = Rng::new(seed);
    Tensor::from_fn(shape, |_| rng.uniform(lo, hi))
}

/// Saves and loads `g`; the loaded graph has the same description and state, and computes the
/// same values on `input`. Returns the loaded graph and the file's tensors.
fn round_trip(g: &mut Graph, input: &Value) -> (Graph, BTreeMap<String, StateEntry>) {
    let bytes = graph_to_bytes(g).unwrap();
    let mut back = graph_from_bytes(&bytes).unwrap();
    assert_eq!(describe_graph(&back).unwrap(), describe_graph(g).unwrap());
    assert_eq!(state_dict(&back), state_dict(g));
    let want = g.run(std::slice::from_ref(input)).unwrap();
    assert_eq!(back.run(std::slice::from_ref(input)).unwrap(), want);
    (back, qnn::state_dict::from_safetensors(&bytes).unwrap())
}

/// The file holds `<node>.scale` / `<node>.zero_point` equal to the module's output qparams.
fn assert_output_qparams(file: &BTreeMap<String, StateEntry>, node: &str, scale: f64, zp: i64) {
    assert_eq!(
        file[&format!("{node}.scale")],
        StateEntry::F64s(vec![scale]),
        "{node}"
    );
    assert_eq!(
        file[&format!("{node}.zero_point")],
        StateEntry::I64s(vec![zp]),
        "{node}"
    );
}

#[test]
fn quantized_norms_and_conv_transpose_round_trip() {
    let c = 4;
    let p = |seed| Some(rand(&[c], 0.5, 1.5, seed));
    let bn = BatchNorm2d::from_stats(
        p(1).as_ref(),
        p(2).as_ref(),
        &rand(&[c], -0.5, 0.5, 3),
        &rand(&[c], 0.5, 2.0, 4),
        1e-5,
        0.031,
        120,
    )
    .unwrap();
    let bn_relu = BNReLU2d::from_stats(
        None,
        p(5).as_ref(),
        &rand(&[c], -0.5, 0.5, 6),
        &rand(&[c], 0.5, 2.0, 7),
        1e-3,
        0.027,
        3,
    )
    .unwrap();
    let inorm = InstanceNorm2d::new(c, p(8), None, 1e-5, 0.045, 128).unwrap();
    let gnorm = GroupNorm::new(2, c, p(9), p(10), 1e-5, 0.039, 125).unwrap();
    let config = ConvTranspose2dConfig {
        stride: [2, 2],
        output_padding: [1, 1],
        padding: [1, 0],
        ..ConvTranspose2dConfig::new(c, 6, 3)
    };
    let convt = ConvTranspose2d::from_weights(
        config,
        &rand(&config.weight_shape(), -0.5, 0.5, 11),
        Some(&rand(&[6], -0.2, 0.2, 12)),
        &QParams::PerTensor {
            scale: 0.004,
            zero_point: 0,
        },
        0.06,
        110,
    )
    .unwrap();
    let lnorm = LayerNorm::new(
        &[12],
        Some(rand(&[12], 0.5, 1.5, 13)),
        Some(rand(&[12], -0.1, 0.1, 14)),
        1e-5,
        0.05,
        127,
    )
    .unwrap();
    let expected = [
        ("bn", bn.scale(), bn.zero_point()),
        ("bn_relu", bn_relu.scale(), bn_relu.zero_point()),
        ("inorm", inorm.output_scale(), inorm.output_zero_point()),
        ("gnorm", gnorm.output_scale(), gnorm.output_zero_point()),
        ("convt", convt.output_scale(), convt.output_zero_point()),
        ("lnorm", lnorm.output_scale(), lnorm.output_zero_point()),
    ];
    let mut g = SequentialBuilder::new("x")
        .add("quant", Quantize::new(0.02, 128, QDType::QUInt8).unwrap())
        .add("bn", bn)
        .add("bn_relu", bn_relu)
        .add("inorm", inorm)
        .add("gnorm", gnorm)
        .add("convt", convt)
        .add("lnorm", lnorm)
        .build()
        .unwrap();
    g.eval();
    let x = Value::F32(rand(&[2, c, 5, 5], -2.0, 2.0, 15));
    let (back, file) = round_trip(&mut g, &x);
    for (node, scale, zp) in expected {
        assert_output_qparams(&file, node, scale, zp);
    }
    assert_eq!(
        file["convt.weight_scale"],
        StateEntry::F64s(vec![0.004]),
        "per-tensor weight scale"
    );
    let convt = back.module_as::<ConvTranspose2d>("convt").unwrap();
    assert_eq!(convt.config(), &config);
    let bn_relu = back.module_as::<BNReLU2d>("bn_relu").unwrap();
    assert_eq!(bn_relu.eps().to_bits(), 1e-3f64.to_bits());
    assert!(
        back.module_as::<InstanceNorm2d>("inorm")
            .unwrap()
            .bias()
            .is_none()
    );
}

/// A rowwise table of `num × dim` random values in the dtype's range with random float
/// qparams.
fn table(num: usize, dim: usize, dtype: QDType, seed: u64) -> QTensor {
    let mut rng = Rng::new(seed);
    let top = if dtype == QDType::QUInt4x2 { 16 } else { 256 };
    let values: Vec<i32> = (0..num * dim).map(|_| rng.below(top) as i32).collect();
    let qparams = QParams::PerChannelFloat {
        scales: (0..num).map(|_| rng.uniform(0.001, 0.1)).collect(),
        zero_points: (0..num).map(|_| rng.uniform(-20.0, 20.0)).collect(),
        axis: 0,
    };
    QTensor::from_int_values(&[num, dim], &values, dtype, qparams).unwrap()
}

#[test]
fn quantized_embeddings_round_trip() {
    let tables = [
        ("emb8", table(10, 6, QDType::QUInt8, 1)),
        ("emb4", table(10, 7, QDType::QUInt4x2, 2)),
        ("bag8", table(10, 6, QDType::QUInt8, 3)),
        ("bag4", table(10, 5, QDType::QUInt4x2, 4)),
    ];
    let mut b = FunctionalBuilder::new();
    let x = b.input("idx");
    let modules: [Box<dyn Module>; 4] = [
        Box::new(Embedding::from_qtensor(&tables[0].1).unwrap()),
        Box::new(Embedding::from_qtensor(&tables[1].1).unwrap()),
        Box::new(EmbeddingBag::from_qtensor(&tables[2].1, BagMode::Sum).unwrap()),
        Box::new(
            EmbeddingBag::from_qtensor(&tables[3].1, BagMode::Max)
                .unwrap()
                .with_include_last_offset(true),
        ),
    ];
    for ((name, _), m) in tables.iter().zip(modules) {
        let y = b.op(name, qflow::Op::Module(m), &[&x]);
        b.output(&y);
    }
    let mut g = b.build().unwrap();
    g.eval();
    let mut rng = Rng::new(9);
    let idx = Value::I32(Tensor::from_fn(&[3, 4], |_| rng.below(10) as i32));
    let (back, file) = round_trip(&mut g, &idx);
    for (name, t) in &tables {
        let QParams::PerChannelFloat {
            scales,
            zero_points,
            ..
        } = t.qparams()
        else {
            unreachable!()
        };
        let f32s = |k: &str| match &file[&format!("{name}.{k}")] {
            StateEntry::F32(t) => t.data().to_vec(),
            other => panic!("{name}.{k}: {other:?}"),
        };
        assert_eq!(&f32s("weight_scale"), scales, "{name}");
        assert_eq!(&f32s("weight_zero_point"), zero_points, "{name}");
    }
    let bag4 = back.module_as::<EmbeddingBag>("bag4").unwrap();
    assert_eq!(bag4.mode(), BagMode::Max);
    assert!(bag4.include_last_offset());
    assert_eq!(bag4.dtype(), QDType::QUInt4x2);
    assert_eq!(bag4.weight().unwrap(), tables[3].1);
}
