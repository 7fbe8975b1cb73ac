//! Quantized Softmax against torch 2.15 goldens (`tools/golden/gen_qmodules2.py`, family
//! `softmax`): PyTorch's float softmax uses SLEEF's `exp`, so outputs are compared within
//! one quantum, with at most 1% of them off by one; plus layouts, the safetensors round
//! trip and typed errors.

#[allow(dead_code)]
#[path = "../../qtensor/tests/golden_support/format.rs"]
mod format;

use format::Case;
use qnn::qtensor::{Layout, QDType, QParams, QTensor, Tensor, quantize_per_tensor};
use qnn::quantized::Softmax;
use qnn::state_dict::{from_safetensors, load_state_dict, state_dict, to_safetensors};
use qnn::{Module, QnnError, Value};

fn cases() -> Vec<Case> {
    let g = format::parse(include_str!("data/qmodules2/softmax.golden")).expect("parse");
    assert_eq!(g.cases.len(), g.declared_cases);
    assert!(g.cases.len() >= 5);
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

fn ints(v: Value) -> Vec<i32> {
    let Value::Quantized(q) = v else {
        panic!("quantized output expected")
    };
    q.to_row_major().unwrap().int_values()
}

#[test]
fn outputs_are_within_one_quantum_of_torch() {
    let (mut total, mut off) = (0usize, 0usize);
    for c in cases() {
        let mut m =
            Softmax::new(c.i64("dim") as isize, c.f64("out_scale"), c.i64("out_zp")).unwrap();
        let x = input(&c);
        let y = ints(m.forward(&Value::Quantized(x.clone())).unwrap());
        let want: Vec<i32> = c.u8s("y").iter().map(|&v| i32::from(v)).collect();
        assert_eq!(y.len(), want.len());
        for (i, (a, b)) in y.iter().zip(&want).enumerate() {
            assert!((a - b).abs() <= 1, "{}[{i}]: {a} vs torch {b}", c.name);
            off += usize::from(a != b);
        }
        assert!(
            want.iter().any(|&v| v > c.i64("out_zp") as i32 + 5),
            "{}: degenerate",
            c.name
        );
        total += y.len();
        if x.shape().len() == 4 {
            let out = m
                .forward(&Value::Quantized(x.to_channels_last().unwrap()))
                .unwrap();
            let Value::Quantized(q) = &out else { panic!() };
            assert_eq!(q.layout(), Layout::ChannelsLast);
            assert_eq!(ints(out), y, "{} channels-last", c.name);
        }
    }
    assert!(
        off * 100 <= total,
        "{off} of {total} outputs differ by one quantum"
    );
    assert!(total > 1000);
}

#[test]
fn from_float_round_trip_and_qint8() {
    let c = &cases()[0];
    let f = qnn::float::Softmax::new(c.i64("dim") as isize);
    let mut m = Softmax::from_float(&f, c.f64("out_scale"), c.i64("out_zp")).unwrap();
    let x = Value::Quantized(input(c));
    let want = m.forward(&x).unwrap();

    let bytes = to_safetensors(&state_dict(&m)).unwrap();
    let mut dst = Softmax::new(c.i64("dim") as isize, 1.0, 0).unwrap();
    load_state_dict(&mut dst, &from_safetensors(&bytes).unwrap(), true).unwrap();
    assert_eq!(dst.forward(&x).unwrap(), want);
    assert_eq!(dst.output_scale(), c.f64("out_scale"));

    // qint8 in, qint8 out: a 2-element line [0, ln 3] gives [0.25, 0.75]
    let t = Tensor::new(&[1, 2], vec![0.0, 3.0f32.ln()]).unwrap();
    let q = quantize_per_tensor(&t, 3.0f32.ln() as f64 / 100.0, 0, QDType::QInt8).unwrap();
    let mut s = Softmax::new(-1, 1.0 / 256.0, 0).unwrap();
    let Value::Quantized(y) = s.forward(&Value::Quantized(q)).unwrap() else {
        panic!()
    };
    assert_eq!(y.dtype(), QDType::QInt8);
    assert_eq!(y.int_values(), vec![64, 127]); // 0.75·256 = 192 saturates at 127
}

#[test]
fn errors_are_typed() {
    let mut m = Softmax::new(2, 0.01, 0).unwrap();
    let q = quantize_per_tensor(&Tensor::zeros(&[2, 3]), 0.1, 0, QDType::QUInt8).unwrap();
    assert!(matches!(
        m.forward(&Value::Quantized(q)),
        Err(QnnError::DimOutOfRange {
            dim: 2,
            ndim: 2,
            ..
        })
    ));
    assert!(matches!(
        m.forward(&Value::F32(Tensor::zeros(&[2, 3]))),
        Err(QnnError::WrongValueKind { .. })
    ));
    assert!(matches!(
        m.backward(&Value::F32(Tensor::zeros(&[2, 3]))),
        Err(QnnError::NotTrainable { .. })
    ));
    assert!(matches!(
        Softmax::new(0, -1.0, 0),
        Err(QnnError::InvalidQParams { .. })
    ));
    assert!(matches!(
        Softmax::new(0, 0.1, 300),
        Err(QnnError::InvalidQParams { .. })
    ));
    let mut dict = state_dict(&m);
    dict.insert(
        "zero_point".into(),
        qnn::state_dict::StateEntry::I64s(vec![-3]),
    );
    assert!(matches!(
        load_state_dict(&mut m, &dict, true),
        Err(QnnError::InvalidQParams { .. })
    ));
}
