//! `convert`: PyTorch's eager `torch.ao.quantization.convert` on a prepared, calibrated
//! [`Graph`]. Afterwards every quantized node reads and writes quint8 values, and float only
//! appears at the boundaries.
//!
//! Per node, in topological order:
//! - an observer on a float value (the graph input, or the output of a node left float)
//!   becomes a [`quantized::Quantize`] node (`quant` for a single-input graph's input,
//!   `<value>.quant` otherwise) with the observer's qparams;
//! - a quantizable node and its output observer become the quantized module, built with
//!   `from_float(float, weight qparams, output scale, output zero point)`: the weight qparams
//!   come from a fresh observer of the node's QConfig weight spec run once on the weight (as
//!   PyTorch's `from_float` does), the output qparams from the activation observer, which is
//!   removed. Fused Conv+BN / Linear+BN modules have the BN folded first (eval statistics);
//! - ReLU, pooling, Flatten, Dropout, Sigmoid and Tanh reading a quantized value become their
//!   quantized modules (same or fixed qparams); functional `flatten` becomes a quantized
//!   `Flatten` module;
//! - a float node reading quantized values gets a [`quantized::DeQuantize`] node
//!   (`<value>.dequant`) in front; quantized graph outputs get one too (`dequant` for a
//!   single-output graph).
//!
//! The graph is put in eval mode first (converted modules are inference-only).

use std::collections::HashMap;

use qnn::fused::{self, fuse_conv_bn_eval, fuse_conv1d_bn_eval, fuse_linear_bn_eval};
use qnn::qat::FakeQuantSpec;
use qnn::qtensor::observer::ObserverSpec;
use qnn::qtensor::{QDType, QParams, Tensor};
use qnn::{Module, ModuleKind, QnnError, float, quantized};

use super::observer_node::ObserverNode;
use super::prepare::{Role, is_activation_post_process, role, unique_name};
use crate::error::{QflowError, Result};
use crate::graph::{FunctionalOp, Graph, Node, Op};
use crate::qconfig::QuantSpec;

/// PyTorch's weight path in `from_float`: a fresh observer from the QConfig's weight `spec`
/// observes `weight` once and answers its qparams.
pub(crate) fn observe_weight(
    node: &str,
    spec: &ObserverSpec,
    weight: &Tensor<f32>,
) -> Result<QParams> {
    let err = |e: qnn::qtensor::QTensorError| QflowError::Node {
        node: node.into(),
        source: QnnError::Tensor(e),
    };
    let mut obs = spec.build().map_err(err)?;
    obs.observe(weight).map_err(err)?;
    obs.calculate_qparams().map_err(err)
}

/// PyTorch's `_quantize_weight` on a float weight about to be converted: observe it with a
/// fresh observer of `spec` ([`observe_weight`]) and, when the observer's
/// `[quant_min, quant_max]` is narrower than qint8's `[-128, 127]`, clamp the weight as
/// `_clamp_weights` clamps the integers (`_needs_weight_clamping`; e.g. a weight observer over
/// `[-127, 127]` or a 7-bit one). Returns the qparams; `weight` is replaced by its clamped
/// version when clamping applies.
///
/// The integers are clamped through the float weight: each value is clamped to the
/// dequantized bounds `(quant_min - zp) * scale` and `(quant_max - zp) * scale` of its
/// channel. Quantizing is monotone and maps those bounds back to `quant_min` / `quant_max`
/// exactly (`|quant_min - zp| <= 255`, far below the 2^22 where f32 rounding of
/// `k * scale / scale` could move `k`), so the qint8 values equal PyTorch's clamped ones.
pub(crate) fn quantize_weight_qparams(
    node: &str,
    spec: &ObserverSpec,
    weight: &mut Tensor<f32>,
) -> Result<QParams> {
    let qparams = observe_weight(node, spec, weight)?;
    clamp_weight_to_observer_range(node, spec, weight, &qparams)?;
    Ok(qparams)
}

/// `_clamp_weights` alone: clamps `weight` (about to be quantized with `qparams`) to the range
/// of the weight observer `spec` when it is narrower than qint8's (see
/// [`quantize_weight_qparams`]); a no-op otherwise.
pub(crate) fn clamp_weight_to_observer_range(
    node: &str,
    spec: &ObserverSpec,
    weight: &mut Tensor<f32>,
    qparams: &QParams,
) -> Result<()> {
    if let Some((qmin, qmax)) = weight_clamp_range(node, spec)? {
        clamp_weight(weight, qparams, qmin, qmax);
    }
    Ok(())
}

/// The observer's `[quant_min, quant_max]` when it is narrower than qint8's, else `None`.
fn weight_clamp_range(node: &str, spec: &ObserverSpec) -> Result<Option<(i64, i64)>> {
    let Some(config) = spec.config() else {
        return Ok(None);
    };
    let custom = config.quant_min.zip(config.quant_max);
    let (qmin, qmax) = qnn::qtensor::calculate_qmin_qmax(config.dtype, config.reduce_range, custom)
        .map_err(|e| QflowError::Node {
            node: node.into(),
            source: QnnError::Tensor(e),
        })?;
    Ok((qmin > -128 || qmax < 127).then_some((qmin, qmax)))
}

/// Clamps each weight to its channel's dequantized `[qmin, qmax]` (channel = first axis).
fn clamp_weight(weight: &mut Tensor<f32>, qparams: &QParams, qmin: i64, qmax: i64) {
    let bounds = |scale: f64, zp: i64| {
        let lo = ((qmin - zp) as f64 * scale) as f32;
        let hi = ((qmax - zp) as f64 * scale) as f32;
        (lo, hi)
    };
    let per_channel: Vec<(f32, f32)> = match qparams {
        QParams::PerTensor { scale, zero_point } => vec![bounds(*scale, *zero_point)],
        QParams::PerChannel {
            scales,
            zero_points,
            ..
        } => scales
            .iter()
            .zip(zero_points)
            .map(|(&s, &z)| bounds(s, z))
            .collect(),
        // Float-qparams weights (embeddings) are not converted here.
        QParams::PerChannelFloat { .. } => return,
    };
    let channels = per_channel.len().max(1);
    let per = weight.numel() / channels;
    for (i, w) in weight.data_mut().iter_mut().enumerate() {
        let (lo, hi) = per_channel[(i / per.max(1)).min(channels - 1)];
        // Comparisons, not `clamp`: a NaN weight stays NaN and quantizes as unclamped.
        if *w < lo {
            *w = lo;
        } else if *w > hi {
            *w = hi;
        }
    }
}

/// The observer spec behind a QConfig weight spec (a fake-quant's observer for QAT qconfigs).
fn weight_observer_spec(node: &Node) -> Result<ObserverSpec> {
    let unsupported = |reason: &str| QflowError::Unsupported {
        node: node.name().into(),
        reason: reason.into(),
    };
    let qconfig = node.qconfig().ok_or_else(|| unsupported("no QConfig"))?;
    match &qconfig.weight {
        QuantSpec::Observer(s) => Ok(s.clone()),
        QuantSpec::FakeQuant(
            FakeQuantSpec::FakeQuantize { observer }
            | FakeQuantSpec::FusedMovingAvgObs { observer },
        ) => Ok(observer.clone()),
        QuantSpec::FakeQuant(FakeQuantSpec::FixedQParams { .. }) => {
            Err(unsupported("a fixed-qparams weight spec"))
        }
    }
}

/// Per-tensor output qparams `(scale, zero_point, dtype)` of an observer or fake-quant node.
pub(crate) fn activation_qparams(node: &Node) -> Result<(f64, i64, QDType)> {
    let name = node.name();
    let wrap = |source: QnnError| QflowError::Node {
        node: name.into(),
        source,
    };
    let (qparams, dtype) = if let Some(obs) = node.module_as::<ObserverNode>() {
        if obs.observed_batches() == 0 {
            return Err(QflowError::NotCalibrated { node: name.into() });
        }
        (
            obs.calculate_qparams().map_err(wrap)?,
            obs.observer().dtype(),
        )
    } else {
        super::qat::fake_quant_qparams(node)?
    };
    match (qparams, dtype) {
        (QParams::PerTensor { scale, zero_point }, Some(dtype)) => Ok((scale, zero_point, dtype)),
        _ => Err(QflowError::Unsupported {
            node: name.into(),
            reason: "activations need per-tensor qparams of a quantized dtype".into(),
        }),
    }
}

/// Converts a prepared and calibrated graph to its quantized form (see the module docs).
///
/// Errors: [`QflowError::NotPrepared`] for a graph without observers (convert before
/// prepare) or a quantizable node without its output observer; [`QflowError::NotCalibrated`]
/// for an observer that has seen no data; a node error for qparams or weights the quantized
/// modules reject.
pub fn convert(graph: &mut Graph) -> Result<()> {
    if !graph.nodes().any(is_activation_post_process) {
        return Err(QflowError::NotPrepared {
            pass: "convert",
            reason:
                "the graph has no observer or fake-quant nodes (run prepare or prepare_qat first)"
                    .into(),
        });
    }
    graph.eval();
    let mut quantized: HashMap<String, bool> =
        graph.inputs().iter().map(|i| (i.clone(), false)).collect();
    let mut dequants: HashMap<String, String> = HashMap::new();
    let single_input = graph.inputs().len() == 1;
    for name in graph.node_names() {
        let Some(node) = graph.node(&name) else {
            continue;
        };
        let inputs = node.inputs().to_vec();
        let is_q = |q: &HashMap<String, bool>, v: &str| q.get(v).copied().unwrap_or(false);
        if is_activation_post_process(node) {
            // Output observers are consumed with their producer; what is left observes a float
            // value that quantized nodes read: it becomes a Quantize node.
            let v = inputs[0].clone();
            if is_q(&quantized, &v) {
                graph.remove_node(&name)?;
                continue;
            }
            let (scale, zp, dtype) = activation_qparams(node)?;
            let quant = quantized::Quantize::new(scale, zp, dtype).map_err(node_err(&name))?;
            graph.remove_node(&name)?;
            let base = if single_input && graph.inputs().contains(&v) {
                "quant".to_string()
            } else {
                format!("{v}.quant")
            };
            let qname = unique_name(graph, &base);
            graph.insert_after(&v, &qname, Op::module(quant))?;
            quantized.insert(qname, true);
            continue;
        }
        let out_q = match role(node) {
            Role::Observed => {
                if let Some(v) = inputs.iter().find(|v| !is_q(&quantized, v)) {
                    return Err(QflowError::Unsupported {
                        node: name.clone(),
                        reason: format!("reads the float value `{v}`, which has no observer"),
                    });
                }
                let obs = graph
                    .consumers(&name)
                    .into_iter()
                    .find(|c| graph.node(c).is_some_and(is_activation_post_process))
                    .map(str::to_string)
                    .ok_or_else(|| QflowError::NotPrepared {
                        pass: "convert",
                        reason: format!("node `{name}` has no output observer"),
                    })?;
                let (scale, zp, _) = activation_qparams(graph.try_node(&obs)?)?;
                let op = quantized_op(graph.try_node(&name)?, scale, zp)?;
                graph.replace_op(&name, op)?;
                graph.remove_node(&obs)?;
                true
            }
            Role::KeepsQParams | Role::FixedQParams => {
                let q = inputs.first().is_some_and(|v| is_q(&quantized, v));
                if q && let Some(op) = same_qparams_op(node)? {
                    graph.replace_op(&name, op)?;
                }
                q
            }
            Role::Float => {
                if inputs.iter().any(|v| is_q(&quantized, v)) {
                    let mut new_inputs = Vec::with_capacity(inputs.len());
                    for v in &inputs {
                        if is_q(&quantized, v) {
                            new_inputs.push(dequant_for(graph, &mut dequants, v, None)?);
                        } else {
                            new_inputs.push(v.clone());
                        }
                    }
                    let refs: Vec<&str> = new_inputs.iter().map(String::as_str).collect();
                    graph.set_node_inputs(&name, &refs)?;
                }
                false
            }
        };
        quantized.insert(name, out_q);
    }
    let outputs = graph.outputs().to_vec();
    if outputs
        .iter()
        .any(|o| quantized.get(o).copied().unwrap_or(false))
    {
        let single = (outputs.len() == 1).then_some("dequant");
        let mut new_outputs = Vec::with_capacity(outputs.len());
        for o in &outputs {
            if quantized.get(o).copied().unwrap_or(false) {
                new_outputs.push(dequant_for(graph, &mut dequants, o, single)?);
            } else {
                new_outputs.push(o.clone());
            }
        }
        graph.set_outputs(new_outputs)?;
    }
    Ok(())
}

/// The DeQuantize node reading `value`, added on first use.
fn dequant_for(
    graph: &mut Graph,
    dequants: &mut HashMap<String, String>,
    value: &str,
    name: Option<&str>,
) -> Result<String> {
    if let Some(d) = dequants.get(value) {
        return Ok(d.clone());
    }
    let base = name.map_or_else(|| format!("{value}.dequant"), str::to_string);
    let dname = unique_name(graph, &base);
    graph.add_node(Node::new(
        dname.clone(),
        Op::module(quantized::DeQuantize::new()),
        &[value],
    ))?;
    dequants.insert(value.to_string(), dname.clone());
    Ok(dname)
}

fn node_err(node: &str) -> impl FnOnce(QnnError) -> QflowError + '_ {
    move |source| QflowError::Node {
        node: node.to_string(),
        source,
    }
}

fn wrong(node: &Node) -> QflowError {
    QflowError::WrongModule {
        node: node.name().into(),
        expected: format!("the float layer of kind {:?}", node.kind()),
        got: "another module".into(),
    }
}

/// The module of a node as `T`, or a typed error.
fn get<T: Module>(node: &Node) -> Result<&T> {
    node.module_as::<T>().ok_or_else(|| wrong(node))
}

/// The static quantized module for a node whose role is `Observed`.
fn quantized_op(node: &Node, scale: f64, zp: i64) -> Result<Op> {
    let name = node.name();
    if let Op::Functional(f) = node.op() {
        return qfunctional(name, f.op(), scale, zp);
    }
    let kind = node.kind().ok_or_else(|| wrong(node))?;
    let wspec = weight_observer_spec(node);
    // A float layer's weight observed (and clamped, `_quantize_weight`) on an owned copy.
    let wq = |w: &mut Tensor<f32>| -> Result<QParams> {
        quantize_weight_qparams(name, wspec.as_ref().map_err(Clone::clone)?, w)
    };
    let e = node_err(name);
    use ModuleKind as K;
    let op = match kind {
        K::Linear => {
            let mut f = get::<float::Linear>(node)?.clone();
            let w = wq(&mut f.weight.value)?;
            quantized::Linear::from_float(&f, &w, scale, zp).map(Op::module)
        }
        K::LinearReLU => {
            let mut f = get::<fused::LinearReLU>(node)?.linear().clone();
            let w = wq(&mut f.weight.value)?;
            quantized::LinearReLU::from_float(&f, &w, scale, zp).map(Op::module)
        }
        K::LinearBn1d => {
            let m = get::<fused::LinearBn1d>(node)?;
            let mut f = fuse_linear_bn_eval(m.linear(), m.bn()).map_err(node_err(name))?;
            let w = wq(&mut f.weight.value)?;
            quantized::Linear::from_float(&f, &w, scale, zp).map(Op::module)
        }
        K::Conv1d => {
            let mut f = get::<float::Conv1d>(node)?.clone();
            let w = wq(&mut f.weight.value)?;
            quantized::Conv1d::from_float(&f, &w, scale, zp).map(Op::module)
        }
        K::ConvReLU1d => {
            let mut f = get::<fused::ConvReLU1d>(node)?.conv().clone();
            let w = wq(&mut f.weight.value)?;
            quantized::ConvReLU1d::from_float(&f, &w, scale, zp).map(Op::module)
        }
        K::ConvBn1d | K::ConvBnReLU1d => {
            let (conv, bn) = if kind == K::ConvBn1d {
                let m = get::<fused::ConvBn1d>(node)?;
                (m.conv(), m.bn())
            } else {
                let m = get::<fused::ConvBnReLU1d>(node)?;
                (m.conv(), m.bn())
            };
            let mut f = fuse_conv1d_bn_eval(conv, bn).map_err(node_err(name))?;
            let w = wq(&mut f.weight.value)?;
            if kind == K::ConvBn1d {
                quantized::Conv1d::from_float(&f, &w, scale, zp).map(Op::module)
            } else {
                quantized::ConvReLU1d::from_float(&f, &w, scale, zp).map(Op::module)
            }
        }
        K::Conv2d => {
            let mut f = get::<float::Conv2d>(node)?.clone();
            let w = wq(&mut f.weight.value)?;
            quantized::Conv2d::from_float(&f, &w, scale, zp).map(Op::module)
        }
        K::ConvReLU2d => {
            let mut f = get::<fused::ConvReLU2d>(node)?.conv().clone();
            let w = wq(&mut f.weight.value)?;
            quantized::ConvReLU2d::from_float(&f, &w, scale, zp).map(Op::module)
        }
        K::ConvBn2d | K::ConvBnReLU2d => {
            let (conv, bn) = if kind == K::ConvBn2d {
                let m = get::<fused::ConvBn2d>(node)?;
                (m.conv(), m.bn())
            } else {
                let m = get::<fused::ConvBnReLU2d>(node)?;
                (m.conv(), m.bn())
            };
            let mut f = fuse_conv_bn_eval(conv, bn).map_err(node_err(name))?;
            let w = wq(&mut f.weight.value)?;
            if kind == K::ConvBn2d {
                quantized::Conv2d::from_float(&f, &w, scale, zp).map(Op::module)
            } else {
                quantized::ConvReLU2d::from_float(&f, &w, scale, zp).map(Op::module)
            }
        }
        K::ConvTranspose2d => {
            let mut f = get::<float::ConvTranspose2d>(node)?.clone();
            let w = wq(&mut f.weight.value)?;
            quantized::ConvTranspose2d::from_float(&f, &w, scale, zp).map(Op::module)
        }
        K::LayerNorm => quantized::LayerNorm::from_float(get::<float::LayerNorm>(node)?, scale, zp)
            .map(Op::module),
        K::GroupNorm => quantized::GroupNorm::from_float(get::<float::GroupNorm>(node)?, scale, zp)
            .map(Op::module),
        K::InstanceNorm2d => {
            quantized::InstanceNorm2d::from_float(get::<float::InstanceNorm2d>(node)?, scale, zp)
                .map(Op::module)
        }
        K::BatchNorm2d => {
            quantized::BatchNorm2d::from_float(get::<float::BatchNorm2d>(node)?, scale, zp)
                .map(Op::module)
        }
        K::BNReLU2d => {
            quantized::BNReLU2d::from_float(get::<fused::BNReLU2d>(node)?.bn(), scale, zp)
                .map(Op::module)
        }
        K::Hardswish => quantized::Hardswish::new(scale, zp).map(Op::module),
        K::LeakyReLU => quantized::LeakyReLU::from_float(get::<float::LeakyReLU>(node)?, scale, zp)
            .map(Op::module),
        K::Elu => quantized::ELU::from_float(get::<float::Elu>(node)?, scale, zp).map(Op::module),
        // nnq.ReLU6 keeps its input's qparams; PyTorch still observes its output.
        K::ReLU6 => Ok(Op::module(quantized::ReLU6::new())),
        K::QatLinear
        | K::QatLinearReLU
        | K::QatConv1d
        | K::QatConv2d
        | K::QatConvReLU2d
        | K::QatConvBn2d
        | K::QatConvBnReLU2d
        | K::QatConvBn1d
        | K::QatConvBnReLU1d
        | K::QatLinearBn1d => return super::qat::convert_qat_module(node, scale, zp),
        _ => {
            return Err(QflowError::Unsupported {
                node: name.into(),
                reason: format!("no quantized counterpart for {kind:?}"),
            });
        }
    };
    op.map_err(e)
}

/// PyTorch's `FloatFunctional` → `QFunctional` with the observed output qparams.
fn qfunctional(name: &str, op: &FunctionalOp, scale: f64, zp: i64) -> Result<Op> {
    use quantized::FunctionalOp as Q;
    let q = match op {
        FunctionalOp::Add => Q::Add,
        FunctionalOp::AddRelu => Q::AddRelu,
        FunctionalOp::Mul => Q::Mul,
        FunctionalOp::Cat { dim } => Q::Cat { dim: *dim },
        FunctionalOp::AddScalar(c) => Q::AddScalar(f64::from(*c)),
        FunctionalOp::MulScalar(c) => Q::MulScalar(f64::from(*c)),
        FunctionalOp::Matmul => Q::Matmul,
        other => {
            return Err(QflowError::Unsupported {
                node: name.into(),
                reason: format!("no quantized counterpart for functional {}", other.name()),
            });
        }
    };
    quantized::QFunctional::new(q, scale, zp)
        .map(Op::module)
        .map_err(node_err(name))
}

/// The quantized module for a node that keeps its input's qparams (or has fixed ones); `None`
/// to keep the op as it is (Identity).
fn same_qparams_op(node: &Node) -> Result<Option<Op>> {
    let e = node_err(node.name());
    use ModuleKind as K;
    let op = match node.op() {
        Op::Functional(f) => match f.op() {
            FunctionalOp::Flatten { start_dim, end_dim } => {
                Op::module(quantized::Flatten::new(*start_dim, *end_dim))
            }
            _ => return Ok(None),
        },
        Op::Module(m) => match m.kind() {
            K::ReLU => Op::module(quantized::ReLU::new()),
            K::MaxPool2d => Op::module(
                quantized::MaxPool2d::from_float(get::<float::MaxPool2d>(node)?).map_err(e)?,
            ),
            K::AvgPool2d => Op::module(
                quantized::AvgPool2d::from_float(get::<float::AvgPool2d>(node)?).map_err(e)?,
            ),
            K::AdaptiveAvgPool2d => Op::module(
                quantized::AdaptiveAvgPool2d::from_float(get::<float::AdaptiveAvgPool2d>(node)?)
                    .map_err(e)?,
            ),
            K::Flatten => {
                let (s, t) = get::<float::Flatten>(node)?.dims();
                Op::module(quantized::Flatten::new(s, t))
            }
            K::Dropout => Op::module(quantized::Dropout::from_float(get::<float::Dropout>(node)?)),
            K::Sigmoid => Op::module(quantized::Sigmoid::new()),
            K::Tanh => Op::module(quantized::Tanh::new()),
            _ => return Ok(None),
        },
    };
    Ok(Some(op))
}

/// PyTorch's `quantize(model, run_fn, run_args)`: eval mode, [`super::prepare()`] with `mapping`,
/// `calibrate(graph)` (run the graph on representative data), [`convert`].
pub fn quantize(
    graph: &mut Graph,
    mapping: &crate::qconfig::QConfigMapping,
    calibrate: impl FnOnce(&mut Graph) -> Result<()>,
) -> Result<()> {
    graph.eval();
    super::prepare(graph, mapping)?;
    calibrate(graph)?;
    convert(graph)
}

/// PyTorch's `quantize_qat(model, run_fn, run_args)`: training mode, [`super::prepare_qat`]
/// with `mapping`, `train(graph)` (the training loop), [`convert`].
pub fn quantize_qat(
    graph: &mut Graph,
    mapping: &crate::qconfig::QConfigMapping,
    train: impl FnOnce(&mut Graph) -> Result<()>,
) -> Result<()> {
    graph.train(true);
    super::prepare_qat(graph, mapping)?;
    train(graph)?;
    convert(graph)
}
