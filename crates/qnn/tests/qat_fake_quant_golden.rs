//! PyTorch goldens for the fake-quant modules (torch 2.15.0, `tools/golden/gen_qat.py`):
//! sequences of forward calls with observer / fake-quant toggles; outputs, input gradients
//! (the straight-through mask), `scale`, `zero_point`, `calculate_qparams()` and the observer's
//! running range are compared bit for bit.

#[allow(dead_code)]
#[path = "../../qtensor/tests/golden_support/format.rs"]
mod format;

use format::Case;
use qnn::qat::{FakeQuant, FakeQuantSpec, ZeroPoints};
use qnn::qtensor::observer::{ObserverConfig, ObserverSpec};
use qnn::qtensor::{QDType, QParams, QScheme, Tensor};
use qnn::{BufferRef, Value};

fn cases() -> Vec<Case> {
    let g = format::parse(include_str!("data/qat/fake_quant.golden")).expect("parse");
    assert_eq!(g.cases.len(), g.declared_cases);
    assert!(g.cases.len() >= 15);
    g.cases
}

fn dtype(s: &str) -> QDType {
    match s {
        "quint8" => QDType::QUInt8,
        "qint8" => QDType::QInt8,
        other => panic!("dtype {other}"),
    }
}

fn qscheme(s: &str) -> QScheme {
    match s {
        "per_tensor_affine" => QScheme::PerTensorAffine,
        "per_tensor_symmetric" => QScheme::PerTensorSymmetric,
        "per_channel_affine" => QScheme::PerChannelAffine,
        "per_channel_symmetric" => QScheme::PerChannelSymmetric,
        "per_channel_affine_float_qparams" => QScheme::PerChannelAffineFloatQParams,
        other => panic!("qscheme {other}"),
    }
}

/// The spec PyTorch's constructor call in the generator corresponds to.
pub fn spec_of(c: &Case) -> FakeQuantSpec {
    let custom = c.str("custom") == "yes";
    let config = ObserverConfig {
        reduce_range: (c.str("reduce_range") == "yes"),
        quant_min: custom.then(|| c.i64("quant_min")),
        quant_max: custom.then(|| c.i64("quant_max")),
        eps: c.f64("eps") as f32,
        ..ObserverConfig::new(dtype(c.str("dtype")), qscheme(c.str("qscheme")))
    };
    let averaging_constant = c.f64("averaging_constant") as f32;
    let ch_axis = c.i64("ch_axis") as usize;
    let observer = match c.str("observer") {
        "minmax" => ObserverSpec::MinMax(config),
        "ma" => ObserverSpec::MovingAverageMinMax {
            config,
            averaging_constant,
        },
        "pc_minmax" => ObserverSpec::PerChannelMinMax { config, ch_axis },
        "pc_ma" => ObserverSpec::MovingAveragePerChannelMinMax {
            config,
            ch_axis,
            averaging_constant,
        },
        "fixed" => {
            return FakeQuantSpec::FixedQParams {
                scale: c.f64("fixed_scale"),
                zero_point: c.i64("fixed_zp"),
                dtype: dtype(c.str("dtype")),
                quant_min: c.i64("quant_min"),
                quant_max: c.i64("quant_max"),
            };
        }
        other => panic!("observer {other}"),
    };
    match c.str("kind") {
        "fq" => FakeQuantSpec::FakeQuantize { observer },
        "fused" => FakeQuantSpec::FusedMovingAvgObs { observer },
        other => panic!("kind {other}"),
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn zero_points_f32(z: &ZeroPoints) -> Vec<f32> {
    match z {
        ZeroPoints::Int(t) => t.data().iter().map(|&v| v as f32).collect(),
        ZeroPoints::Float(t) => t.data().to_vec(),
    }
}

fn qparams_f32(q: &QParams) -> (Vec<f32>, Vec<f32>) {
    match q {
        QParams::PerTensor { scale, zero_point } => (vec![*scale as f32], vec![*zero_point as f32]),
        QParams::PerChannel {
            scales,
            zero_points,
            ..
        } => (
            scales.iter().map(|&s| s as f32).collect(),
            zero_points.iter().map(|&z| z as f32).collect(),
        ),
        QParams::PerChannelFloat {
            scales,
            zero_points,
            ..
        } => (scales.clone(), zero_points.clone()),
    }
}

fn observer_range(m: &dyn FakeQuant) -> (Vec<f32>, Vec<f32>) {
    let (mut mn, mut mx) = (Vec::new(), Vec::new());
    m.visit_buffers(&mut |name, b| {
        if let BufferRef::F32(t) = b {
            match name {
                "activation_post_process.min_val" => mn = t.data().to_vec(),
                "activation_post_process.max_val" => mx = t.data().to_vec(),
                _ => {}
            }
        }
    });
    (mn, mx)
}

#[test]
fn fake_quant_sequences_match_torch_bit_for_bit() {
    for c in cases() {
        let name = &c.name;
        let mut m = spec_of(&c)
            .build()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let shape = c.shape("shape");
        let n: usize = shape.iter().product();
        let steps = c.i64("steps") as usize;
        assert_eq!(c.i64s("qp_len").len(), steps, "{name}: steps");
        let mut qp_at = 0;
        for (s, &len) in c.i64s("qp_len").iter().enumerate() {
            m.enable_observer(c.u8s("obs_on")[s] == 1);
            m.enable_fake_quant(c.u8s("fq_on")[s] == 1);
            let at = |k: &str| c.f32s(k)[s * n..(s + 1) * n].to_vec();
            let x = Tensor::new(&shape, at("x")).unwrap();
            let y = m
                .forward(&Value::F32(x))
                .unwrap_or_else(|e| panic!("{name} step {s}: {e}"));
            let y = y.into_f32("test").unwrap();
            assert_eq!(bits(y.data()), bits(&at("y")), "{name} step {s}: y");
            let gy = Tensor::new(&shape, at("gy")).unwrap();
            let dx = m
                .backward(&Value::F32(gy))
                .unwrap()
                .into_f32("test")
                .unwrap();
            assert_eq!(
                bits(dx.data()),
                bits(&at("dx")),
                "{name} step {s}: dx (mask)"
            );
            let len = len as usize;
            let want_scale = &c.f32s("scale")[qp_at..qp_at + len];
            let want_zp = &c.f32s("zero_point")[qp_at..qp_at + len];
            qp_at += len;
            assert_eq!(
                bits(m.scale().data()),
                bits(want_scale),
                "{name} step {s}: scale"
            );
            assert_eq!(
                zero_points_f32(m.zero_point()),
                want_zp,
                "{name} step {s}: zero_point"
            );
        }
        let (cq_s, cq_z) = qparams_f32(&m.calculate_qparams().unwrap());
        assert_eq!(
            bits(&cq_s),
            bits(c.f32s("cq_scale")),
            "{name}: calculate_qparams scale"
        );
        assert_eq!(
            cq_z,
            c.f32s("cq_zero_point"),
            "{name}: calculate_qparams zero point"
        );
        if c.str("kind") != "fixed" {
            let (mn, mx) = observer_range(m.as_ref());
            assert_eq!(bits(&mn), bits(c.f32s("min_val")), "{name}: min_val");
            assert_eq!(bits(&mx), bits(c.f32s("max_val")), "{name}: max_val");
        }
    }
}
