//! qflow's passes against PyTorch's eager flow on the same models, weights and data
//! (`tools/golden/gen_flow.py` → `tests/data/flow/`): LeNet5, a ResNet basic block and a
//! MobileNetV2 inverted residual, each built with qflow builders under PyTorch's module paths,
//! loaded from PyTorch's float state dict, fused with PyTorch's groups, prepared with the
//! equivalent QConfig, calibrated on the same batches and converted.
//!
//! Checked bit for bit against torch 2.15.0 (fbgemm): every observer's scale, zero point and
//! min/max; every quantized weight (int values, per-channel or per-tensor scales and zero
//! points, including PyTorch's `_clamp_weights` for weight observers narrower than qint8); the
//! converted model's quantized output (int values, scale, zero point). The float model's
//! output is compared with a tolerance only (the float convolution sums in another order).

mod flow_support;
#[allow(dead_code)]
#[path = "../../qtensor/tests/golden_support/format.rs"]
mod format;

use std::collections::BTreeSet;
use std::path::PathBuf;

use flow_support::{MODELS, Model, run_f32};
use format::Case;
use qflow::Graph;
use qflow::passes::{ObserverNode, convert, fuse_modules, observer_name, prepare};
use qflow::qconfig::{Backend, QConfig, QConfigMapping, default_qconfig, get_default_qconfig};
use qnn::qtensor::observer::{ObserverConfig, ObserverSpec};
use qnn::qtensor::{QDType, QParams, QScheme, QTensor, Tensor};
use qnn::{Module, Value, quantized};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/flow")
}

fn cases(model: Model) -> Vec<Case> {
    let path = data_dir().join(format!("{}.golden", model.stem()));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let g = format::parse(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    assert_eq!(g.cases.len(), g.declared_cases, "{path:?}: truncated");
    g.cases
}

fn case<'a>(cases: &'a [Case], name: &str) -> &'a Case {
    cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case {name}"))
}

/// The float graph with PyTorch's weights and BN statistics, in eval mode.
fn torch_float_graph(model: Model) -> Graph {
    let mut g = model.graph(0);
    let path = data_dir().join(format!("{}.safetensors", model.stem()));
    qnn::state_dict::load_safetensors(&mut g, &path, true)
        .unwrap_or_else(|e| panic!("{path:?}: {e}"));
    g.eval();
    g
}

/// The QConfig the generator used for a case name.
fn qconfig(name: &str) -> QConfig {
    match name {
        "fbgemm" => get_default_qconfig(Backend::Fbgemm),
        "minmax" => default_qconfig(),
        "movavg" => {
            let mut config = ObserverConfig::new(QDType::QUInt8, QScheme::PerTensorAffine);
            (config.quant_min, config.quant_max) = (Some(0), Some(127));
            QConfig::new(
                ObserverSpec::MovingAverageMinMax {
                    config,
                    averaging_constant: 0.01,
                },
                ObserverSpec::default_weight_observer(),
            )
        }
        "clamp127" => QConfig::new(
            ObserverSpec::default_observer(),
            ObserverSpec::weight_observer_range_neg_127_to_127(),
        ),
        "clamp7bit" => {
            let mut config = ObserverConfig::new(QDType::QInt8, QScheme::PerChannelSymmetric);
            (config.quant_min, config.quant_max) = (Some(-64), Some(63));
            QConfig::new(
                ObserverSpec::default_observer(),
                ObserverSpec::PerChannelMinMax { config, ch_axis: 0 },
            )
        }
        other => panic!("unknown qconfig case {other}"),
    }
}

fn names(c: &Case, key: &str) -> Vec<String> {
    c.str(key).split(',').map(str::to_string).collect()
}

/// The qflow value observed where PyTorch has `module` own an observer (`quant` is the
/// QuantStub in front of the graph input `x`).
fn qflow_value(module: &str) -> &str {
    if module == "quant" { "x" } else { module }
}

fn images(c: &Case, data: &str, shape: &str) -> Vec<Tensor<f32>> {
    split(c.f32s(data), &c.shape(shape))
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The quantized weight of a converted node.
fn weight_of(g: &Graph, name: &str) -> QTensor {
    let w = if let Some(m) = g.module_as::<quantized::Conv2d>(name) {
        m.weight()
    } else if let Some(m) = g.module_as::<quantized::ConvReLU2d>(name) {
        m.weight()
    } else if let Some(m) = g.module_as::<quantized::Linear>(name) {
        m.weight()
    } else if let Some(m) = g.module_as::<quantized::LinearReLU>(name) {
        m.weight()
    } else {
        panic!(
            "`{name}` is not a quantized conv or linear: {:?}",
            g.node(name).map(|n| n.kind())
        )
    };
    w.unwrap()
}

fn weight_qparams(w: &QTensor) -> (Vec<f64>, Vec<i64>) {
    match w.qparams() {
        QParams::PerTensor { scale, zero_point } => (vec![*scale], vec![*zero_point]),
        QParams::PerChannel {
            scales,
            zero_points,
            axis,
        } => {
            assert_eq!(*axis, 0);
            (scales.clone(), zero_points.clone())
        }
        other => panic!("unexpected weight qparams {other:?}"),
    }
}

/// How the observers are calibrated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Calibration {
    /// Each observer node is fed the float tensors its PyTorch counterpart saw (`acts`): the
    /// passes, observers, weight quantization and quantized kernels are then compared bit for
    /// bit, independent of float rounding.
    TorchActivations,
    /// As `TorchActivations`, but each batch observed once: PyTorch's fused modules are
    /// `nn.Sequential`s whose observer runs both as their last child and from the forward hook,
    /// so PyTorch observes their outputs twice per batch; qflow observes once. For MinMax and
    /// Histogram observers that makes no difference (the range is the same and the histogram
    /// doubles exactly), which this mode checks bit for bit.
    TorchActivationsOnce,
    /// The prepared float graph runs on the calibration batches, as a user would. Its float
    /// convolutions and GEMMs sum in another order than PyTorch's (oneDNN / MKL), so the
    /// observed ranges differ from PyTorch's in the last bits; the results are bounded instead.
    Graph,
}

/// How far an end-to-end (graph-calibrated) result is from PyTorch's.
#[derive(Debug, Default)]
struct Drift {
    /// Largest relative difference of an observed min or max.
    range_rel: f64,
    /// Largest relative difference of an activation scale.
    scale_rel: f64,
    /// Largest zero-point difference.
    zp: i64,
    /// Output ints that differ, and the largest difference.
    out_diff_count: usize,
    out_diff_max: i32,
    /// Number of output values.
    out_len: usize,
}

fn rel(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
    }
}

/// fuse → prepare → calibrate → convert with qflow, checking each stage against the case.
/// Returns the drift from PyTorch (all zero for `TorchActivations`, where every check is
/// exact).
fn check_flow(model: Model, qname: &str, calibration: Calibration) -> Drift {
    let all = cases(model);
    let data = case(&all, "data");
    let acts = case(&all, "acts");
    let want = case(&all, qname);
    let label = format!("{}/{qname}/{calibration:?}", model.stem());
    let exact = calibration != Calibration::Graph;
    let mut drift = Drift::default();

    let mut g = torch_float_graph(model);
    let groups = model.fuse_groups();
    let groups: Vec<&[&str]> = groups.iter().map(Vec::as_slice).collect();
    fuse_modules(&mut g, &groups).unwrap();
    let mapping = QConfigMapping::new().set_global(Some(qconfig(qname)));
    let inserted: BTreeSet<String> = prepare(&mut g, &mapping).unwrap().into_iter().collect();
    let torch_obs = names(want, "obs_names");
    let expected: BTreeSet<String> = torch_obs
        .iter()
        .map(|m| observer_name(qflow_value(m)))
        .collect();
    assert_eq!(inserted, expected, "{label}: observer placement");

    let calib = images(data, "calib", "calib_shape");
    match calibration {
        Calibration::Graph => {
            for b in &calib {
                run_f32(&mut g, b);
            }
        }
        Calibration::TorchActivations | Calibration::TorchActivationsOnce => {
            for m in &torch_obs {
                let mut seen = if m == "quant" {
                    calib.clone()
                } else {
                    // PyTorch's fused modules are `nn.Sequential`s: their observer runs as the
                    // last child *and* from the forward hook, so it sees each batch twice.
                    let key = format!("act.{m}");
                    let one = acts.shape(&format!("{key}.shape"));
                    let values = acts.f32s(&key);
                    let mut shape = vec![values.len() / one.iter().product::<usize>()];
                    shape.extend(one);
                    split(values, &shape)
                };
                if calibration == Calibration::TorchActivationsOnce {
                    seen.dedup_by(|a, b| a.data() == b.data());
                    assert_eq!(seen.len(), calib.len(), "{label}: {m}");
                }
                let obs = g
                    .module_as_mut::<ObserverNode>(&observer_name(qflow_value(m)))
                    .unwrap();
                // Where qflow repeats the observation itself (moving averages after a fused
                // module), one forward call stands for PyTorch's two observations.
                let step = obs.observations_per_call() as usize;
                if qname == "movavg" {
                    // Here the repetition changes the result: prepare must match PyTorch's.
                    assert_eq!(step * calib.len(), seen.len(), "{label}: {m} observations");
                }
                for t in seen.into_iter().step_by(step) {
                    obs.forward(&Value::F32(t)).unwrap();
                }
            }
        }
    }
    let (scales, zps) = (want.f64s("obs_scale"), want.i64s("obs_zp"));
    let (mins, maxs) = (want.f32s("obs_min"), want.f32s("obs_max"));
    for (i, m) in torch_obs.iter().enumerate() {
        let obs_name = observer_name(qflow_value(m));
        let obs = g.module_as::<ObserverNode>(&obs_name).unwrap();
        let (lo, hi) = obs.observer().min_max().unwrap();
        let QParams::PerTensor { scale, zero_point } = obs.calculate_qparams().unwrap() else {
            panic!("{label}: {obs_name}: per-tensor qparams expected");
        };
        if exact {
            assert_eq!(
                (lo.to_bits(), hi.to_bits()),
                (mins[i].to_bits(), maxs[i].to_bits()),
                "{label}: {obs_name} min/max ({lo}, {hi}) vs torch ({}, {})",
                mins[i],
                maxs[i]
            );
            assert_eq!(
                (scale.to_bits(), zero_point),
                (scales[i].to_bits(), zps[i]),
                "{label}: {obs_name} qparams ({scale}, {zero_point}) vs torch ({}, {})",
                scales[i],
                zps[i]
            );
        } else {
            drift.range_rel = drift
                .range_rel
                .max(rel(lo.into(), mins[i].into()))
                .max(rel(hi.into(), maxs[i].into()));
            drift.scale_rel = drift.scale_rel.max(rel(scale, scales[i]));
            drift.zp = drift.zp.max((zero_point - zps[i]).abs());
        }
    }

    convert(&mut g).unwrap();
    // Weights never see activations: they are exact in both modes.
    for w_name in names(want, "weights") {
        let w = weight_of(&g, &w_name);
        let (s, z) = weight_qparams(&w);
        let key = |f: &str| format!("w.{w_name}.{f}");
        assert_eq!(
            bits(&s),
            bits(want.f64s(&key("scale"))),
            "{label}: {w_name} weight scales"
        );
        assert_eq!(
            z,
            want.i64s(&key("zp")),
            "{label}: {w_name} weight zero points"
        );
        let torch_ints: Vec<i32> = want
            .u8s(&key("int"))
            .iter()
            .map(|&b| i32::from(b as i8))
            .collect();
        assert_eq!(
            w.int_values(),
            torch_ints,
            "{label}: {w_name} weight int values"
        );
    }

    // The quantized output: read the value the final DeQuantize consumes.
    let last = g.try_node("dequant").unwrap().inputs()[0].clone();
    g.set_outputs(vec![last]).unwrap();
    let test = Tensor::new(&data.shape("test_shape"), data.f32s("test").to_vec()).unwrap();
    let out = g.run(&[Value::F32(test)]).unwrap().pop().unwrap();
    let Value::Quantized(q) = out else {
        panic!(
            "{label}: quantized output expected, got {}",
            out.kind_name()
        );
    };
    let q = q.to_row_major().unwrap();
    assert_eq!(
        q.shape(),
        &want.shape("out_shape")[..],
        "{label}: output shape"
    );
    let (out_scale, out_zp) = (q.q_scale().unwrap(), q.q_zero_point().unwrap());
    let want_ints: Vec<i32> = want.u8s("out_int").iter().map(|&v| i32::from(v)).collect();
    let got = q.int_values();
    if exact {
        assert_eq!(
            (out_scale.to_bits(), out_zp),
            (want.f64("out_scale").to_bits(), want.i64("out_zp")),
            "{label}: output qparams"
        );
        let diff = got.iter().zip(&want_ints).filter(|(a, b)| a != b).count();
        assert_eq!(
            diff,
            0,
            "{label}: {diff} of {} output ints differ",
            got.len()
        );
    } else {
        drift.scale_rel = drift.scale_rel.max(rel(out_scale, want.f64("out_scale")));
        drift.zp = drift.zp.max((out_zp - want.i64("out_zp")).abs());
        drift.out_len = got.len();
        for (a, b) in got.iter().zip(&want_ints) {
            if a != b {
                drift.out_diff_count += 1;
                drift.out_diff_max = drift.out_diff_max.max((a - b).abs());
            }
        }
    }
    drift
}

/// Splits a flat buffer into tensors of `shape[1..]` (`shape[0]` of them).
fn split(values: &[f32], shape: &[usize]) -> Vec<Tensor<f32>> {
    let per = shape[1..].iter().product::<usize>();
    assert_eq!(values.len(), per * shape[0]);
    values
        .chunks(per)
        .map(|v| Tensor::new(&shape[1..], v.to_vec()).unwrap())
        .collect()
}

#[test]
fn float_models_load_torch_weights() {
    for model in MODELS {
        let all = cases(model);
        let data = case(&all, "data");
        let mut g = torch_float_graph(model);
        let test = Tensor::new(&data.shape("test_shape"), data.f32s("test").to_vec()).unwrap();
        let y = run_f32(&mut g, &test);
        assert_eq!(y.shape(), &data.shape("float_shape")[..]);
        for (i, (a, b)) in y.data().iter().zip(data.f32s("float_out")).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 + 1e-4 * b.abs(),
                "{}: float output [{i}] {a} vs torch {b}",
                model.stem()
            );
        }
    }
}

#[test]
fn lenet5_fbgemm_default_qconfig_equals_torch() {
    check_flow(Model::LeNet5, "fbgemm", Calibration::TorchActivations);
}

#[test]
fn lenet5_minmax_qconfig_equals_torch() {
    check_flow(Model::LeNet5, "minmax", Calibration::TorchActivations);
}

#[test]
fn resnet_block_fbgemm_default_qconfig_equals_torch() {
    check_flow(Model::ResNetBlock, "fbgemm", Calibration::TorchActivations);
}

#[test]
fn resnet_block_minmax_qconfig_equals_torch() {
    check_flow(Model::ResNetBlock, "minmax", Calibration::TorchActivations);
}

#[test]
fn mobilenet_block_fbgemm_default_qconfig_equals_torch() {
    check_flow(
        Model::MobileNetBlock,
        "fbgemm",
        Calibration::TorchActivations,
    );
}

#[test]
fn mobilenet_block_minmax_qconfig_equals_torch() {
    check_flow(
        Model::MobileNetBlock,
        "minmax",
        Calibration::TorchActivations,
    );
}

#[test]
fn lenet5_moving_average_observers_equal_torch() {
    check_flow(Model::LeNet5, "movavg", Calibration::TorchActivations);
}

#[test]
fn resnet_block_moving_average_observers_equal_torch() {
    check_flow(Model::ResNetBlock, "movavg", Calibration::TorchActivations);
}

#[test]
fn weight_range_neg_127_to_127_equals_torch() {
    check_flow(Model::LeNet5, "clamp127", Calibration::TorchActivations);
}

#[test]
fn narrow_weight_observer_clamps_weights_as_torch() {
    let all = cases(Model::LeNet5);
    // The golden is only a clamping test if PyTorch's clamp changed some weights.
    assert!(case(&all, "clamp7bit").i64("clamped") > 0);
    check_flow(Model::LeNet5, "clamp7bit", Calibration::TorchActivations);
}

#[test]
fn observing_fused_outputs_once_gives_torchs_qparams() {
    for model in MODELS {
        for qname in ["fbgemm", "minmax"] {
            check_flow(model, qname, Calibration::TorchActivationsOnce);
        }
    }
}

/// The flow as a user runs it, calibrating through the float graph. qnn's float convolutions
/// and GEMMs sum in another order than PyTorch's (oneDNN / MKL), so activations differ in the
/// last bits and so do the observed ranges and scales; on these models the quantized outputs
/// still come out identical. Bounds: ranges and scales within 1e-6 relative (a few f32 ulps),
/// zero points within 1, output ints within 1 on at most 1% of the values.
#[test]
fn end_to_end_calibration_stays_within_bounds() {
    for (model, qname) in [
        (Model::LeNet5, "fbgemm"),
        (Model::LeNet5, "minmax"),
        (Model::LeNet5, "movavg"),
        (Model::ResNetBlock, "fbgemm"),
        (Model::ResNetBlock, "minmax"),
        (Model::ResNetBlock, "movavg"),
        (Model::MobileNetBlock, "fbgemm"),
        (Model::MobileNetBlock, "minmax"),
    ] {
        {
            let d = check_flow(model, qname, Calibration::Graph);
            let label = format!("{}/{qname}: {d:?}", model.stem());
            assert!(d.range_rel <= 1e-6 && d.scale_rel <= 1e-6, "{label}");
            assert!(d.zp <= 1, "{label}");
            assert!(
                d.out_diff_max <= 1 && d.out_diff_count * 100 <= d.out_len,
                "{label}"
            );
        }
    }
}
