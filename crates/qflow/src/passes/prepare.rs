//! `prepare`: PyTorch's eager `torch.ao.quantization.prepare` on a [`Graph`] — observer nodes
//! ([`ObserverNode`]) after every value that will be quantized, so that running the graph on
//! calibration data records the ranges `convert` needs.
//!
//! Placement, per node in topological order (PyTorch's `_add_observer_` rules):
//! - a node with a quantized counterpart that has its own output qparams (Linear, Conv1d/2d,
//!   the fused modules, Hardswish, LeakyReLU, ELU, ReLU6, …) and a QConfig whose activation is
//!   an observer gets an observer on its output, named `<node>.activation_post_process`;
//! - if such a node reads a value that will not be quantized (a graph input, or the output of a
//!   node left in float), that value gets an observer too. PyTorch needs a `QuantStub` in the
//!   model for this; qstack inserts the input observer automatically, and `convert` turns it
//!   into a `Quantize` node;
//! - ops that keep their input's qparams (ReLU, max/avg pooling, Flatten, Dropout, Identity)
//!   and fixed-qparams activations (Sigmoid, Tanh) get no observer;
//! - a node whose QConfig is `None` gets nothing and stays float; `convert` adds the
//!   DeQuantize/Quantize boundaries around it;
//! - after a fused module (ConvReLU2d, LinearReLU, …) a moving-average or recording observer
//!   observes each value twice, as PyTorch's `nn.Sequential`-based fused modules make it do;
//!   a fake-quant there (QAT) runs twice, the second time on its own output — in `prepare_qat`
//!   only after the fused kinds PyTorch does not swap for QAT modules (ConvReLU1d, BNReLU2d).
//!
//! The node keeps its QConfig, whose weight spec `convert` uses to observe the weight.

use std::collections::HashMap;

use qnn::ModuleKind;
use qnn::qat::FakeQuantSpec;
use qnn::qtensor::QDType;
use qnn::qtensor::observer::ObserverSpec;

use super::observer_node::ObserverNode;
use crate::error::{QflowError, Result};
use crate::graph::{FunctionalOp, Graph, Node, Op};
use crate::passes::propagate_qconfig;
use crate::qconfig::{QConfig, QConfigMapping, QuantSpec};

/// What a node becomes in a statically quantized graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// A quantized counterpart with its own output qparams: its output is observed.
    Observed,
    /// Runs on quantized values keeping the input's qparams (no observer).
    KeepsQParams,
    /// A quantized counterpart with fixed output qparams (no observer).
    FixedQParams,
    /// Stays a float op.
    Float,
}

/// The node kinds whose outputs PyTorch observes (they have an `nnq`/`nniq` counterpart with
/// output qparams).
pub(crate) fn is_observed_kind(kind: ModuleKind) -> bool {
    use ModuleKind as K;
    matches!(
        kind,
        K::Linear
            | K::Conv1d
            | K::Conv2d
            | K::ConvReLU1d
            | K::ConvReLU2d
            | K::ConvBn1d
            | K::ConvBnReLU1d
            | K::ConvBn2d
            | K::ConvBnReLU2d
            | K::LinearReLU
            | K::LinearBn1d
            | K::ConvTranspose2d
            | K::BatchNorm2d
            | K::BNReLU2d
            | K::LayerNorm
            | K::GroupNorm
            | K::InstanceNorm2d
            | K::Hardswish
            | K::LeakyReLU
            | K::Elu
            | K::ReLU6
            | K::QatLinear
            | K::QatLinearReLU
            | K::QatConv1d
            | K::QatConv2d
            | K::QatConvReLU2d
            | K::QatConvBn2d
            | K::QatConvBnReLU2d
            | K::QatConvBn1d
            | K::QatConvBnReLU1d
            | K::QatLinearBn1d
    )
}

/// Kinds that run on quantized values with their input's qparams.
fn keeps_qparams_kind(kind: ModuleKind) -> bool {
    use ModuleKind as K;
    matches!(
        kind,
        K::ReLU
            | K::MaxPool2d
            | K::AvgPool2d
            | K::AdaptiveAvgPool2d
            | K::Flatten
            | K::Dropout
            | K::Identity
    )
}

/// True if the QConfig statically quantizes activations (an observer or a fake-quant, not a
/// dynamic or float placeholder).
pub(crate) fn is_static(qconfig: &QConfig) -> bool {
    match &qconfig.activation {
        QuantSpec::Observer(spec) => !matches!(
            spec,
            ObserverSpec::Placeholder { .. } | ObserverSpec::Noop { .. }
        ),
        QuantSpec::FakeQuant(_) => true,
    }
}

/// The node's role in a statically quantized graph.
pub(crate) fn role(node: &Node) -> Role {
    let configured = node.qconfig().is_some_and(is_static);
    match node.op() {
        Op::Module(m) => {
            let kind = m.kind();
            // Identity and Dropout are transparent whatever their QConfig.
            if matches!(kind, ModuleKind::Identity | ModuleKind::Dropout) {
                return Role::KeepsQParams;
            }
            if !configured {
                return Role::Float;
            }
            if is_observed_kind(kind) {
                Role::Observed
            } else if keeps_qparams_kind(kind) {
                Role::KeepsQParams
            } else if matches!(kind, ModuleKind::Sigmoid | ModuleKind::Tanh) {
                Role::FixedQParams
            } else {
                Role::Float
            }
        }
        Op::Functional(f) => match f.op() {
            _ if !configured => Role::Float,
            FunctionalOp::Flatten { .. } => Role::KeepsQParams,
            // FloatFunctional ops: QFunctional with the observed output qparams.
            FunctionalOp::Add
            | FunctionalOp::AddRelu
            | FunctionalOp::Mul
            | FunctionalOp::AddScalar(_)
            | FunctionalOp::MulScalar(_)
            | FunctionalOp::Matmul => Role::Observed,
            FunctionalOp::Cat { .. } if node.inputs().len() >= 2 => Role::Observed,
            _ => Role::Float,
        },
    }
}

/// The activation spec of a node's QConfig, for a node whose role is `Observed`.
fn activation_spec(node: &Node) -> Result<&QuantSpec> {
    node.qconfig()
        .map(|q| &q.activation)
        .ok_or_else(|| QflowError::Unsupported {
            node: node.name().into(),
            reason: "no QConfig".into(),
        })
}

/// Builds the node that observes an activation with `spec`.
pub(crate) fn activation_node(node: &str, spec: &QuantSpec) -> Result<Op> {
    match spec {
        QuantSpec::Observer(s) => Ok(Op::module(ObserverNode::new(s).map_err(|source| {
            QflowError::Node {
                node: node.into(),
                source,
            }
        })?)),
        QuantSpec::FakeQuant(s) => super::qat::fake_quant_node(node, s),
    }
}

/// PyTorch's `default_fixed_qparams_range_0to1_fake_quant` (Sigmoid) or
/// `..._neg1to1_fake_quant` (Tanh).
fn fixed_qparams_spec(kind: Option<ModuleKind>) -> QuantSpec {
    let (scale, zero_point) = if kind == Some(ModuleKind::Tanh) {
        (2.0 / 256.0, 128)
    } else {
        (1.0 / 256.0, 0)
    };
    QuantSpec::FakeQuant(FakeQuantSpec::FixedQParams {
        scale,
        zero_point,
        dtype: QDType::QUInt8,
        quant_min: 0,
        quant_max: 255,
    })
}

/// True where PyTorch's eager `prepare` observes a node's output twice per forward and that
/// changes the result: PyTorch's fused modules (`torch.ao.nn.intrinsic`) are `nn.Sequential`s,
/// so the `activation_post_process` added to them runs as their last child and again from the
/// forward hook. MinMax, per-channel MinMax and Histogram observers end up with the same
/// qparams either way (the same range; the histogram doubles exactly), so only the observers
/// whose state moves with every call repeat: the moving averages and the recording observer.
fn observed_twice_by_torch(kind: Option<ModuleKind>, spec: &QuantSpec) -> bool {
    use ModuleKind as K;
    let sequential_fused = matches!(
        kind,
        Some(
            K::ConvReLU1d
                | K::ConvReLU2d
                | K::ConvBn1d
                | K::ConvBnReLU1d
                | K::ConvBn2d
                | K::ConvBnReLU2d
                | K::LinearReLU
                | K::LinearBn1d
                | K::BNReLU2d
        )
    );
    sequential_fused
        && matches!(
            spec,
            QuantSpec::Observer(
                ObserverSpec::MovingAverageMinMax { .. }
                    | ObserverSpec::MovingAveragePerChannelMinMax { .. }
                    | ObserverSpec::Recording { .. }
            )
        )
}

/// True where PyTorch runs a fake-quant `activation_post_process` twice per forward: after a
/// float `nn.Sequential`-based fused module (last child, then the forward hook on that
/// output). `prepare_qat` first swaps ConvBn1d/2d, ConvBnReLU1d/2d, ConvReLU2d, LinearReLU and
/// LinearBn1d for QAT modules (plain modules: one call), leaving ConvReLU1d and BNReLU2d.
/// (qstack has no QAT ConvBn1d, ConvBnReLU1d or LinearBn1d: they stay float fused modules, and
/// their fake-quant runs once, as after PyTorch's QAT modules.)
fn fake_quant_twice_by_torch(kind: Option<ModuleKind>, qat: bool) -> bool {
    use ModuleKind as K;
    match kind {
        Some(K::ConvReLU1d | K::BNReLU2d) => true,
        Some(
            K::ConvReLU2d
            | K::ConvBn1d
            | K::ConvBnReLU1d
            | K::ConvBn2d
            | K::ConvBnReLU2d
            | K::LinearReLU
            | K::LinearBn1d,
        ) => !qat,
        _ => false,
    }
}

/// The name of the observer that `prepare` puts after `value`.
pub fn observer_name(value: &str) -> String {
    format!("{value}.activation_post_process")
}

/// True for observer and fake-quant nodes (what `prepare` / `prepare_qat` insert).
pub(crate) fn is_activation_post_process(node: &Node) -> bool {
    matches!(
        node.kind(),
        Some(
            ModuleKind::ObserverModule
                | ModuleKind::FakeQuantize
                | ModuleKind::FixedQParamsFakeQuantize
                | ModuleKind::FusedMovingAvgObsFakeQuantize
        )
    )
}

/// PyTorch's `prepare(model)`: [`propagate_qconfig`] with `mapping`, then
/// [`prepare_configured`]. Returns the names of the inserted observer nodes.
///
/// Use a post-training QConfig (observers, e.g. `get_default_qconfig`); nodes whose QConfig
/// resolves to `None` stay float.
pub fn prepare(graph: &mut Graph, mapping: &QConfigMapping) -> Result<Vec<String>> {
    if let Some(n) = graph.nodes().find(|n| is_activation_post_process(n)) {
        return Err(QflowError::AlreadyPrepared {
            node: n.name().into(),
        });
    }
    propagate_qconfig(graph, mapping);
    prepare_configured(graph)
}

/// Inserts observers into a graph whose nodes already carry their QConfigs (set with
/// [`Node::set_qconfig`] or by the qconfig propagation), following the placement rules of
/// this module. Returns the names of the inserted observer nodes in the order inserted.
///
/// Errors: [`QflowError::AlreadyPrepared`] if the graph already holds observers or
/// fake-quant nodes; a typed error for observer specs that do not build.
pub fn prepare_configured(graph: &mut Graph) -> Result<Vec<String>> {
    if let Some(n) = graph.nodes().find(|n| is_activation_post_process(n)) {
        return Err(QflowError::AlreadyPrepared {
            node: n.name().into(),
        });
    }
    insert_activation_nodes(graph, false)
}

/// The placement walk shared by `prepare` and `prepare_qat` (`qat`: after the QAT swap): the
/// activation spec of each node's QConfig decides whether an observer or a fake-quant node is
/// inserted.
pub(crate) fn insert_activation_nodes(graph: &mut Graph, qat: bool) -> Result<Vec<String>> {
    // Whether each value (graph input or node) will be quantized after convert.
    let mut quantized: HashMap<String, bool> =
        graph.inputs().iter().map(|i| (i.clone(), false)).collect();
    let mut inserted = Vec::new();
    for name in graph.node_names() {
        let node = graph.try_node(&name)?;
        let r = role(node);
        let inputs = node.inputs().to_vec();
        let kind = node.kind();
        let is_q = |q: &HashMap<String, bool>, v: &str| q.get(v).copied().unwrap_or(false);
        let out_q = match r {
            Role::Observed => {
                let spec = activation_spec(node)?.clone();
                for v in &inputs {
                    if !is_q(&quantized, v) {
                        let obs = unique_name(graph, &observer_name(v));
                        let op = activation_node(&obs, &spec)?;
                        graph.insert_after(v, &obs, op)?;
                        quantized.insert(obs.clone(), true);
                        inserted.push(obs);
                    }
                }
                let obs = unique_name(graph, &observer_name(&name));
                let mut op = activation_node(&obs, &spec)?;
                if observed_twice_by_torch(kind, &spec)
                    && let Some(o) = op
                        .as_module_mut()
                        .and_then(|m| m.downcast_mut::<ObserverNode>())
                {
                    o.set_observations_per_call(2);
                }
                if fake_quant_twice_by_torch(kind, qat)
                    && let Some(f) = op.as_module_mut().and_then(super::qat::as_fake_quant_mut)
                {
                    f.set_applications_per_call(2);
                }
                graph.insert_after(&name, &obs, op)?;
                quantized.insert(obs.clone(), true);
                inserted.push(obs);
                true
            }
            Role::KeepsQParams => inputs.first().is_some_and(|v| is_q(&quantized, v)),
            Role::FixedQParams => {
                let q = inputs.first().is_some_and(|v| is_q(&quantized, v));
                // QAT: PyTorch puts a FixedQParamsFakeQuantize after Sigmoid / Tanh in training.
                let qat = node
                    .qconfig()
                    .is_some_and(|c| matches!(c.activation, QuantSpec::FakeQuant(_)));
                if q && qat && graph.training() {
                    let spec = fixed_qparams_spec(node.kind());
                    let obs = unique_name(graph, &observer_name(&name));
                    let op = activation_node(&obs, &spec)?;
                    graph.insert_after(&name, &obs, op)?;
                    quantized.insert(obs.clone(), true);
                    inserted.push(obs);
                }
                q
            }
            Role::Float => false,
        };
        quantized.insert(name, out_q);
    }
    Ok(inserted)
}

/// `base`, or `base.1`, `base.2`, … if a node or input of that name exists.
pub(crate) fn unique_name(graph: &Graph, base: &str) -> String {
    let taken = |n: &str| graph.node(n).is_some() || graph.inputs().iter().any(|i| i == n);
    if !taken(base) {
        return base.to_string();
    }
    (1..)
        .map(|i| format!("{base}.{i}"))
        .find(|n| !taken(n))
        .unwrap_or_else(|| base.to_string())
}

/// Sets `qconfig` on every node (PyTorch's `model.qconfig = ...` followed by propagation
/// without per-type or per-name entries). Nodes can then be excluded with
/// `graph.node_mut(name).set_qconfig(None)`.
pub fn set_global_qconfig(graph: &mut Graph, qconfig: &QConfig) {
    for n in graph.nodes_mut() {
        n.set_qconfig(Some(qconfig.clone()));
    }
}
