//! Quantized Embedding / EmbeddingBag (8-bit and 4-bit rowwise, float qparams) against torch
//! 2.15 goldens (`tools/golden/gen_qmodules2.py`, family `embedding`): the table quantized by
//! `from_float` equals torch's, lookups and sums (offsets, include_last_offset,
//! per_sample_weights) are bit-exact; Mean and Max against oracles built from the goldens;
//! safetensors round trip; typed errors.

#[allow(dead_code)]
#[path = "../../qtensor/tests/golden_support/format.rs"]
mod format;

use format::Case;
use half::f16;
use qnn::float::{self, BagMode};
use qnn::qtensor::{QDType, QParams, Tensor};
use qnn::quantized::{Embedding, EmbeddingBag};
use qnn::state_dict::{StateEntry, from_safetensors, load_state_dict, state_dict, to_safetensors};
use qnn::{Module, QnnError, Value};

fn cases() -> Vec<Case> {
    let g = format::parse(include_str!("data/qmodules2/embedding.golden")).expect("parse");
    assert_eq!(g.cases.len(), g.declared_cases);
    assert!(g.cases.len() >= 8);
    g.cases
}

fn dims(c: &Case) -> (usize, usize) {
    (c.shape("num")[0], c.shape("dim")[0])
}

fn dtype(c: &Case) -> QDType {
    if c.i64("bits") == 8 {
        QDType::QUInt8
    } else {
        QDType::QUInt4x2
    }
}

fn qparams(c: &Case) -> QParams {
    QParams::PerChannelFloat {
        scales: c.f32s("scales").to_vec(),
        zero_points: c.f32s("zps").to_vec(),
        axis: 0,
    }
}

fn table(c: &Case) -> Tensor<f32> {
    let (n, d) = dims(c);
    Tensor::new(&[n, d], c.f32s("w_float").to_vec()).unwrap()
}

fn indices(c: &Case) -> Tensor<i32> {
    let v: Vec<i32> = c.i64s("indices").iter().map(|&i| i as i32).collect();
    Tensor::new(&c.shape("idx_shape"), v).unwrap()
}

fn offsets(c: &Case) -> Tensor<i32> {
    let v: Vec<i32> = c.i64s("offsets").iter().map(|&i| i as i32).collect();
    Tensor::new(&[v.len()], v).unwrap()
}

fn bag_input(c: &Case) -> Value {
    let mut parts = vec![Value::I32(indices(c)), Value::I32(offsets(c))];
    if !c.f32s("psw").is_empty() {
        let w = c.f32s("psw").to_vec();
        parts.push(Value::F32(Tensor::new(&[w.len()], w).unwrap()));
    }
    Value::Tuple(parts)
}

fn bag(c: &Case, mode: BagMode) -> EmbeddingBag {
    let f = float::EmbeddingBag::from_tensor(table(c), mode).unwrap();
    EmbeddingBag::from_float(&f, &qparams(c), dtype(c))
        .unwrap()
        .with_include_last_offset(c.str("include_last_offset") == "yes")
}

fn module(c: &Case) -> Box<dyn Module> {
    if c.str("op") == "emb" {
        let f = float::Embedding::from_tensor(table(c), None).unwrap();
        Box::new(Embedding::from_float(&f, &qparams(c), dtype(c)).unwrap())
    } else {
        Box::new(bag(c, BagMode::Sum))
    }
}

fn input(c: &Case) -> Value {
    if c.str("op") == "emb" {
        Value::I32(indices(c))
    } else {
        bag_input(c)
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn tables_quantize_like_torch() {
    for c in cases() {
        let m = module(&c);
        let q = if let Some(e) = (m.as_ref() as &dyn Module).downcast_ref::<Embedding>() {
            e.weight().unwrap()
        } else {
            (m.as_ref() as &dyn Module)
                .downcast_ref::<EmbeddingBag>()
                .unwrap()
                .weight()
                .unwrap()
        };
        let want: Vec<i32> = c.u8s("qw").iter().map(|&v| i32::from(v)).collect();
        assert_eq!(q.int_values(), want, "{}", c.name);
        assert_eq!(q.dtype(), dtype(&c));
    }
}

#[test]
fn lookups_and_sums_are_bit_exact_with_torch() {
    let mut checked = 0;
    for c in cases() {
        let mut m = module(&c);
        let y = m.forward(&input(&c)).unwrap().into_f32("test").unwrap();
        assert_eq!(y.shape(), c.shape("out_shape").as_slice(), "{}", c.name);
        assert_eq!(bits(y.data()), bits(c.f32s("y")), "{}", c.name);
        checked += y.numel();
    }
    assert!(checked > 500);
}

/// `fma(s, q, 0 + bias)` for one row from the golden table (4-bit: f16 scale and bias).
fn dequant_row(c: &Case, r: usize) -> Vec<f32> {
    let (_, d) = dims(c);
    let (s, z) = (c.f32s("scales")[r], c.f32s("zps")[r]);
    let b = -(z * s);
    let (s, b) = if c.i64("bits") == 4 {
        (f16::from_f32(s).to_f32(), f16::from_f32(b).to_f32())
    } else {
        (s, b)
    };
    (0..d)
        .map(|j| s.mul_add(f32::from(c.u8s("qw")[r * d + j]), 0.0 + b))
        .collect()
}

#[test]
fn mean_and_max_follow_their_oracles() {
    let mut nonempty = 0;
    for c in cases()
        .iter()
        .filter(|c| c.str("op") == "bag" && c.f32s("psw").is_empty())
    {
        let (_, d) = dims(c);
        let idx = c.i64s("indices");
        let offs = c.i64s("offsets");
        let last = c.str("include_last_offset") == "yes";
        let nb = if last { offs.len() - 1 } else { offs.len() };
        let range = |b: usize| {
            let s = offs[b] as usize;
            let e = offs.get(b + 1).map_or(idx.len(), |&e| e as usize);
            s..e
        };
        let mean = bag(c, BagMode::Mean)
            .forward(&bag_input(c))
            .unwrap()
            .into_f32("t")
            .unwrap();
        let max = bag(c, BagMode::Max)
            .forward(&bag_input(c))
            .unwrap()
            .into_f32("t")
            .unwrap();
        let sum = c.f32s("y");
        for b in 0..nb {
            let r = range(b);
            let len = r.len();
            for j in 0..d {
                let want_mean = if len == 0 {
                    0.0
                } else {
                    sum[b * d + j] * (1.0 / len as f32)
                };
                assert_eq!(
                    mean.data()[b * d + j].to_bits(),
                    want_mean.to_bits(),
                    "{} mean",
                    c.name
                );
                let want_max = r
                    .clone()
                    .map(|k| dequant_row(c, idx[k] as usize)[j])
                    .fold(None, |m: Option<f32>, v| Some(m.map_or(v, |m| m.max(v))))
                    .unwrap_or(0.0);
                assert_eq!(max.data()[b * d + j], want_max, "{} max", c.name);
            }
            nonempty += usize::from(len > 1);
        }
    }
    assert!(nonempty >= 3);
}

#[test]
fn two_d_indices_are_equal_length_bags() {
    let c = &cases()
        .into_iter()
        .find(|c| c.str("op") == "bag" && c.i64("bits") == 8)
        .unwrap();
    let mut m = bag(c, BagMode::Sum).with_include_last_offset(false);
    let idx = Tensor::new(&[2, 3], vec![1, 2, 3, 4, 0, 4]).unwrap();
    let a = m.forward(&Value::I32(idx)).unwrap();
    let flat = Tensor::new(&[6], vec![1, 2, 3, 4, 0, 4]).unwrap();
    let off = Tensor::new(&[2], vec![0, 3]).unwrap();
    let b = m
        .forward(&Value::Tuple(vec![Value::I32(flat), Value::I32(off)]))
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn safetensors_round_trip_gives_identical_outputs() {
    for c in cases() {
        let mut src = module(&c);
        let dict = from_safetensors(&to_safetensors(&state_dict(src.as_ref())).unwrap()).unwrap();
        let (n, d) = dims(&c);
        let cols = if c.i64("bits") == 4 { d.div_ceil(2) } else { d };
        assert_eq!(dict["weight"].shape(), vec![n, cols]);
        assert_eq!(dict["weight_scale"].shape(), vec![n]);
        // a fresh module of the same shape over a zero table with unit qparams
        let zero = Tensor::<f32>::zeros(&[n, d]);
        let unit = QParams::PerChannelFloat {
            scales: vec![1.0; n],
            zero_points: vec![0.0; n],
            axis: 0,
        };
        let mut dst: Box<dyn Module> = if c.str("op") == "emb" {
            let f = float::Embedding::from_tensor(zero, None).unwrap();
            Box::new(Embedding::from_float(&f, &unit, dtype(&c)).unwrap())
        } else {
            let f = float::EmbeddingBag::from_tensor(zero, BagMode::Sum).unwrap();
            Box::new(
                EmbeddingBag::from_float(&f, &unit, dtype(&c))
                    .unwrap()
                    .with_include_last_offset(c.str("include_last_offset") == "yes"),
            )
        };
        load_state_dict(dst.as_mut(), &dict, true).unwrap();
        let x = input(&c);
        let (a, b) = (src.forward(&x).unwrap(), dst.forward(&x).unwrap());
        let (a, b) = (a.into_f32("a").unwrap(), b.into_f32("b").unwrap());
        assert_eq!(bits(a.data()), bits(b.data()), "{}", c.name);
        assert_eq!(dst.param_bytes(), n * cols + 8 * n);
    }
}

#[test]
fn errors_are_typed() {
    let c = &cases()
        .into_iter()
        .find(|c| c.str("op") == "bag" && c.i64("bits") == 8)
        .unwrap();
    let (n, _) = dims(c);
    let f = float::EmbeddingBag::from_tensor(table(c), BagMode::Sum).unwrap();
    let pt = QParams::PerTensor {
        scale: 0.1,
        zero_point: 0,
    };
    assert!(matches!(
        EmbeddingBag::from_float(&f, &pt, QDType::QUInt8),
        Err(QnnError::InvalidQParams { .. })
    ));
    assert!(matches!(
        EmbeddingBag::from_float(&f, &qparams(c), QDType::QInt8),
        Err(QnnError::InvalidQParams { .. })
    ));
    let mut m = bag(c, BagMode::Sum);
    let idx = |v: Vec<i32>| Value::I32(Tensor::new(&[v.len()], v).unwrap());
    assert!(matches!(
        m.forward(&Value::Tuple(vec![idx(vec![0, n as i32]), idx(vec![0])])),
        Err(QnnError::IndexOutOfRange { position: 1, .. })
    ));
    assert!(matches!(
        m.forward(&Value::Tuple(vec![idx(vec![0, 1]), idx(vec![1, 0])])),
        Err(QnnError::InvalidConfig { .. })
    ));
    assert!(matches!(
        m.forward(&idx(vec![0, 1])),
        Err(QnnError::WrongRank { .. })
    ));
    let short = Value::F32(Tensor::new(&[1], vec![1.0]).unwrap());
    assert!(matches!(
        m.forward(&Value::Tuple(vec![
            idx(vec![0, 1]),
            idx(vec![0]),
            short.clone()
        ])),
        Err(QnnError::ShapeMismatch { .. })
    ));
    let mut mean = bag(c, BagMode::Mean);
    let w = Value::F32(Tensor::new(&[2], vec![1.0, 2.0]).unwrap());
    assert!(matches!(
        mean.forward(&Value::Tuple(vec![idx(vec![0, 1]), idx(vec![0]), w])),
        Err(QnnError::InvalidConfig { .. })
    ));
    let mut last = bag(c, BagMode::Sum).with_include_last_offset(true);
    assert!(matches!(
        last.forward(&Value::Tuple(vec![idx(vec![0]), idx(vec![])])),
        Err(QnnError::InvalidConfig { .. })
    ));
    assert!(matches!(
        m.backward(&short),
        Err(QnnError::NotTrainable { .. })
    ));
    let mut e = Embedding::from_float(
        &float::Embedding::from_tensor(table(c), None).unwrap(),
        &qparams(c),
        QDType::QUInt8,
    )
    .unwrap();
    assert!(matches!(
        e.forward(&Value::I32(Tensor::new(&[1], vec![-1]).unwrap())),
        Err(QnnError::IndexOutOfRange { index: -1, .. })
    ));
    // a loaded zero scale is rejected by after_load
    let mut dict = state_dict(&e);
    dict.insert("weight_scale".into(), StateEntry::F32(Tensor::zeros(&[n])));
    assert!(matches!(
        load_state_dict(&mut e, &dict, true),
        Err(QnnError::InvalidQParams { .. })
    ));
    assert_eq!(e.kind(), qnn::ModuleKind::QuantizedEmbedding);
}
