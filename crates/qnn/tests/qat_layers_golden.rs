//! PyTorch goldens for the QAT layers (torch 2.15.0, `tools/golden/gen_qat.py`): three SGD
//! training steps of qat Linear / LinearReLU / Conv1d / Conv2d / ConvReLU2d / ConvBn2d / ConvBnReLU2d
//! / ConvBn1d / ConvBnReLU1d / LinearBn1d with each kind of weight fake-quant. The first step's
//! weight fake-quant scale is compared bit for bit (except for Conv/Linear+BN: its `sqrt(running_var + eps)` is `torch.sqrt`, which on CPU goes
//! through MKL's vectorized sqrt and is 1 ulp off the correctly rounded value for ~16% of
//! inputs); outputs and gradients within 2e-5 (absolute) + 2e-5 (relative), because float GEMMs
//! and convolutions sum in another order than torch's. `to_float()`'s BN folding is
//! compared bit for bit on torch's final parameters; the weight qparams convert computes
//! (`weight_fake_quant(to_float().weight)`, `calculate_qparams()`) within the same tolerance.

#[allow(dead_code)]
#[path = "../../qtensor/tests/golden_support/format.rs"]
mod format;

use format::Case;
use qnn::float::{BatchNorm1d, BatchNorm2d, BatchNormConfig, Conv1dConfig, Conv2dConfig};
use qnn::qat::{FakeQuant, FakeQuantSpec};
use qnn::qtensor::observer::{ObserverConfig, ObserverSpec};
use qnn::qtensor::{QDType, QParams, QScheme, Tensor};
use qnn::{BufferMut, Module, Value, float, qat};

const TOL: f32 = 2e-5;

fn cases() -> Vec<Case> {
    let g = format::parse(include_str!("data/qat/qat_layers.golden")).expect("parse");
    assert_eq!(g.cases.len(), g.declared_cases);
    assert!(g.cases.len() >= 15);
    g.cases
}

/// The qconfig weight fake-quants the generator uses (PyTorch's defaults).
fn wfq_spec(name: &str) -> FakeQuantSpec {
    let tensor = ObserverConfig {
        quant_min: Some(-128),
        quant_max: Some(127),
        ..ObserverConfig::new(QDType::QInt8, QScheme::PerTensorSymmetric)
    };
    let channel = ObserverConfig {
        qscheme: QScheme::PerChannelSymmetric,
        ..tensor.clone()
    };
    let per_tensor = ObserverSpec::MovingAverageMinMax {
        config: tensor,
        averaging_constant: 0.01,
    };
    let per_channel = ObserverSpec::MovingAveragePerChannelMinMax {
        config: channel,
        ch_axis: 0,
        averaging_constant: 0.01,
    };
    match name {
        "fq_tensor" => FakeQuantSpec::FakeQuantize {
            observer: per_tensor,
        },
        "fq_channel" => FakeQuantSpec::FakeQuantize {
            observer: per_channel,
        },
        "fused_tensor" => FakeQuantSpec::FusedMovingAvgObs {
            observer: per_tensor,
        },
        "fused_channel" => FakeQuantSpec::FusedMovingAvgObs {
            observer: per_channel,
        },
        other => panic!("wfq {other}"),
    }
}

fn t(c: &Case, key: &str, shape: &[usize]) -> Tensor<f32> {
    Tensor::new(shape, c.f32s(key).to_vec()).unwrap()
}

fn opt(c: &Case, key: &str, shape: &[usize]) -> Option<Tensor<f32>> {
    (!c.f32s(key).is_empty()).then(|| t(c, key, shape))
}

fn close(case: &str, what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{case}: {what} length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= TOL + TOL * w.abs(),
            "{case}: {what}[{i}] = {g}, torch {w}"
        );
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Sets a batch norm's parameters and running statistics.
fn set_bn(bn: &mut dyn Module, w: &[f32], b: &[f32], mean: &[f32], var: &[f32]) {
    bn.visit_params_mut(&mut |name, p| {
        p.value
            .data_mut()
            .copy_from_slice(if name == "weight" { w } else { b });
    });
    bn.visit_buffers_mut(&mut |name, buf| {
        if let BufferMut::F32(t) = buf {
            match name {
                "running_mean" => t.data_mut().copy_from_slice(mean),
                "running_var" => t.data_mut().copy_from_slice(var),
                _ => {}
            }
        }
    });
}

struct Built {
    module: Box<dyn Module>,
    weight_shape: Vec<usize>,
}

fn build(c: &Case, prefix: &str) -> Built {
    let op = c.str("op");
    let shape = c.shape("shape");
    let out = c.i64("out") as usize;
    let spec = wfq_spec(c.str("wfq"));
    let key = |k: &str| format!("{prefix}{k}");
    let set = |b: &mut dyn Module| {
        set_bn(
            b,
            c.f32s(&key("bn_weight")),
            c.f32s(&key("bn_bias")),
            c.f32s(&key("bn_mean")),
            c.f32s(&key("bn_var")),
        )
    };
    let bn1 = || {
        let mut b = BatchNorm1d::new(BatchNormConfig::new(out));
        set(&mut b);
        b
    };
    let frozen = c.str("freeze_bn") == "yes";
    if op == "linearbn" {
        let ws = vec![out, shape[shape.len() - 1]];
        let f =
            float::Linear::from_tensors(t(c, &key("weight"), &ws), opt(c, &key("bias"), &[out]))
                .unwrap();
        let b1 = bn1();
        let mut m = qat::LinearBn1d::from_parts(f, b1, &spec).unwrap();
        if frozen {
            m.freeze_bn_stats();
        }
        return Built {
            module: Box::new(m),
            weight_shape: ws,
        };
    }
    if op.starts_with("linear") {
        let ws = vec![out, shape[shape.len() - 1]];
        let f =
            float::Linear::from_tensors(t(c, &key("weight"), &ws), opt(c, &key("bias"), &[out]))
                .unwrap();
        let module: Box<dyn Module> = if op == "linear" {
            Box::new(qat::Linear::from_float(&f, &spec).unwrap())
        } else {
            Box::new(qat::LinearReLU::from_float(&f, &spec).unwrap())
        };
        return Built {
            module,
            weight_shape: ws,
        };
    }
    if op.starts_with("conv1d") || op.starts_with("convbn1d") {
        let cfg = Conv1dConfig {
            stride: c.i64("stride") as usize,
            padding: c.i64("padding") as usize,
            groups: c.i64("groups") as usize,
            ..Conv1dConfig::new(shape[1], out, c.i64("kernel") as usize)
        };
        let ws = cfg.weight_shape().to_vec();
        let conv = float::Conv1d::from_tensors(
            cfg,
            t(c, &key("weight"), &ws),
            opt(c, &key("bias"), &[out]),
        )
        .unwrap();
        let module: Box<dyn Module> = match op {
            "conv1d" => Box::new(qat::Conv1d::from_float(&conv, &spec).unwrap()),
            "convbn1d" => {
                let b1 = bn1();
                let mut m = qat::ConvBn1d::from_parts(conv, b1, &spec).unwrap();
                if frozen {
                    m.freeze_bn_stats();
                }
                Box::new(m)
            }
            _ => {
                let b1 = bn1();
                Box::new(qat::ConvBnReLU1d::from_parts(conv, b1, &spec).unwrap())
            }
        };
        return Built {
            module,
            weight_shape: ws,
        };
    }
    let cfg = Conv2dConfig::new(shape[1], out, c.i64("kernel") as usize)
        .stride(c.i64("stride") as usize)
        .padding(c.i64("padding") as usize)
        .groups(c.i64("groups") as usize);
    let ws = cfg.weight_shape().to_vec();
    let conv =
        float::Conv2d::from_tensors(cfg, t(c, &key("weight"), &ws), opt(c, &key("bias"), &[out]))
            .unwrap();
    let module: Box<dyn Module> = match op {
        "conv" => Box::new(qat::Conv2d::from_float(&conv, &spec).unwrap()),
        "conv_relu" => Box::new(qat::ConvReLU2d::from_float(&conv, &spec).unwrap()),
        _ => {
            let mut bn = BatchNorm2d::new(BatchNormConfig::new(out));
            set(&mut bn);
            if op == "convbn" {
                let mut m = qat::ConvBn2d::from_parts(conv, bn, &spec).unwrap();
                if frozen {
                    m.freeze_bn_stats();
                }
                Box::new(m)
            } else {
                Box::new(qat::ConvBnReLU2d::from_parts(conv, bn, &spec).unwrap())
            }
        }
    };
    Built {
        module,
        weight_shape: ws,
    }
}

fn weight_fq(m: &dyn Module) -> &dyn FakeQuant {
    if let Some(l) = m.downcast_ref::<qat::Linear>() {
        l.weight_fake_quant()
    } else if let Some(l) = m.downcast_ref::<qat::LinearReLU>() {
        l.weight_fake_quant()
    } else if let Some(l) = m.downcast_ref::<qat::Conv2d>() {
        l.weight_fake_quant()
    } else if let Some(l) = m.downcast_ref::<qat::ConvReLU2d>() {
        l.weight_fake_quant()
    } else if let Some(l) = m.downcast_ref::<qat::Conv1d>() {
        l.weight_fake_quant()
    } else if let Some(l) = m.downcast_ref::<qat::ConvBn2d>() {
        l.weight_fake_quant()
    } else if let Some(l) = m.downcast_ref::<qat::ConvBnReLU2d>() {
        l.weight_fake_quant()
    } else if let Some(l) = m.downcast_ref::<qat::ConvBn1d>() {
        l.weight_fake_quant()
    } else if let Some(l) = m.downcast_ref::<qat::ConvBnReLU1d>() {
        l.weight_fake_quant()
    } else if let Some(l) = m.downcast_ref::<qat::LinearBn1d>() {
        l.weight_fake_quant()
    } else {
        panic!("not a QAT layer")
    }
}

/// The float layer `to_float()` gives, as (weight, bias).
fn to_float(m: &dyn Module) -> (Vec<f32>, Vec<f32>) {
    let parts = |w: qnn::Param, b: Option<qnn::Param>| {
        (
            w.value.data().to_vec(),
            b.map(|b| b.value.data().to_vec()).unwrap_or_default(),
        )
    };
    let conv = |f: float::Conv2d| {
        (
            f.weight.value.data().to_vec(),
            f.bias.map(|b| b.value.data().to_vec()).unwrap_or_default(),
        )
    };
    if let Some(l) = m.downcast_ref::<qat::Linear>() {
        let f = l.to_float().unwrap();
        (
            f.weight.value.data().to_vec(),
            f.bias.map(|b| b.value.data().to_vec()).unwrap_or_default(),
        )
    } else if let Some(l) = m.downcast_ref::<qat::LinearReLU>() {
        let f = l.to_float().unwrap();
        (
            f.weight.value.data().to_vec(),
            f.bias.map(|b| b.value.data().to_vec()).unwrap_or_default(),
        )
    } else if let Some(l) = m.downcast_ref::<qat::Conv2d>() {
        conv(l.to_float().unwrap())
    } else if let Some(l) = m.downcast_ref::<qat::ConvReLU2d>() {
        conv(l.to_float().unwrap())
    } else if let Some(l) = m.downcast_ref::<qat::Conv1d>() {
        let f = l.to_float().unwrap();
        (
            f.weight.value.data().to_vec(),
            f.bias.map(|b| b.value.data().to_vec()).unwrap_or_default(),
        )
    } else if let Some(l) = m.downcast_ref::<qat::ConvBn2d>() {
        conv(l.to_float().unwrap())
    } else if let Some(l) = m.downcast_ref::<qat::ConvBnReLU2d>() {
        conv(l.to_float().unwrap())
    } else if let Some(l) = m.downcast_ref::<qat::ConvBn1d>() {
        parts(l.to_float().unwrap().weight, l.to_float().unwrap().bias)
    } else if let Some(l) = m.downcast_ref::<qat::ConvBnReLU1d>() {
        parts(l.to_float().unwrap().weight, l.to_float().unwrap().bias)
    } else if let Some(l) = m.downcast_ref::<qat::LinearBn1d>() {
        let f = l.to_float().unwrap();
        parts(f.weight, f.bias)
    } else {
        panic!("not a QAT layer")
    }
}

/// `to_float_with_weight_qparams()`'s qparams as (scales, zero points).
fn convert_qparams(m: &mut dyn Module) -> (Vec<f32>, Vec<i64>) {
    let q = if let Some(l) = m.downcast_mut::<qat::Linear>() {
        l.to_float_with_weight_qparams().unwrap().1
    } else if let Some(l) = m.downcast_mut::<qat::LinearReLU>() {
        l.to_float_with_weight_qparams().unwrap().1
    } else if let Some(l) = m.downcast_mut::<qat::Conv2d>() {
        l.to_float_with_weight_qparams().unwrap().1
    } else if let Some(l) = m.downcast_mut::<qat::ConvReLU2d>() {
        l.to_float_with_weight_qparams().unwrap().1
    } else if let Some(l) = m.downcast_mut::<qat::Conv1d>() {
        l.to_float_with_weight_qparams().unwrap().1
    } else if let Some(l) = m.downcast_mut::<qat::ConvBn2d>() {
        l.to_float_with_weight_qparams().unwrap().1
    } else if let Some(l) = m.downcast_mut::<qat::ConvBnReLU2d>() {
        l.to_float_with_weight_qparams().unwrap().1
    } else if let Some(l) = m.downcast_mut::<qat::ConvBn1d>() {
        l.to_float_with_weight_qparams().unwrap().1
    } else if let Some(l) = m.downcast_mut::<qat::ConvBnReLU1d>() {
        l.to_float_with_weight_qparams().unwrap().1
    } else if let Some(l) = m.downcast_mut::<qat::LinearBn1d>() {
        l.to_float_with_weight_qparams().unwrap().1
    } else {
        panic!("not a QAT layer")
    };
    match q {
        QParams::PerTensor { scale, zero_point } => (vec![scale as f32], vec![zero_point]),
        QParams::PerChannel {
            scales,
            zero_points,
            axis,
        } => {
            assert_eq!(axis, 0);
            (scales.iter().map(|&s| s as f32).collect(), zero_points)
        }
        other => panic!("unexpected weight qparams {other:?}"),
    }
}

fn grads(m: &dyn Module) -> std::collections::BTreeMap<String, Vec<f32>> {
    let mut out = std::collections::BTreeMap::new();
    m.visit_params(&mut |name, p| {
        out.insert(name.to_string(), p.grad.data().to_vec());
    });
    out
}

fn values(m: &dyn Module) -> std::collections::BTreeMap<String, Vec<f32>> {
    let mut out = std::collections::BTreeMap::new();
    m.visit_params(&mut |name, p| {
        out.insert(name.to_string(), p.value.data().to_vec());
    });
    m.visit_buffers(&mut |name, b| {
        if let qnn::BufferRef::F32(t) = b {
            out.insert(name.to_string(), t.data().to_vec());
        }
    });
    out
}

#[test]
fn qat_layers_train_like_torch() {
    for c in cases() {
        let name = &c.name;
        let Built {
            mut module,
            weight_shape,
        } = build(&c, "");
        let shape = c.shape("shape");
        let y_shape = c.shape("y_shape");
        let (nx, ny): (usize, usize) = (shape.iter().product(), y_shape.iter().product());
        let lr = c.f64("lr") as f32;
        let nw: usize = weight_shape.iter().product();
        let mut scale_at = 0;
        for s in 0..c.i64("steps") as usize {
            let x = Tensor::new(&shape, c.f32s("x")[s * nx..(s + 1) * nx].to_vec()).unwrap();
            let y = module
                .forward(&Value::F32(x))
                .unwrap()
                .into_f32("t")
                .unwrap();
            close(
                name,
                &format!("step {s} y"),
                y.data(),
                &c.f32s("y")[s * ny..(s + 1) * ny],
            );
            let scale = weight_fq(module.as_ref()).scale().data().to_vec();
            let want_scale = &c.f32s("wfq_scale")[scale_at..scale_at + scale.len()];
            scale_at += scale.len();
            if s == 0 && !c.str("op").contains("bn") {
                assert_eq!(bits(&scale), bits(want_scale), "{name}: first weight scale");
            } else {
                close(name, &format!("step {s} weight scale"), &scale, want_scale);
            }
            module.zero_grad();
            let gy = Tensor::new(&y_shape, c.f32s("gy")[s * ny..(s + 1) * ny].to_vec()).unwrap();
            let dx = module
                .backward(&Value::F32(gy))
                .unwrap()
                .into_f32("t")
                .unwrap();
            close(
                name,
                &format!("step {s} dx"),
                dx.data(),
                &c.f32s("dx")[s * nx..(s + 1) * nx],
            );
            let g = grads(module.as_ref());
            close(
                name,
                &format!("step {s} dweight"),
                &g["weight"],
                &c.f32s("dweight")[s * nw..(s + 1) * nw],
            );
            for (key, field) in [
                ("bias", "dbias"),
                ("bn.weight", "dbn_weight"),
                ("bn.bias", "dbn_bias"),
            ] {
                if let Some(v) = g.get(key) {
                    close(
                        name,
                        &format!("step {s} {field}"),
                        v,
                        &c.f32s(field)[s * v.len()..(s + 1) * v.len()],
                    );
                }
            }
            module.visit_params_mut(&mut |_, p| {
                let grad = p.grad.data().to_vec();
                for (v, g) in p.value.data_mut().iter_mut().zip(grad) {
                    *v += -lr * g;
                }
            });
        }
        let v = values(module.as_ref());
        for (key, field) in [
            ("weight", "final_weight"),
            ("bias", "final_bias"),
            ("bn.weight", "final_bn_weight"),
            ("bn.bias", "final_bn_bias"),
            ("bn.running_mean", "final_bn_mean"),
            ("bn.running_var", "final_bn_var"),
        ] {
            if let Some(got) = v.get(key) {
                close(name, field, got, c.f32s(field));
            }
        }
        let (fw, fb) = to_float(module.as_ref());
        close(name, "to_float weight", &fw, c.f32s("float_weight"));
        close(name, "to_float bias", &fb, c.f32s("float_bias"));
        let (cq_s, cq_z) = convert_qparams(module.as_mut());
        close(name, "convert weight scale", &cq_s, c.f32s("cq_scale"));
        assert_eq!(
            cq_z,
            c.i64s("cq_zero_point"),
            "{name}: convert weight zero points"
        );
        // Folding alone is exact: torch's final parameters give torch's float layer bit for bit.
        let exact = build(&c, "final_");
        let (fw, fb) = to_float(exact.module.as_ref());
        assert_eq!(
            bits(&fw),
            bits(c.f32s("float_weight")),
            "{name}: folded weight bits"
        );
        assert_eq!(
            bits(&fb),
            bits(c.f32s("float_bias")),
            "{name}: folded bias bits"
        );
    }
}
