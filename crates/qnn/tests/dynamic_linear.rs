//! Dynamic Linear / LinearReLU against PyTorch 2.15 (fbgemm) goldens from
//! `tools/golden/gen_dynamic.py`: qint8 weights (per-tensor symmetric and affine, per-channel)
//! bit for bit, f16 weights bit for bit; state round trips; error paths.

#[allow(dead_code)]
#[path = "../../qtensor/tests/golden_support/format.rs"]
mod format;

use format::Case;
use qnn::dynamic::{Linear, LinearReLU, WeightDType};
use qnn::float;
use qnn::qtensor::{QParams, Tensor};
use qnn::state_dict::{from_safetensors, load_state_dict, state_dict, to_safetensors};
use qnn::{Module, ModuleKind, QnnError, Value};

fn cases() -> Vec<Case> {
    let g = format::parse(include_str!("data/dynamic/linear.golden")).expect("parse");
    assert_eq!(g.cases.len(), g.declared_cases);
    assert!(g.cases.len() >= 30);
    g.cases
}

fn float_linear(c: &Case) -> float::Linear {
    let y = c.shape("x_shape");
    let k = *y.last().unwrap();
    let w = c.f32s("w");
    let n = w.len() / k;
    let bias =
        (c.str("has_bias") == "yes").then(|| Tensor::new(&[n], c.f32s("bias").to_vec()).unwrap());
    float::Linear::from_tensors(Tensor::new(&[n, k], w.to_vec()).unwrap(), bias).unwrap()
}

fn qparams(c: &Case) -> QParams {
    if c.str("qscheme") == "per_channel" {
        QParams::PerChannel {
            scales: c.f64s("w_scales").to_vec(),
            zero_points: c.i64s("w_zps").to_vec(),
            axis: 0,
        }
    } else {
        QParams::PerTensor {
            scale: c.f64s("w_scales")[0],
            zero_point: c.i64s("w_zps")[0],
        }
    }
}

fn build(c: &Case) -> Box<dyn Module> {
    let f = float_linear(c);
    let relu = c.str("relu") == "yes";
    match (c.str("mode"), relu) {
        ("qint8", false) => Box::new(Linear::from_float(&f, &qparams(c)).unwrap()),
        ("qint8", true) => Box::new(LinearReLU::from_float(&f, &qparams(c)).unwrap()),
        ("fp16", false) => Box::new(Linear::from_float_fp16(&f).unwrap()),
        ("fp16", true) => Box::new(LinearReLU::from_float_fp16(&f).unwrap()),
        (m, _) => panic!("mode {m}"),
    }
}

fn input(c: &Case) -> Value {
    Value::F32(Tensor::new(&c.shape("x_shape"), c.f32s("x").to_vec()).unwrap())
}

fn run(m: &mut dyn Module, c: &Case) -> Tensor<f32> {
    m.forward(&input(c)).unwrap().into_f32("test").unwrap()
}

fn assert_bits(name: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    let bad: Vec<_> = got
        .iter()
        .zip(want)
        .enumerate()
        .filter(|(_, (g, w))| g.to_bits() != w.to_bits() && !(**g == 0.0 && **w == 0.0))
        .take(5)
        .collect();
    assert!(
        bad.is_empty(),
        "{name}: {} differ, first {bad:?}",
        got.iter().zip(want).filter(|(g, w)| g != w).count()
    );
}

/// fbgemm's fp16 GEMM sums K in an order that depends on its row tiling (a plain FMA chain
/// for tiles of 3–6 rows, another order for 1–2-row tiles); qstack always uses the FMA chain,
/// so outputs are within a few rounding errors of the absolute terms: `|got − torch| ≤
/// 4·ε·(Σ_k |x_k·w_k| + |b|)`. The test also requires most outputs to be exact.
fn assert_fp16_close(c: &Case, got: &[f32]) -> usize {
    let want = c.f32s("y");
    let x = c.f32s("x");
    let w = c.f32s("w");
    let k = *c.shape("x_shape").last().unwrap();
    let n = w.len() / k;
    let bias = c.f32s("bias");
    let mut exact = 0;
    for (i, (&g, &t)) in got.iter().zip(want).enumerate() {
        let (r, j) = (i / n, i % n);
        let mag: f32 = (0..k)
            .map(|kk| (x[r * k + kk] * half::f16::from_f32(w[j * k + kk]).to_f32()).abs())
            .sum::<f32>()
            + bias.get(j).map_or(0.0, |b| b.abs());
        assert!(
            (g - t).abs() <= 4.0 * f32::EPSILON * mag,
            "{}: y[{i}] = {g}, torch {t}",
            c.name
        );
        exact += usize::from(g == t);
    }
    exact
}

#[test]
fn matches_pytorch() {
    let mut seen = [0usize; 2];
    let (mut fp16_exact, mut fp16_total) = (0, 0);
    for c in cases() {
        let mut m = build(&c);
        let y = run(m.as_mut(), &c);
        let mut want_shape = c.shape("x_shape");
        *want_shape.last_mut().unwrap() = c.f32s("w").len() / want_shape.last().unwrap();
        assert_eq!(y.shape(), &want_shape[..], "{}", c.name);
        if c.str("mode") == "fp16" {
            fp16_exact += assert_fp16_close(&c, y.data());
            fp16_total += y.numel();
            seen[1] += 1;
        } else {
            assert_bits(&c.name, y.data(), c.f32s("y"));
            seen[0] += 1;
        }
    }
    assert!(seen[0] >= 20 && seen[1] >= 8, "{seen:?}");
    assert!(
        2 * fp16_exact > fp16_total,
        "fp16: {fp16_exact} of {fp16_total} exact"
    );
}

#[test]
fn kinds_getters_and_bytes() {
    let c = &cases()[0];
    let f = float_linear(c);
    let q = Linear::from_float(&f, &qparams(c)).unwrap();
    assert_eq!(q.kind(), ModuleKind::DynamicLinear);
    assert_eq!(q.weight_dtype(), WeightDType::QInt8);
    let w = q.weight().unwrap();
    assert_eq!(w.shape(), f.weight.value.shape());
    assert_eq!(w.qparams(), &qparams(c));
    assert_eq!((q.in_features(), q.out_features()), (13, 7));
    assert_eq!(q.param_bytes(), 7 * 13 + 16 + 8 + 4 * 7);
    let h = LinearReLU::from_float_fp16(&f).unwrap();
    assert_eq!(h.kind(), ModuleKind::DynamicLinearReLU);
    assert_eq!(h.weight_dtype(), WeightDType::Float16);
    assert!(h.weight().is_none());
    assert_eq!(h.param_bytes(), 2 * 7 * 13 + 4 * 7);
    let hw = h.weight_fp16().unwrap();
    for (a, b) in hw.data().iter().zip(f.weight.value.data()) {
        assert_eq!(*a, half::f16::from_f32(*b).to_f32());
    }
}

/// Saves every golden module, loads into a module built from other weights of the same shape,
/// and checks identical outputs and state.
#[test]
fn safetensors_round_trip() {
    for c in cases().iter().step_by(3) {
        let mut m = build(c);
        let y0 = run(m.as_mut(), c);
        let bytes = to_safetensors(&state_dict(m.as_ref())).unwrap();
        // Same shapes and scheme, different values: scale the float weights.
        let mut f = float_linear(c);
        f.weight
            .value
            .data_mut()
            .iter_mut()
            .for_each(|v| *v = -*v * 0.5);
        let mut fresh: Box<dyn Module> = match (c.str("mode"), c.str("relu") == "yes") {
            ("qint8", false) => Box::new(Linear::from_float(&f, &qparams(c)).unwrap()),
            ("qint8", true) => Box::new(LinearReLU::from_float(&f, &qparams(c)).unwrap()),
            ("fp16", false) => Box::new(Linear::from_float_fp16(&f).unwrap()),
            _ => Box::new(LinearReLU::from_float_fp16(&f).unwrap()),
        };
        load_state_dict(fresh.as_mut(), &from_safetensors(&bytes).unwrap(), true).unwrap();
        assert_eq!(
            state_dict(fresh.as_ref()),
            state_dict(m.as_ref()),
            "{}",
            c.name
        );
        let y = run(fresh.as_mut(), c);
        assert_bits(&c.name, y.data(), y0.data());
    }
}

#[test]
fn names_of_the_state() {
    let c = cases()
        .into_iter()
        .find(|c| c.str("qscheme") == "per_channel" && c.str("has_bias") == "yes")
        .unwrap();
    let m = build(&c);
    let d = state_dict(m.as_ref());
    let keys: Vec<_> = d.keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "bias",
            "weight",
            "weight_axis",
            "weight_scale",
            "weight_zero_point"
        ]
    );
    let n = c.f32s("bias").len();
    assert_eq!(d["weight_scale"].shape(), vec![n]);
}

#[test]
fn loading_bad_qparams_is_an_error() {
    let c = &cases()[0];
    let f = float_linear(c);
    let good = Linear::from_float(&f, &qparams(c)).unwrap();
    for (key, entry) in [
        ("weight_scale", qnn::state_dict::StateEntry::F64s(vec![0.0])),
        (
            "weight_scale",
            qnn::state_dict::StateEntry::F64s(vec![f64::NAN]),
        ),
        (
            "weight_zero_point",
            qnn::state_dict::StateEntry::I64s(vec![128]),
        ),
        ("weight_axis", qnn::state_dict::StateEntry::I64(3)),
        ("weight_axis", qnn::state_dict::StateEntry::I64(0)),
    ] {
        let mut d = state_dict(&good);
        d.insert(key.into(), entry);
        let mut m = Linear::from_float(&f, &qparams(c)).unwrap();
        let err = load_state_dict(&mut m, &d, true).unwrap_err();
        assert!(
            matches!(err, QnnError::InvalidQParams { .. }),
            "{key}: {err}"
        );
    }
}

#[test]
fn bad_inputs_and_qparams_are_errors() {
    let c = &cases()[0];
    let f = float_linear(c);
    let mut m = Linear::from_float(&f, &qparams(c)).unwrap();
    let x = Tensor::<f32>::zeros(&[2, 12]);
    assert!(matches!(
        m.forward(&Value::F32(x)),
        Err(QnnError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        m.forward(&Value::Tuple(vec![])),
        Err(QnnError::WrongValueKind { .. })
    ));
    assert!(matches!(
        m.backward(&Value::F32(Tensor::zeros(&[1, 7]))),
        Err(QnnError::NotTrainable { .. })
    ));
    for q in [
        QParams::PerTensor {
            scale: 0.0,
            zero_point: 0,
        },
        QParams::PerTensor {
            scale: f64::INFINITY,
            zero_point: 0,
        },
        QParams::PerTensor {
            scale: 0.1,
            zero_point: 200,
        },
        QParams::PerTensor {
            scale: 1e-60,
            zero_point: 0,
        },
        QParams::PerChannel {
            scales: vec![0.1; 3],
            zero_points: vec![0; 3],
            axis: 0,
        },
        QParams::PerChannel {
            scales: vec![0.1; 7],
            zero_points: vec![0; 7],
            axis: 1,
        },
        QParams::PerChannelFloat {
            scales: vec![0.1; 7],
            zero_points: vec![0.0; 7],
            axis: 0,
        },
    ] {
        let err = Linear::from_float(&f, &q).unwrap_err();
        assert!(
            matches!(err, QnnError::InvalidQParams { .. }),
            "{q:?}: {err}"
        );
    }
}

#[test]
fn empty_batch_gives_empty_output() {
    let c = &cases()[0];
    let mut m = Linear::from_float(&float_linear(c), &qparams(c)).unwrap();
    let y = m.apply(&Tensor::zeros(&[0, 13])).unwrap();
    assert_eq!(y.shape(), &[0, 7]);
}
