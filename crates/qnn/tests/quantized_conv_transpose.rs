//! Quantized ConvTranspose2d against torch 2.15 goldens (`tools/golden/gen_qmodules2.py`,
//! family `conv_transpose2d`, fbgemm engine): bit-exact outputs for strides, padding, output
//! padding, dilation and groups, built through `from_float` from the float weight (whose
//! quantization must also match torch's); safetensors round trip; typed errors.

#[allow(dead_code)]
#[path = "../../qtensor/tests/golden_support/format.rs"]
mod format;

use format::Case;
use qnn::float::{self, ConvTranspose2dConfig};
use qnn::qtensor::{IntRepr, Layout, QDType, QParams, QTensor, Tensor, quantize_per_tensor};
use qnn::quantized::ConvTranspose2d;
use qnn::state_dict::{StateEntry, from_safetensors, load_state_dict, state_dict, to_safetensors};
use qnn::{Module, QnnError, Value};

fn cases() -> Vec<Case> {
    let g = format::parse(include_str!("data/qmodules2/conv_transpose2d.golden")).expect("parse");
    assert_eq!(g.cases.len(), g.declared_cases);
    assert!(g.cases.len() >= 6);
    g.cases
}

fn pair(c: &Case, key: &str) -> [usize; 2] {
    let v = c.shape(key);
    [v[0], v[1]]
}

fn config(c: &Case) -> ConvTranspose2dConfig {
    let shape = c.shape("shape");
    ConvTranspose2dConfig {
        in_channels: shape[1],
        out_channels: c.shape("out_channels")[0],
        kernel_size: pair(c, "kernel"),
        stride: pair(c, "stride"),
        padding: pair(c, "padding"),
        output_padding: pair(c, "output_padding"),
        dilation: pair(c, "dilation"),
        groups: c.shape("groups")[0],
        bias: c.str("has_bias") == "yes",
    }
}

fn float_layer(c: &Case) -> float::ConvTranspose2d {
    let cfg = config(c);
    let w = Tensor::new(&cfg.weight_shape(), c.f32s("w_float").to_vec()).unwrap();
    let b = cfg
        .bias
        .then(|| Tensor::new(&[cfg.out_channels], c.f32s("bias").to_vec()).unwrap());
    float::ConvTranspose2d::from_tensors(cfg, w, b).unwrap()
}

fn build(c: &Case) -> ConvTranspose2d {
    let wq = QParams::PerTensor {
        scale: c.f64("w_scale"),
        zero_point: c.i64("w_zp"),
    };
    ConvTranspose2d::from_float(&float_layer(c), &wq, c.f64("out_scale"), c.i64("out_zp")).unwrap()
}

fn input(c: &Case) -> QTensor {
    let values: Vec<i32> = c.u8s("x_q").iter().map(|&v| i32::from(v)).collect();
    let qp = QParams::PerTensor {
        scale: c.f64("x_scale"),
        zero_point: c.i64("x_zp"),
    };
    QTensor::from_int_values(&c.shape("shape"), &values, QDType::QUInt8, qp).unwrap()
}

fn logical(v: &Value) -> (Vec<usize>, Vec<u8>) {
    let Value::Quantized(q) = v else {
        panic!("quantized output expected")
    };
    assert_eq!(q.layout(), Layout::ChannelsLast);
    let r = q.to_row_major().unwrap();
    (
        r.shape().to_vec(),
        r.int_values().iter().map(|&v| v as u8).collect(),
    )
}

#[test]
fn outputs_are_bit_exact_with_torch() {
    let mut checked = 0;
    for c in cases() {
        let mut m = build(&c);
        // the weight quantized by from_float equals torch's
        let IntRepr::I8(w) = m.weight().unwrap().int_repr() else {
            panic!("qint8 weight")
        };
        let want_w: Vec<i8> = c.u8s("w").iter().map(|&b| b as i8).collect();
        assert_eq!(w.data(), want_w.as_slice(), "{}: weight", c.name);

        let x = input(&c);
        let (shape, y) = logical(&m.forward(&Value::Quantized(x.clone())).unwrap());
        assert_eq!(shape, c.shape("out_shape"), "{}", c.name);
        assert_eq!(y, c.u8s("y"), "{}", c.name);
        assert!(
            y.iter().any(|&v| v != 0 && v != 255),
            "{}: all clamped",
            c.name
        );
        let (_, y_cl) = logical(
            &m.forward(&Value::Quantized(x.to_channels_last().unwrap()))
                .unwrap(),
        );
        assert_eq!(y_cl, y, "{} channels-last input", c.name);
        checked += y.len();
    }
    assert!(checked > 1000);
}

#[test]
fn safetensors_round_trip_gives_identical_outputs() {
    for c in cases() {
        let mut src = build(&c);
        let dict = from_safetensors(&to_safetensors(&state_dict(&src)).unwrap()).unwrap();
        for key in [
            "weight",
            "weight_scale",
            "weight_zero_point",
            "weight_axis",
            "scale",
            "zero_point",
        ] {
            assert!(dict.contains_key(key), "{key}");
        }
        assert_eq!(dict.contains_key("bias"), c.str("has_bias") == "yes");
        // a fresh layer of the same shape: zero weight, other qparams
        let cfg = config(&c);
        let zero = float::ConvTranspose2d::from_tensors(
            cfg,
            Tensor::zeros(&cfg.weight_shape()),
            cfg.bias.then(|| Tensor::zeros(&[cfg.out_channels])),
        )
        .unwrap();
        let wq = QParams::PerTensor {
            scale: 1.0,
            zero_point: 0,
        };
        let mut dst = ConvTranspose2d::from_float(&zero, &wq, 1.0, 0).unwrap();
        load_state_dict(&mut dst, &dict, true).unwrap();
        let x = Value::Quantized(input(&c));
        assert_eq!(
            src.forward(&x).unwrap(),
            dst.forward(&x).unwrap(),
            "{}",
            c.name
        );
        assert_eq!(dst.output_zero_point(), c.i64("out_zp"));
        assert!(dst.param_bytes() > cfg.weight_shape().iter().product::<usize>());
    }
}

#[test]
fn errors_are_typed() {
    let c = &cases()[0];
    let f = float_layer(c);
    let pc = QParams::PerChannel {
        scales: vec![0.1; 3],
        zero_points: vec![0; 3],
        axis: 0,
    };
    assert!(matches!(
        ConvTranspose2d::from_float(&f, &pc, 0.1, 0),
        Err(QnnError::InvalidQParams { .. })
    ));
    let wq = QParams::PerTensor {
        scale: 0.01,
        zero_point: 0,
    };
    assert!(matches!(
        ConvTranspose2d::from_float(&f, &wq, 0.1, 300),
        Err(QnnError::InvalidQParams { .. })
    ));
    let mut m = ConvTranspose2d::from_float(&f, &wq, 0.1, 10).unwrap();
    assert!(matches!(
        m.forward(&Value::F32(Tensor::zeros(&[1, 3, 4, 4]))),
        Err(QnnError::WrongValueKind { .. })
    ));
    let q = |shape: &[usize]| {
        Value::Quantized(
            quantize_per_tensor(&Tensor::zeros(shape), 0.1, 5, QDType::QUInt8).unwrap(),
        )
    };
    assert!(matches!(
        m.forward(&q(&[1, 2, 4, 4])),
        Err(QnnError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        m.forward(&q(&[3, 4, 4])),
        Err(QnnError::WrongRank { .. })
    ));
    assert!(matches!(
        m.backward(&q(&[1, 3, 4, 4])),
        Err(QnnError::NotTrainable { .. })
    ));
    // a loaded per-channel axis or a bad weight scale is rejected after loading
    let mut dict = state_dict(&m);
    dict.insert("weight_scale".into(), StateEntry::F64s(vec![-1.0]));
    assert!(matches!(
        load_state_dict(&mut m, &dict, true),
        Err(QnnError::InvalidQParams { .. })
    ));
    assert_eq!(m.kind(), qnn::ModuleKind::QuantizedConvTranspose2d);
}
