//! Quantized LayerNorm / GroupNorm / InstanceNorm2d against torch 2.15 goldens
//! (`tools/golden/gen_qmodules2.py`, family `norm`): bit-exact outputs, from either input
//! layout and through `from_float`; safetensors round trips; typed errors.

#[allow(dead_code)]
#[path = "../../qtensor/tests/golden_support/format.rs"]
mod format;

use format::Case;
use qnn::float;
use qnn::qtensor::{QDType, QParams, QTensor, Tensor};
use qnn::quantized::{GroupNorm, InstanceNorm2d, LayerNorm};
use qnn::state_dict::{from_safetensors, load_state_dict, state_dict, to_safetensors};
use qnn::{Module, QnnError, Value};

fn cases() -> Vec<Case> {
    let g = format::parse(include_str!("data/qmodules2/norm.golden")).expect("parse");
    assert_eq!(g.cases.len(), g.declared_cases);
    assert!(g.cases.len() >= 10);
    g.cases
}

fn input(c: &Case) -> QTensor {
    let values: Vec<i32> = c.u8s("x_q").iter().map(|&v| i32::from(v)).collect();
    let qp = QParams::PerTensor {
        scale: c.f64("x_scale"),
        zero_point: c.i64("x_zp"),
    };
    QTensor::from_int_values(&c.shape("shape"), &values, QDType::QUInt8, qp).unwrap()
}

fn yes(c: &Case, key: &str) -> bool {
    c.str(key) == "yes"
}

fn affine(c: &Case, key: &str, shape: &[usize]) -> Option<Tensor<f32>> {
    yes(c, "affine").then(|| Tensor::new(shape, c.f32s(key).to_vec()).unwrap())
}

fn build(c: &Case) -> Box<dyn Module> {
    let shape = c.shape("shape");
    let (os, oz, eps) = (c.f64("out_scale"), c.i64("out_zp"), c.f64("eps"));
    match c.str("kind") {
        "ln" => {
            let ns = c.shape("normalized_shape");
            Box::new(
                LayerNorm::new(
                    &ns,
                    affine(c, "weight", &ns),
                    affine(c, "bias", &ns),
                    eps,
                    os,
                    oz,
                )
                .unwrap(),
            )
        }
        "gn" => {
            let ch = shape[1];
            Box::new(
                GroupNorm::new(
                    c.shape("num_groups")[0],
                    ch,
                    affine(c, "weight", &[ch]),
                    affine(c, "bias", &[ch]),
                    eps,
                    os,
                    oz,
                )
                .unwrap(),
            )
        }
        _ => {
            let ch = shape[1];
            Box::new(
                InstanceNorm2d::new(
                    ch,
                    affine(c, "weight", &[ch]),
                    affine(c, "bias", &[ch]),
                    eps,
                    os,
                    oz,
                )
                .unwrap(),
            )
        }
    }
}

/// The output's integers in logical (row-major) order, and its qparams.
fn out_ints(v: Value) -> (Vec<u8>, QParams) {
    let Value::Quantized(q) = v else {
        panic!("expected a quantized output")
    };
    let q = q.to_row_major().unwrap();
    (
        q.int_values().iter().map(|&v| v as u8).collect(),
        q.qparams().clone(),
    )
}

#[test]
fn outputs_are_bit_exact_with_torch() {
    let mut checked = 0;
    for c in cases() {
        let mut m = build(&c);
        let x = input(&c);
        let (y, qp) = out_ints(m.forward(&Value::Quantized(x.clone())).unwrap());
        assert_eq!(y, c.u8s("y"), "{}", c.name);
        assert_eq!(
            qp,
            QParams::PerTensor {
                scale: c.f64("out_scale"),
                zero_point: c.i64("out_zp")
            }
        );
        assert!(
            y.iter().any(|&v| v != 0 && v != 255),
            "{}: all clamped",
            c.name
        );
        if x.shape().len() == 4 {
            let out = m
                .forward(&Value::Quantized(x.to_channels_last().unwrap()))
                .unwrap();
            let Value::Quantized(q) = &out else { panic!() };
            assert_eq!(q.layout(), qnn::qtensor::Layout::ChannelsLast);
            assert_eq!(out_ints(out).0, c.u8s("y"), "{} channels-last", c.name);
        }
        checked += y.len();
    }
    assert!(checked > 5000);
}

#[test]
fn from_float_gives_the_same_bits() {
    for c in cases() {
        let shape = c.shape("shape");
        let (os, oz) = (c.f64("out_scale"), c.i64("out_zp"));
        let affine_on = yes(&c, "affine");
        let load = |m: &mut dyn Module| {
            m.visit_params_mut(&mut |name, p| {
                p.value.data_mut().copy_from_slice(c.f32s(name));
            })
        };
        let mut m: Box<dyn Module> = match c.str("kind") {
            "ln" => {
                let mut f = float::LayerNorm::new(
                    &c.shape("normalized_shape"),
                    c.f64("eps") as f32,
                    affine_on,
                );
                load(&mut f);
                Box::new(qnn::quantized::LayerNorm::from_float(&f, os, oz).unwrap())
            }
            "gn" => {
                let mut f = float::GroupNorm::new(
                    c.shape("num_groups")[0],
                    shape[1],
                    c.f64("eps"),
                    affine_on,
                )
                .unwrap();
                load(&mut f);
                Box::new(GroupNorm::from_float(&f, os, oz).unwrap())
            }
            _ => {
                let mut f = float::InstanceNorm2d::new(shape[1], c.f64("eps"), affine_on).unwrap();
                load(&mut f);
                Box::new(InstanceNorm2d::from_float(&f, os, oz).unwrap())
            }
        };
        let (y, _) = out_ints(m.forward(&Value::Quantized(input(&c))).unwrap());
        assert_eq!(y, c.u8s("y"), "{} via from_float", c.name);
    }
}

#[test]
fn safetensors_round_trip_gives_identical_outputs() {
    for c in cases() {
        let mut src = build(&c);
        let bytes = to_safetensors(&state_dict(src.as_ref())).unwrap();
        let dict = from_safetensors(&bytes).unwrap();
        assert!(dict.contains_key("scale") && dict.contains_key("zero_point"));
        assert_eq!(dict.contains_key("weight"), yes(&c, "affine"));
        // a fresh module of the same shape with other qparams and parameters
        let shape = c.shape("shape");
        let ones = |s: &[usize]| yes(&c, "affine").then(|| Tensor::from_fn(s, |_| 1.0f32));
        let mut dst: Box<dyn Module> = match c.str("kind") {
            "ln" => {
                let ns = c.shape("normalized_shape");
                Box::new(LayerNorm::new(&ns, ones(&ns), ones(&ns), c.f64("eps"), 1.0, 0).unwrap())
            }
            "gn" => Box::new(
                GroupNorm::new(
                    c.shape("num_groups")[0],
                    shape[1],
                    ones(&[shape[1]]),
                    ones(&[shape[1]]),
                    c.f64("eps"),
                    1.0,
                    0,
                )
                .unwrap(),
            ),
            _ => Box::new(
                InstanceNorm2d::new(
                    shape[1],
                    ones(&[shape[1]]),
                    ones(&[shape[1]]),
                    c.f64("eps"),
                    1.0,
                    0,
                )
                .unwrap(),
            ),
        };
        load_state_dict(dst.as_mut(), &dict, true).unwrap();
        let x = Value::Quantized(input(&c));
        assert_eq!(
            src.forward(&x).unwrap(),
            dst.forward(&x).unwrap(),
            "{}",
            c.name
        );
    }
}

#[test]
fn bad_inputs_and_qparams_are_typed_errors() {
    let mut ln = LayerNorm::new(&[4], None, None, 1e-5, 0.1, 10).unwrap();
    assert!(matches!(
        ln.forward(&Value::F32(Tensor::zeros(&[2, 4]))),
        Err(QnnError::WrongValueKind { .. })
    ));
    let x =
        qnn::qtensor::quantize_per_tensor(&Tensor::zeros(&[2, 5]), 0.1, 3, QDType::QUInt8).unwrap();
    assert!(matches!(
        ln.forward(&Value::Quantized(x)),
        Err(QnnError::ShapeMismatch { .. })
    ));
    let x =
        qnn::qtensor::quantize_per_tensor(&Tensor::zeros(&[2, 4]), 0.1, 3, QDType::QInt8).unwrap();
    assert!(matches!(
        ln.forward(&Value::Quantized(x)),
        Err(QnnError::InvalidQParams { .. })
    ));
    assert!(matches!(
        ln.backward(&Value::F32(Tensor::zeros(&[2, 4]))),
        Err(QnnError::NotTrainable { .. })
    ));
    for (s, z) in [(0.0, 0), (f64::NAN, 0), (0.1, 256), (0.1, -1)] {
        assert!(matches!(
            LayerNorm::new(&[4], None, None, 1e-5, s, z),
            Err(QnnError::InvalidQParams { .. })
        ));
    }
    assert!(matches!(
        LayerNorm::new(&[4], Some(Tensor::zeros(&[3])), None, 1e-5, 0.1, 0),
        Err(QnnError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        GroupNorm::new(3, 4, None, None, 1e-5, 0.1, 0),
        Err(QnnError::InvalidConfig { .. })
    ));
    let mut gn = GroupNorm::new(2, 4, None, None, 1e-5, 0.1, 0).unwrap();
    let x = qnn::qtensor::quantize_per_tensor(&Tensor::zeros(&[1, 6, 2]), 0.1, 3, QDType::QUInt8)
        .unwrap();
    assert!(matches!(
        gn.forward(&Value::Quantized(x)),
        Err(QnnError::ShapeMismatch { .. })
    ));
    let mut inorm = InstanceNorm2d::new(2, None, None, 1e-5, 0.1, 0).unwrap();
    let x =
        qnn::qtensor::quantize_per_tensor(&Tensor::zeros(&[2, 3]), 0.1, 3, QDType::QUInt8).unwrap();
    assert!(matches!(
        inorm.forward(&Value::Quantized(x)),
        Err(QnnError::WrongRank { .. })
    ));
    // a loaded scale of zero is rejected by after_load
    let mut dict = state_dict(&ln);
    dict.insert("scale".into(), qnn::state_dict::StateEntry::F64s(vec![0.0]));
    assert!(matches!(
        load_state_dict(&mut ln, &dict, true),
        Err(QnnError::InvalidQParams { .. })
    ));
    assert_eq!(ln.kind(), qnn::ModuleKind::QuantizedLayerNorm);
    assert_eq!(gn.param_bytes(), 16);
}
