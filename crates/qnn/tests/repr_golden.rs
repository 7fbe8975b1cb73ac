//! `qnn::repr::module_str` against PyTorch's `repr(module)` (torch 2.15.0; data from
//! `tools/golden/gen_repr.py`): every family qnn prints — float layers and containers
//! (MultiheadAttention's `out_proj`, TransformerEncoderLayer's eight children), fused modules,
//! QAT layers with their `weight_fake_quant`, the three fake-quant modules with their
//! `activation_post_process`, static quantized and dynamic modules — built with the
//! generator's arguments and compared byte for byte, multi-line trees included.
//!
//! Pools print a square size as an int (`output_size=1`) and an oblong one as a tuple: qstack
//! keeps the pair, not whether the user wrote `1` or `(1, 1)` (PyTorch prints what was passed),
//! so the golden cases use ints for square sizes.
//!
//! Known difference, not covered here: PyTorch prints tensors of more than a few elements with
//! column alignment and line wrapping (a per-channel `scale=tensor([…])` after calibration);
//! qstack prints their elements in PyTorch's number format on one line.

#[allow(dead_code)]
#[path = "../../qtensor/tests/golden_support/format.rs"]
mod format;

use std::collections::BTreeMap;

use qnn::float::{self, BagMode};
use qnn::init::Rng;
use qnn::qat::{self, FakeQuantSpec};
use qnn::qtensor::observer::{ObserverConfig, ObserverSpec};
use qnn::qtensor::{QDType, QParams, QScheme, Tensor};
use qnn::repr::module_str;
use qnn::{Module, dynamic, fused, quantized};

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/repr/modules.golden"
);

fn golden() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(DATA).unwrap();
    let file = format::parse(&text).unwrap();
    assert_eq!(file.cases.len(), file.declared_cases);
    file.cases
        .iter()
        .map(|c| {
            let s = String::from_utf8(c.u8s("repr").to_vec()).unwrap();
            (c.name.clone(), s)
        })
        .collect()
}

fn moving_average(qscheme: QScheme, range: Option<(i64, i64)>, reduce: bool) -> ObserverConfig {
    let dtype = if matches!(
        qscheme,
        QScheme::PerTensorSymmetric | QScheme::PerChannelSymmetric
    ) {
        QDType::QInt8
    } else {
        QDType::QUInt8
    };
    ObserverConfig {
        quant_min: range.map(|r| r.0),
        quant_max: range.map(|r| r.1),
        reduce_range: reduce,
        ..ObserverConfig::new(dtype, qscheme)
    }
}

fn per_tensor(config: ObserverConfig) -> ObserverSpec {
    ObserverSpec::MovingAverageMinMax {
        config,
        averaging_constant: 0.01,
    }
}

fn per_channel(config: ObserverConfig) -> ObserverSpec {
    ObserverSpec::MovingAveragePerChannelMinMax {
        config,
        ch_axis: 0,
        averaging_constant: 0.01,
    }
}

/// `default_fused_per_channel_wt_fake_quant`, the weight fake-quant of fbgemm's QAT qconfig.
fn qat_weight() -> FakeQuantSpec {
    FakeQuantSpec::FusedMovingAvgObs {
        observer: per_channel(moving_average(
            QScheme::PerChannelSymmetric,
            Some((-128, 127)),
            false,
        )),
    }
}

fn conv2d(c: float::Conv2dConfig, rng: &mut Rng) -> float::Conv2d {
    float::Conv2d::new(c, rng).unwrap()
}

fn bn2d(c: usize) -> float::BatchNorm2d {
    float::BatchNorm2d::new(float::BatchNormConfig::new(c))
}

fn per_tensor_w() -> QParams {
    QParams::PerTensor {
        scale: 0.01,
        zero_point: 0,
    }
}

fn float_modules(rng: &mut Rng) -> Vec<(&'static str, Box<dyn Module>)> {
    let conv1d = float::Conv1dConfig {
        stride: 2,
        padding: 1,
        dilation: 2,
        groups: 2,
        bias: false,
        ..float::Conv1dConfig::new(2, 4, 3)
    };
    let conv2d_args = float::Conv2dConfig {
        kernel_size: [3, 5],
        stride: [2, 1],
        padding: [1, 2],
        dilation: [1, 2],
        groups: 2,
        ..float::Conv2dConfig::new(4, 8, 3)
    };
    let convt = float::ConvTranspose2dConfig {
        stride: [2, 2],
        padding: [1, 1],
        output_padding: [1, 1],
        ..float::ConvTranspose2dConfig::new(2, 4, 3)
    };
    let mut tel = float::TransformerEncoderConfig::new(8, 2);
    tel.dim_feedforward = 16;
    let mut tel_gelu = tel;
    tel_gelu.dropout = 0.0;
    tel_gelu.gelu = true;
    tel_gelu.batch_first = true;
    tel_gelu.norm_first = true;
    vec![
        ("linear", Box::new(float::Linear::new(4, 3, true, rng))),
        (
            "linear_nobias",
            Box::new(float::Linear::new(4, 3, false, rng)),
        ),
        ("conv1d", Box::new(float::Conv1d::new(conv1d, rng).unwrap())),
        (
            "conv2d",
            Box::new(conv2d(float::Conv2dConfig::new(1, 6, 5), rng)),
        ),
        ("conv2d_args", Box::new(conv2d(conv2d_args, rng))),
        (
            "conv_transpose2d",
            Box::new(float::ConvTranspose2d::new(convt, rng).unwrap()),
        ),
        (
            "batchnorm1d",
            Box::new(float::BatchNorm1d::new(float::BatchNormConfig::new(5))),
        ),
        ("batchnorm2d", Box::new(bn2d(6))),
        ("relu", Box::new(float::ReLU::new())),
        ("relu6", Box::new(float::ReLU6::new())),
        ("leaky_relu", Box::new(float::LeakyReLU::new(0.2))),
        ("elu", Box::new(float::Elu::new(1.0))),
        ("hardswish", Box::new(float::Hardswish::new())),
        ("hardsigmoid", Box::new(float::Hardsigmoid::new())),
        ("gelu", Box::new(float::Gelu::new())),
        ("silu", Box::new(float::SiLU::new())),
        ("sigmoid", Box::new(float::Sigmoid::new())),
        ("tanh", Box::new(float::Tanh::new())),
        ("softmax", Box::new(float::Softmax::new(1))),
        ("log_softmax", Box::new(float::LogSoftmax::new(1))),
        ("maxpool2d", Box::new(float::MaxPool2d::new(2).unwrap())),
        (
            "maxpool2d_args",
            Box::new(float::MaxPool2d::with_options([3; 2], [2; 2], [1; 2], [1; 2], true).unwrap()),
        ),
        ("avgpool2d", Box::new(float::AvgPool2d::new(2).unwrap())),
        (
            "avgpool2d_args",
            Box::new(
                float::AvgPool2d::with_options([3; 2], [2; 2], [1; 2], true, false, None).unwrap(),
            ),
        ),
        (
            "adaptive_avgpool2d",
            Box::new(float::AdaptiveAvgPool2d::new([1, 1]).unwrap()),
        ),
        (
            "adaptive_avgpool2d_pair",
            Box::new(float::AdaptiveAvgPool2d::new([2, 3]).unwrap()),
        ),
        ("flatten", Box::new(float::Flatten::new(1, -1))),
        ("dropout", Box::new(float::Dropout::new(0.25, 0).unwrap())),
        ("identity", Box::new(float::Identity::new())),
        (
            "sequential",
            Box::new(
                float::Sequential::new()
                    .push(float::Linear::new(4, 3, true, rng))
                    .push(float::ReLU::new()),
            ),
        ),
        (
            "mha",
            Box::new(float::MultiheadAttention::new(8, 2, true, false, rng).unwrap()),
        ),
        (
            "mha_nobias",
            Box::new(float::MultiheadAttention::new(8, 2, false, true, rng).unwrap()),
        ),
        (
            "transformer_encoder_layer",
            Box::new(float::TransformerEncoderLayer::new(tel, rng).unwrap()),
        ),
        (
            "transformer_encoder_layer_gelu",
            Box::new(float::TransformerEncoderLayer::new(tel_gelu, rng).unwrap()),
        ),
    ]
}

fn fused_and_qat_modules(rng: &mut Rng) -> Vec<(&'static str, Box<dyn Module>)> {
    let c156 = float::Conv2dConfig::new(1, 6, 5);
    let no_bias = float::Conv2dConfig {
        bias: false,
        ..c156
    };
    let cbr = fused::ConvBnReLU2d::new(conv2d(no_bias, rng), bn2d(6), float::ReLU::new()).unwrap();
    let cb = fused::ConvBn2d::new(conv2d(c156, rng), bn2d(6)).unwrap();
    // PyTorch's QAT Conv+BN modules have no conv bias unless `bias=True`.
    let c1 = float::Conv1dConfig::new(3, 6, 5);
    let c1_relu = float::Conv1dConfig {
        stride: 2,
        padding: 1,
        bias: false,
        ..c1
    };
    let conv1d = |c, rng: &mut Rng| float::Conv1d::new(c, rng).unwrap();
    let bn1d = |c| float::BatchNorm1d::new(float::BatchNormConfig::new(c));
    let w = qat_weight();
    let fq = |spec: FakeQuantSpec| spec.build().unwrap();
    let act = moving_average(QScheme::PerTensorAffine, Some((0, 255)), true);
    let weight = moving_average(QScheme::PerTensorSymmetric, Some((-128, 127)), false);
    let weight_pc = moving_average(QScheme::PerChannelSymmetric, Some((-128, 127)), false);
    let mut observed = fq(FakeQuantSpec::FakeQuantize {
        observer: per_tensor(act.clone()),
    });
    observed
        .forward(&qnn::Value::F32(
            Tensor::new(&[1, 3], vec![-1.0, 0.5, 2.0]).unwrap(),
        ))
        .unwrap();
    let fixed = |scale: f64, zero_point| FakeQuantSpec::FixedQParams {
        scale,
        zero_point,
        dtype: QDType::QUInt8,
        quant_min: 0,
        quant_max: 255,
    };
    vec![
        (
            "fused_conv_relu2d",
            Box::new(fused::ConvReLU2d::new(
                conv2d(c156, rng),
                float::ReLU::new(),
            )),
        ),
        (
            "fused_conv_bn_relu2d",
            Box::new(
                fused::ConvBnReLU2d::new(conv2d(c156, rng), bn2d(6), float::ReLU::new()).unwrap(),
            ),
        ),
        (
            "fused_linear_relu",
            Box::new(fused::LinearReLU::new(
                float::Linear::new(4, 3, true, rng),
                float::ReLU::new(),
            )),
        ),
        (
            "fused_bn_relu2d",
            Box::new(fused::BNReLU2d::new(bn2d(6), float::ReLU::new())),
        ),
        (
            "fake_quantize",
            fq(FakeQuantSpec::FakeQuantize {
                observer: per_tensor(moving_average(
                    QScheme::PerTensorAffine,
                    Some((0, 255)),
                    false,
                )),
            }),
        ),
        (
            "default_fake_quant",
            fq(FakeQuantSpec::FakeQuantize {
                observer: per_tensor(act.clone()),
            }),
        ),
        (
            "default_weight_fake_quant",
            fq(FakeQuantSpec::FakeQuantize {
                observer: per_tensor(weight),
            }),
        ),
        (
            "per_channel_weight_fake_quant",
            fq(FakeQuantSpec::FakeQuantize {
                observer: per_channel(weight_pc),
            }),
        ),
        ("fixed_qparams_fake_quant", fq(fixed(1.0 / 256.0, 0))),
        (
            "fixed_qparams_fake_quant_neg1to1",
            fq(fixed(2.0 / 256.0, 128)),
        ),
        (
            "fused_fake_quant",
            fq(FakeQuantSpec::FusedMovingAvgObs {
                observer: per_tensor(moving_average(
                    QScheme::PerTensorAffine,
                    Some((0, 255)),
                    false,
                )),
            }),
        ),
        ("fused_per_channel_fake_quant", fq(w.clone())),
        ("default_fake_quant_observed", observed),
        (
            "qat_linear",
            Box::new(qat::Linear::from_float(&float::Linear::new(4, 3, true, rng), &w).unwrap()),
        ),
        (
            "qat_conv2d",
            Box::new(qat::Conv2d::from_float(&conv2d(c156, rng), &w).unwrap()),
        ),
        (
            "qat_conv_relu2d",
            Box::new(
                qat::ConvReLU2d::from_fused(
                    &fused::ConvReLU2d::new(conv2d(c156, rng), float::ReLU::new()),
                    &w,
                )
                .unwrap(),
            ),
        ),
        (
            "qat_linear_relu",
            Box::new(
                qat::LinearReLU::from_fused(
                    &fused::LinearReLU::new(
                        float::Linear::new(4, 3, true, rng),
                        float::ReLU::new(),
                    ),
                    &w,
                )
                .unwrap(),
            ),
        ),
        (
            "qat_conv_bn2d",
            Box::new(qat::ConvBn2d::from_fused(&cb, &w).unwrap()),
        ),
        (
            "qat_conv_bn_relu2d",
            Box::new(qat::ConvBnReLU2d::from_fused(&cbr, &w).unwrap()),
        ),
        (
            "qat_conv_bn1d",
            Box::new(qat::ConvBn1d::from_parts(conv1d(c1, rng), bn1d(6), &w).unwrap()),
        ),
        (
            "qat_conv_bn_relu1d",
            Box::new(qat::ConvBnReLU1d::from_parts(conv1d(c1_relu, rng), bn1d(6), &w).unwrap()),
        ),
        (
            "qat_linear_bn1d",
            Box::new(
                qat::LinearBn1d::from_parts(float::Linear::new(4, 3, true, rng), bn1d(3), &w)
                    .unwrap(),
            ),
        ),
    ]
}

fn quantized_modules(rng: &mut Rng) -> Vec<(&'static str, Box<dyn Module>)> {
    let bn = bn2d(6);
    let convt = |stride, padding, output_padding, bias| {
        let cfg = float::ConvTranspose2dConfig {
            stride: [stride; 2],
            padding: [padding; 2],
            output_padding: [output_padding; 2],
            bias,
            ..float::ConvTranspose2dConfig::new(2, 4, 3)
        };
        let w = Tensor::from_fn(&cfg.weight_shape(), |_| 0.0f32);
        let b = Tensor::zeros(&[4]);
        quantized::ConvTranspose2d::from_weights(
            cfg,
            &w,
            bias.then_some(&b),
            &per_tensor_w(),
            0.1,
            3,
        )
        .unwrap()
    };
    let float_qparams = QParams::PerChannelFloat {
        scales: vec![0.1; 10],
        zero_points: vec![0.0; 10],
        axis: 0,
    };
    let emb = float::Embedding::new(10, 4, None, rng).unwrap();
    let mut bag = |mode| float::EmbeddingBag::new(10, 4, mode, rng);
    let bag_sum = bag(BagMode::Sum);
    let bag_mean = bag(BagMode::Mean);
    let lin = float::Linear::new(4, 3, true, rng);
    let conv_w = Tensor::from_fn(&[6, 1, 5, 5], |_| 0.0f32);
    let conv_opts = quantized::ConvOptions {
        padding: [2, 2],
        ..Default::default()
    };
    vec![
        (
            "q_batchnorm2d",
            Box::new(quantized::BatchNorm2d::from_float(&bn, 0.1, 3).unwrap()),
        ),
        (
            "q_bn_relu2d",
            Box::new(quantized::BNReLU2d::from_float(&bn, 0.1, 3).unwrap()),
        ),
        ("q_conv_transpose2d", Box::new(convt(2, 1, 1, true))),
        ("q_conv_transpose2d_plain", Box::new(convt(1, 0, 0, false))),
        (
            "q_embedding",
            Box::new(
                quantized::Embedding::from_float(&emb, &float_qparams, QDType::QUInt8).unwrap(),
            ),
        ),
        (
            "q_embedding_4bit",
            Box::new(
                quantized::Embedding::from_float(&emb, &float_qparams, QDType::QUInt4x2).unwrap(),
            ),
        ),
        (
            "q_embedding_bag",
            Box::new(
                quantized::EmbeddingBag::from_float(&bag_sum, &float_qparams, QDType::QUInt8)
                    .unwrap(),
            ),
        ),
        (
            "q_embedding_bag_4bit",
            Box::new(
                quantized::EmbeddingBag::from_float(&bag_mean, &float_qparams, QDType::QUInt4x2)
                    .unwrap(),
            ),
        ),
        (
            "q_linear",
            Box::new(quantized::Linear::from_float(&lin, &per_tensor_w(), 0.1, 3).unwrap()),
        ),
        (
            "q_conv2d",
            Box::new(
                quantized::Conv2d::from_weights(
                    &conv_w,
                    Some(&Tensor::zeros(&[6])),
                    conv_opts,
                    &per_tensor_w(),
                    0.1,
                    3,
                )
                .unwrap(),
            ),
        ),
        (
            "q_maxpool2d_ceil",
            Box::new(quantized::MaxPool2d::new([3; 2], [2; 2], [1; 2], [1; 2], true).unwrap()),
        ),
        (
            "q_avgpool2d_ceil",
            Box::new(quantized::AvgPool2d::new([3; 2], [2; 2], [1; 2], true, false, None).unwrap()),
        ),
        ("q_relu6", Box::new(quantized::ReLU6::new())),
        (
            "q_hardswish",
            Box::new(quantized::Hardswish::new(0.1, 3).unwrap()),
        ),
        ("q_sigmoid", Box::new(quantized::Sigmoid::new())),
        (
            "q_functional",
            Box::new(quantized::QFunctional::new(quantized::FunctionalOp::Add, 1.0, 0).unwrap()),
        ),
        (
            "quantize",
            Box::new(quantized::Quantize::new(0.1, 3, QDType::QUInt8).unwrap()),
        ),
        ("dequantize", Box::new(quantized::DeQuantize::new())),
        (
            "dyn_linear",
            Box::new(dynamic::Linear::from_float(&lin, &per_tensor_w()).unwrap()),
        ),
        (
            "dyn_linear_fp16",
            Box::new(dynamic::Linear::from_float_fp16(&lin).unwrap()),
        ),
    ]
}

#[test]
fn every_module_prints_as_pytorch_repr() {
    let want = golden();
    let mut rng = Rng::new(3);
    let mut modules = float_modules(&mut rng);
    modules.extend(fused_and_qat_modules(&mut rng));
    modules.extend(quantized_modules(&mut rng));
    let mut failures = Vec::new();
    for (name, module) in &modules {
        let expected = want
            .get(*name)
            .unwrap_or_else(|| panic!("no golden case `{name}`"));
        let got = module_str(module.as_ref());
        if &got != expected {
            failures.push(format!("{name}:\n  qstack:\n{got}\n  PyTorch:\n{expected}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every golden case is built above (the generator and this test stay in step).
    assert_eq!(modules.len(), want.len());
}
