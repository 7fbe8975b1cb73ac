//! Loading a QAT state dict PyTorch saved (`tools/golden/gen_qat.py`, interop family): a
//! ConvBnReLU2d with a per-channel `FakeQuantize` weight and a Linear with a fused per-tensor
//! weight fake-quant, trained two steps in torch and saved with `safetensors.torch.save_file`.
//! Every key must load by name, dtype and shape into freshly built modules (observer state
//! included), and one more eval-mode forward must give torch's outputs (within 2e-5, float
//! convolution order) and weight scales (bit for bit for the linear layer).

#[allow(dead_code)]
#[path = "../../qtensor/tests/golden_support/format.rs"]
mod format;

use std::collections::BTreeMap;

use qnn::float::{BatchNorm2d, BatchNormConfig, Conv2dConfig};
use qnn::init::Rng;
use qnn::qat::{self, FakeQuantSpec};
use qnn::qtensor::observer::{ObserverConfig, ObserverSpec};
use qnn::qtensor::{QDType, QScheme, Tensor};
use qnn::state_dict::{StateEntry, from_safetensors, load_state_dict};
use qnn::{Module, Value, float};

const TOL: f32 = 2e-5;

fn weight_config(qscheme: QScheme) -> ObserverConfig {
    ObserverConfig {
        quant_min: Some(-128),
        quant_max: Some(127),
        ..ObserverConfig::new(QDType::QInt8, qscheme)
    }
}

/// The entries under `prefix`, with the prefix removed.
fn under(dict: &BTreeMap<String, StateEntry>, prefix: &str) -> BTreeMap<String, StateEntry> {
    dict.iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone())))
        .collect()
}

fn check(name: &str, m: &mut dyn Module) {
    let g = format::parse(include_str!("data/qat/interop.golden")).unwrap();
    let c = g.cases.iter().find(|c| c.name == name).unwrap();
    let x = Tensor::new(&c.shape("shape"), c.f32s("x").to_vec()).unwrap();
    let y = m.forward(&Value::F32(x)).unwrap().into_f32("t").unwrap();
    assert_eq!(y.shape(), c.shape("y_shape").as_slice());
    for (i, (a, b)) in y.data().iter().zip(c.f32s("y")).enumerate() {
        assert!(
            (a - b).abs() <= TOL + TOL * b.abs(),
            "{name}: y[{i}] = {a}, torch {b}"
        );
    }
}

#[test]
fn pytorch_qat_state_dict_loads_and_runs() {
    let bytes = include_bytes!("data/qat/interop_qat.safetensors");
    let dict = from_safetensors(bytes).unwrap();
    let g = format::parse(include_str!("data/qat/interop.golden")).unwrap();
    let want = |name: &str| {
        g.cases
            .iter()
            .find(|c| c.name == name)
            .unwrap()
            .f32s("wfq_scale")
            .to_vec()
    };
    let mut rng = Rng::new(1);

    let conv = float::Conv2d::new(Conv2dConfig::new(3, 4, 3).padding(1), &mut rng).unwrap();
    let bn = BatchNorm2d::new(BatchNormConfig::new(4));
    let spec = FakeQuantSpec::FakeQuantize {
        observer: ObserverSpec::MovingAveragePerChannelMinMax {
            config: weight_config(QScheme::PerChannelSymmetric),
            ch_axis: 0,
            averaging_constant: 0.01,
        },
    };
    let mut cb = qat::ConvBnReLU2d::from_parts(conv, bn, &spec).unwrap();
    load_state_dict(&mut cb, &under(&dict, "conv."), true).unwrap();
    cb.freeze_bn_stats();
    cb.eval();
    check("conv", &mut cb);
    let got = cb.weight_fake_quant().scale().data().to_vec();
    for (a, b) in got.iter().zip(want("conv")) {
        assert!(
            (a - b).abs() <= TOL * b.abs(),
            "conv weight scale {a} vs {b}"
        );
    }

    let lin = float::Linear::new(6, 5, true, &mut rng);
    let spec = FakeQuantSpec::FusedMovingAvgObs {
        observer: ObserverSpec::MovingAverageMinMax {
            config: weight_config(QScheme::PerTensorSymmetric),
            averaging_constant: 0.01,
        },
    };
    let mut fc = qat::Linear::from_float(&lin, &spec).unwrap();
    load_state_dict(&mut fc, &under(&dict, "fc."), true).unwrap();
    fc.eval();
    check("fc", &mut fc);
    let got: Vec<u32> = fc
        .weight_fake_quant()
        .scale()
        .data()
        .iter()
        .map(|v| v.to_bits())
        .collect();
    let want: Vec<u32> = want("fc").iter().map(|v| v.to_bits()).collect();
    assert_eq!(got, want, "fc weight scale bits");
}
