//! PyTorch's `_quantize_weight` clamps the qint8 weight to the weight observer's
//! `[quant_min, quant_max]` when that range is narrower than qint8's (`_clamp_weights`). The
//! static path is checked bit for bit against PyTorch in `flow_vs_torch.rs`; here the same rule
//! on the dynamic Linear and on QAT layers, with a 7-bit symmetric per-channel weight observer
//! (`scale = max|w| / 63.5`, so a channel whose largest magnitude is positive quantizes it to 64
//! before clamping).

use qflow::SequentialBuilder;
use qflow::passes::{convert, prepare_qat, quantize_dynamic_with};
use qflow::qconfig::{QConfig, QConfigMapping};
use qnn::float::Linear;
use qnn::init::Rng;
use qnn::qat::FakeQuantSpec;
use qnn::qtensor::observer::{ObserverConfig, ObserverSpec};
use qnn::qtensor::{QDType, QParams, QScheme, QTensor, Tensor, quantize_per_channel};
use qnn::{Module, Value, dynamic, quantized};

fn seven_bit_weights() -> ObserverSpec {
    let mut config = ObserverConfig::new(QDType::QInt8, QScheme::PerChannelSymmetric);
    (config.quant_min, config.quant_max) = (Some(-64), Some(63));
    ObserverSpec::PerChannelMinMax { config, ch_axis: 0 }
}

/// A Linear whose channels alternate between a positive and a negative largest magnitude.
fn linear() -> Linear {
    let mut l = Linear::new(12, 6, true, &mut Rng::new(4));
    for (o, row) in l.weight.value.data_mut().chunks_mut(12).enumerate() {
        row[o] = if o % 2 == 0 { 0.9 } else { -0.9 };
    }
    l
}

/// Checks the clamped ints: in `[-64, 63]`, equal to the unclamped quantization with 64
/// replaced by 63, and at least one value was actually clamped.
fn assert_clamped(float_w: &Tensor<f32>, q: &QTensor) {
    let QParams::PerChannel {
        scales,
        zero_points,
        ..
    } = q.qparams()
    else {
        panic!("per-channel weight expected");
    };
    let raw = quantize_per_channel(float_w, scales, zero_points, 0, QDType::QInt8).unwrap();
    let raw = raw.int_values();
    assert!(raw.contains(&64), "the case must need clamping");
    let want: Vec<i32> = raw.iter().map(|&v| v.clamp(-64, 63)).collect();
    assert_eq!(q.int_values(), want);
}

#[test]
fn dynamic_linear_clamps_to_the_weight_observer_range() {
    let float = linear();
    let mut g = SequentialBuilder::new("x")
        .add("fc", float.clone())
        .build()
        .unwrap();
    let qconfig = QConfig::new(
        ObserverSpec::default_dynamic_quant_observer(),
        seven_bit_weights(),
    );
    quantize_dynamic_with(&mut g, &QConfigMapping::new().set_global(Some(qconfig))).unwrap();
    let q = g
        .module_as::<dynamic::Linear>("fc")
        .unwrap()
        .weight()
        .unwrap();
    assert_clamped(&float.weight.value, &q);
}

#[test]
fn qat_convert_clamps_to_the_weight_fake_quant_range() {
    let float = linear();
    let mut g = SequentialBuilder::new("x")
        .add("fc", float.clone())
        .build()
        .unwrap();
    g.train(true);
    let qconfig = QConfig::new(
        FakeQuantSpec::FakeQuantize {
            observer: ObserverSpec::default_observer(),
        },
        FakeQuantSpec::FakeQuantize {
            observer: seven_bit_weights(),
        },
    );
    prepare_qat(&mut g, &QConfigMapping::new().set_global(Some(qconfig))).unwrap();
    let mut rng = Rng::new(5);
    let x = Tensor::from_fn(&[4, 12], |_| rng.uniform(-1.0, 1.0));
    g.run(&[Value::F32(x)]).unwrap();
    convert(&mut g).unwrap();
    let q = g
        .module_as::<quantized::Linear>("fc")
        .unwrap()
        .weight()
        .unwrap();
    // No training step ran, so the QAT layer's float weight is still the original one.
    assert_clamped(&float.weight.value, &q);
}
