//! The named QConfigs against PyTorch 2.15: `tools/golden/gen_qconfig.py` instantiates every
//! default (`qconfig.activation()`, `qconfig.weight()`) and records the module built; each of
//! our specs must describe the same module with the same arguments.

#[allow(dead_code)]
#[path = "../../qtensor/tests/golden_support/format.rs"]
mod format;

use format::Case;
use qflow::qconfig::*;
use qnn::qat::FakeQuantSpec;
use qnn::qtensor::observer::{ObserverConfig, ObserverSpec, PlaceholderDtype};
use qnn::qtensor::{QDType, QScheme, calculate_qmin_qmax};

const NAMED: &str = include_str!("data/qconfig/named.golden");

fn ours(name: &str) -> QConfig {
    let backend = |s: &str| s.parse::<Backend>().unwrap();
    match name {
        "default_qconfig" => default_qconfig(),
        "default_per_channel_qconfig" => default_per_channel_qconfig(),
        "default_qat_qconfig" => default_qat_qconfig(),
        "default_qat_qconfig_v2" => default_qat_qconfig_v2(),
        "default_dynamic_qconfig" => default_dynamic_qconfig(),
        "per_channel_dynamic_qconfig" => per_channel_dynamic_qconfig(),
        "float16_dynamic_qconfig" => float16_dynamic_qconfig(),
        "float_qparams_weight_only_qconfig" => float_qparams_weight_only_qconfig(),
        n if n.starts_with("get_default_qconfig_") => {
            get_default_qconfig(backend(&n["get_default_qconfig_".len()..]))
        }
        n if n.starts_with("get_default_qat_qconfig_") => {
            let rest = &n["get_default_qat_qconfig_".len()..];
            let (b, v) = rest.rsplit_once("_v").unwrap();
            get_default_qat_qconfig(backend(b), v.parse().unwrap()).unwrap()
        }
        other => panic!("no qconfig named {other}"),
    }
}

fn dtype_name(d: QDType) -> &'static str {
    match d {
        QDType::QUInt8 => "quint8",
        QDType::QInt8 => "qint8",
        QDType::QInt32 => "qint32",
        QDType::QUInt4x2 => "quint4x2",
    }
}

fn qscheme_name(q: QScheme) -> &'static str {
    match q {
        QScheme::PerTensorAffine => "per_tensor_affine",
        QScheme::PerTensorSymmetric => "per_tensor_symmetric",
        QScheme::PerChannelAffine => "per_channel_affine",
        QScheme::PerChannelSymmetric => "per_channel_symmetric",
        QScheme::PerChannelAffineFloatQParams => "per_channel_affine_float_qparams",
    }
}

fn placeholder_name(d: PlaceholderDtype) -> &'static str {
    match d {
        PlaceholderDtype::Quantized(q) => dtype_name(q),
        PlaceholderDtype::Float16 => "float16",
        PlaceholderDtype::Float32 => "float32",
    }
}

/// (observer class, config, averaging constant, ch_axis, bins, upsample rate).
type Described<'a> = (
    &'static str,
    &'a ObserverConfig,
    Option<f32>,
    Option<usize>,
    Option<usize>,
    Option<usize>,
);

fn describe(o: &ObserverSpec) -> Option<Described<'_>> {
    Some(match o {
        ObserverSpec::MinMax(c) => ("MinMaxObserver", c, None, None, None, None),
        ObserverSpec::MovingAverageMinMax {
            config,
            averaging_constant,
        } => (
            "MovingAverageMinMaxObserver",
            config,
            Some(*averaging_constant),
            None,
            None,
            None,
        ),
        ObserverSpec::PerChannelMinMax { config, ch_axis } => (
            "PerChannelMinMaxObserver",
            config,
            None,
            Some(*ch_axis),
            None,
            None,
        ),
        ObserverSpec::MovingAveragePerChannelMinMax {
            config,
            ch_axis,
            averaging_constant,
        } => (
            "MovingAveragePerChannelMinMaxObserver",
            config,
            Some(*averaging_constant),
            Some(*ch_axis),
            None,
            None,
        ),
        ObserverSpec::Histogram {
            config,
            bins,
            upsample_rate,
        } => (
            "HistogramObserver",
            config,
            None,
            None,
            Some(*bins),
            Some(*upsample_rate),
        ),
        _ => return None,
    })
}

fn check(c: &Case, spec: &QuantSpec) {
    let n = &c.name;
    let top = match spec {
        QuantSpec::FakeQuant(FakeQuantSpec::FakeQuantize { .. }) => "FakeQuantize",
        QuantSpec::FakeQuant(FakeQuantSpec::FusedMovingAvgObs { .. }) => {
            "FusedMovingAvgObsFakeQuantize"
        }
        QuantSpec::FakeQuant(_) => "FixedQParamsFakeQuantize",
        QuantSpec::Observer(_) => c.str("observer"),
    };
    assert_eq!(top, c.str("top"), "{n}: module");
    let obs = spec.observer().unwrap();
    match obs {
        ObserverSpec::Placeholder { dtype, is_dynamic } => {
            assert_eq!(c.str("observer"), "PlaceholderObserver", "{n}");
            assert_eq!(placeholder_name(*dtype), c.str("dtype"), "{n}: dtype");
            assert_eq!(*is_dynamic, c.str("is_dynamic") == "yes", "{n}: is_dynamic");
            return;
        }
        ObserverSpec::Noop { dtype } => {
            assert_eq!(c.str("observer"), "NoopObserver", "{n}");
            assert_eq!(placeholder_name(*dtype), c.str("dtype"), "{n}: dtype");
            return;
        }
        _ => {}
    }
    let (class, cfg, avg, axis, bins, up) =
        describe(obs).unwrap_or_else(|| panic!("{n}: unexpected observer {obs:?}"));
    assert_eq!(class, c.str("observer"), "{n}: observer class");
    assert_eq!(dtype_name(cfg.dtype), c.str("dtype"), "{n}: dtype");
    assert_eq!(qscheme_name(cfg.qscheme), c.str("qscheme"), "{n}: qscheme");
    assert_eq!(
        cfg.reduce_range,
        c.str("reduce_range") == "yes",
        "{n}: reduce_range"
    );
    let custom = cfg.quant_min.zip(cfg.quant_max);
    assert_eq!(
        custom.is_some(),
        c.str("custom_range") == "yes",
        "{n}: custom range"
    );
    let (lo, hi) = calculate_qmin_qmax(cfg.dtype, cfg.reduce_range, custom).unwrap();
    assert_eq!([lo, hi], c.i64s("qrange"), "{n}: effective quant range");
    assert_eq!(cfg.eps.to_bits(), c.f32("eps").to_bits(), "{n}: eps");
    let want_avg: Vec<f32> = c
        .f64s("averaging_constant")
        .iter()
        .map(|&v| v as f32)
        .collect();
    assert_eq!(
        avg.into_iter().collect::<Vec<_>>(),
        want_avg,
        "{n}: averaging_constant"
    );
    let opt = |v: Option<usize>| v.map(|x| x as i64).into_iter().collect::<Vec<_>>();
    assert_eq!(opt(axis), c.i64s("ch_axis"), "{n}: ch_axis");
    assert_eq!(opt(bins), c.i64s("bins"), "{n}: bins");
    assert_eq!(opt(up), c.i64s("upsample_rate"), "{n}: upsample_rate");
    assert_eq!(c.str("is_dynamic"), "no", "{n}");
}

#[test]
fn named_qconfigs_equal_pytorch() {
    let g = format::parse(NAMED).unwrap();
    assert_eq!(g.cases.len(), g.declared_cases);
    assert_eq!(g.cases.len(), 40);
    for c in &g.cases {
        let (name, part) = c.name.rsplit_once("__").unwrap();
        let qc = ours(name);
        let spec = if part == "activation" {
            &qc.activation
        } else {
            &qc.weight
        };
        check(c, spec);
    }
}

#[test]
fn full_range_and_errors() {
    let full = full_range_qconfig();
    let cfg = full.activation.observer().and_then(|o| o.config()).unwrap();
    assert!(!cfg.reduce_range);
    assert_eq!(
        calculate_qmin_qmax(
            cfg.dtype,
            cfg.reduce_range,
            cfg.quant_min.zip(cfg.quant_max)
        )
        .unwrap(),
        (0, 255)
    );
    let fbgemm = get_default_qconfig(Backend::Fbgemm);
    let f = fbgemm
        .activation
        .observer()
        .and_then(|o| o.config())
        .unwrap();
    assert_eq!(
        calculate_qmin_qmax(f.dtype, f.reduce_range, None).unwrap(),
        (0, 127)
    );
    assert_eq!(full.weight, fbgemm.weight);
    let qat = full_range_qat_qconfig();
    assert!(qat.activation.is_fake_quant());
    assert_eq!(qat, get_default_qat_qconfig(Backend::Onednn, 1).unwrap());

    assert!("tensorrt".parse::<Backend>().is_err());
    assert_eq!("x86".parse::<Backend>().unwrap().to_string(), "x86");
    assert!(get_default_qat_qconfig(Backend::X86, 2).is_err());
    assert!(default_dynamic_qconfig().is_dynamic());
    assert!(!default_qconfig().is_dynamic());
    assert!(float16_dynamic_qconfig().is_float16_weight());
    assert!(!default_dynamic_qconfig().is_float16_weight());
}
