//! `prepare_qat`: PyTorch's `torch.ao.quantization.prepare_qat` on a [`Graph`], and the QAT
//! side of `convert`.
//!
//! 1. The QConfigs are propagated (QAT QConfigs: fake-quant specs for activation and weight).
//! 2. Module swap (`DEFAULT_QAT_MODULE_MAPPINGS`): `Linear` → [`qat::Linear`], `Conv2d` →
//!    [`qat::Conv2d`], fused `LinearReLU` / `LinearBn1d` / `ConvReLU2d` / `ConvBn1d` /
//!    `ConvBnReLU1d` / `ConvBn2d` / `ConvBnReLU2d` → their QAT versions, each with a weight
//!    fake-quant built from the QConfig's weight spec. (`Conv1d` and the fused `ConvReLU1d` /
//!    `BNReLU2d` stay float, as in PyTorch's mapping.)
//! 3. Fake-quant nodes for the activations, where `prepare` puts observers (and a
//!    `FixedQParamsFakeQuantize` after Sigmoid / Tanh).
//!
//! The graph then trains as usual (forward and backward through the fake-quants).
//! [`super::convert()`] turns every QAT module into its quantized module from `to_float()` plus
//! the weight fake-quant's qparams and the activation fake-quant's qparams.

use qnn::qat::{self, FakeQuant, FakeQuantSpec};
use qnn::qtensor::{QDType, QParams};
use qnn::{Module, ModuleKind, QnnError, fused, quantized};

use super::convert::clamp_weight_to_observer_range;
use super::prepare::{insert_activation_nodes, is_activation_post_process};
use crate::error::{QflowError, Result};
use crate::graph::{Graph, Node, Op};
use crate::passes::propagate_qconfig;
use crate::qconfig::{QConfigMapping, QuantSpec};

fn node_err(node: &str) -> impl FnOnce(QnnError) -> QflowError + '_ {
    move |source| QflowError::Node {
        node: node.to_string(),
        source,
    }
}

/// The fake-quant node for an activation spec.
pub(crate) fn fake_quant_node(node: &str, spec: &FakeQuantSpec) -> Result<Op> {
    let fq: Box<dyn FakeQuant> = spec.build().map_err(node_err(node))?;
    let m: Box<dyn Module> = fq;
    Ok(Op::Module(m))
}

/// The node's module as a fake-quant, if it is one of qnn's three.
pub fn as_fake_quant(m: &dyn Module) -> Option<&dyn FakeQuant> {
    if let Some(f) = m.downcast_ref::<qat::FakeQuantize>() {
        return Some(f);
    }
    if let Some(f) = m.downcast_ref::<qat::FixedQParamsFakeQuantize>() {
        return Some(f);
    }
    m.downcast_ref::<qat::FusedMovingAvgObsFakeQuantize>()
        .map(|f| f as &dyn FakeQuant)
}

/// The node's module as a fake-quant, mutably.
pub fn as_fake_quant_mut(m: &mut dyn Module) -> Option<&mut dyn FakeQuant> {
    match m.kind() {
        ModuleKind::FakeQuantize => m
            .downcast_mut::<qat::FakeQuantize>()
            .map(|f| f as &mut dyn FakeQuant),
        ModuleKind::FixedQParamsFakeQuantize => m
            .downcast_mut::<qat::FixedQParamsFakeQuantize>()
            .map(|f| f as &mut dyn FakeQuant),
        ModuleKind::FusedMovingAvgObsFakeQuantize => m
            .downcast_mut::<qat::FusedMovingAvgObsFakeQuantize>()
            .map(|f| f as &mut dyn FakeQuant),
        _ => None,
    }
}

/// The weight fake-quant of a QAT layer, mutably.
pub fn weight_fake_quant_mut(m: &mut dyn Module) -> Option<&mut dyn FakeQuant> {
    match m.kind() {
        ModuleKind::QatLinear => m
            .downcast_mut::<qat::Linear>()
            .map(|l| l.weight_fake_quant_mut()),
        ModuleKind::QatLinearReLU => m
            .downcast_mut::<qat::LinearReLU>()
            .map(|l| l.weight_fake_quant_mut()),
        ModuleKind::QatConv1d => m
            .downcast_mut::<qat::Conv1d>()
            .map(|l| l.weight_fake_quant_mut()),
        ModuleKind::QatConv2d => m
            .downcast_mut::<qat::Conv2d>()
            .map(|l| l.weight_fake_quant_mut()),
        ModuleKind::QatConvReLU2d => m
            .downcast_mut::<qat::ConvReLU2d>()
            .map(|l| l.weight_fake_quant_mut()),
        ModuleKind::QatConvBn2d => m
            .downcast_mut::<qat::ConvBn2d>()
            .map(|l| l.weight_fake_quant_mut()),
        ModuleKind::QatConvBnReLU2d => m
            .downcast_mut::<qat::ConvBnReLU2d>()
            .map(|l| l.weight_fake_quant_mut()),
        ModuleKind::QatConvBn1d => m
            .downcast_mut::<qat::ConvBn1d>()
            .map(|l| l.weight_fake_quant_mut()),
        ModuleKind::QatConvBnReLU1d => m
            .downcast_mut::<qat::ConvBnReLU1d>()
            .map(|l| l.weight_fake_quant_mut()),
        ModuleKind::QatLinearBn1d => m
            .downcast_mut::<qat::LinearBn1d>()
            .map(|l| l.weight_fake_quant_mut()),
        _ => None,
    }
}

/// The qparams and dtype of a fake-quant node (PyTorch's `calculate_qparams()`).
pub(crate) fn fake_quant_qparams(node: &Node) -> Result<(QParams, Option<QDType>)> {
    let fq = node
        .module()
        .and_then(as_fake_quant)
        .ok_or_else(|| QflowError::WrongModule {
            node: node.name().into(),
            expected: "an observer or fake-quant".into(),
            got: node.op().describe(),
        })?;
    let q = fq.calculate_qparams().map_err(node_err(node.name()))?;
    Ok((q, Some(fq.dtype())))
}

/// The quantized module for a QAT module and its output qparams: `to_float()` (BN folded) and
/// one more weight observation for the weight qparams, as PyTorch's `from_float` on QAT modules.
pub(crate) fn convert_qat_module(node: &Node, scale: f64, zp: i64) -> Result<Op> {
    let name = node.name();
    let e = node_err(name);
    let wrong = || QflowError::WrongModule {
        node: name.into(),
        expected: format!("the QAT layer of kind {:?}", node.kind()),
        got: "another module".into(),
    };
    macro_rules! conv {
        ($qat:ty, $q:ty) => {{
            let mut m = node.module_as::<$qat>().ok_or_else(wrong)?.clone();
            let (mut f, wq) = m.to_float_with_weight_qparams().map_err(node_err(name))?;
            // `_quantize_weight` with the weight fake-quant's observer: clamp to its range.
            if let Some(spec) = node.qconfig().and_then(|q| q.weight.observer()) {
                clamp_weight_to_observer_range(name, spec, &mut f.weight.value, &wq)?;
            }
            <$q>::from_float(&f, &wq, scale, zp).map(Op::module)
        }};
    }
    let op = match node.kind() {
        Some(ModuleKind::QatLinear) => conv!(qat::Linear, quantized::Linear),
        Some(ModuleKind::QatLinearReLU) => conv!(qat::LinearReLU, quantized::LinearReLU),
        Some(ModuleKind::QatConv1d) => conv!(qat::Conv1d, quantized::Conv1d),
        Some(ModuleKind::QatConv2d) => conv!(qat::Conv2d, quantized::Conv2d),
        Some(ModuleKind::QatConvReLU2d) => conv!(qat::ConvReLU2d, quantized::ConvReLU2d),
        Some(ModuleKind::QatConvBn2d) => conv!(qat::ConvBn2d, quantized::Conv2d),
        Some(ModuleKind::QatConvBnReLU2d) => conv!(qat::ConvBnReLU2d, quantized::ConvReLU2d),
        Some(ModuleKind::QatConvBn1d) => conv!(qat::ConvBn1d, quantized::Conv1d),
        Some(ModuleKind::QatConvBnReLU1d) => conv!(qat::ConvBnReLU1d, quantized::ConvReLU1d),
        Some(ModuleKind::QatLinearBn1d) => conv!(qat::LinearBn1d, quantized::Linear),
        _ => return Err(wrong()),
    };
    op.map_err(e)
}

/// The QAT replacement of one node (PyTorch's `DEFAULT_QAT_MODULE_MAPPINGS`), if it has a QAT
/// QConfig and a QAT counterpart.
fn qat_op(node: &Node) -> Result<Option<Op>> {
    let Some(qconfig) = node.qconfig() else {
        return Ok(None);
    };
    let name = node.name();
    let kind = node.kind();
    let swappable = matches!(
        kind,
        Some(
            ModuleKind::Linear
                | ModuleKind::Conv2d
                | ModuleKind::LinearReLU
                | ModuleKind::ConvReLU2d
                | ModuleKind::ConvBn2d
                | ModuleKind::ConvBnReLU2d
                | ModuleKind::ConvBn1d
                | ModuleKind::ConvBnReLU1d
                | ModuleKind::LinearBn1d
        )
    );
    if !swappable {
        return Ok(None);
    }
    let QuantSpec::FakeQuant(w) = &qconfig.weight else {
        return Err(QflowError::Unsupported {
            node: name.into(),
            reason: "prepare_qat needs a QAT QConfig (a fake-quant weight spec)".into(),
        });
    };
    let wrong = || QflowError::WrongModule {
        node: name.into(),
        expected: format!("the float layer of kind {kind:?}"),
        got: "another module".into(),
    };
    let e = node_err(name);
    let op = match kind {
        Some(ModuleKind::Linear) => {
            qat::Linear::from_float(node.module_as::<qnn::float::Linear>().ok_or_else(wrong)?, w)
                .map(Op::module)
        }
        Some(ModuleKind::Conv2d) => {
            qat::Conv2d::from_float(node.module_as::<qnn::float::Conv2d>().ok_or_else(wrong)?, w)
                .map(Op::module)
        }
        Some(ModuleKind::LinearReLU) => {
            qat::LinearReLU::from_fused(node.module_as::<fused::LinearReLU>().ok_or_else(wrong)?, w)
                .map(Op::module)
        }
        Some(ModuleKind::ConvReLU2d) => {
            qat::ConvReLU2d::from_fused(node.module_as::<fused::ConvReLU2d>().ok_or_else(wrong)?, w)
                .map(Op::module)
        }
        Some(ModuleKind::ConvBn2d) => {
            qat::ConvBn2d::from_fused(node.module_as::<fused::ConvBn2d>().ok_or_else(wrong)?, w)
                .map(Op::module)
        }
        Some(ModuleKind::ConvBn1d) => {
            qat::ConvBn1d::from_fused(node.module_as::<fused::ConvBn1d>().ok_or_else(wrong)?, w)
                .map(Op::module)
        }
        Some(ModuleKind::ConvBnReLU1d) => qat::ConvBnReLU1d::from_fused(
            node.module_as::<fused::ConvBnReLU1d>().ok_or_else(wrong)?,
            w,
        )
        .map(Op::module),
        Some(ModuleKind::LinearBn1d) => {
            qat::LinearBn1d::from_fused(node.module_as::<fused::LinearBn1d>().ok_or_else(wrong)?, w)
                .map(Op::module)
        }
        _ => qat::ConvBnReLU2d::from_fused(
            node.module_as::<fused::ConvBnReLU2d>().ok_or_else(wrong)?,
            w,
        )
        .map(Op::module),
    };
    op.map(Some).map_err(e)
}

/// PyTorch's `prepare_qat(model)`: the graph must be in training mode; propagates the QConfigs
/// of `mapping` (QAT QConfigs such as `get_default_qat_qconfig`), swaps in the QAT layers and
/// inserts activation fake-quant nodes. Returns the names of the inserted fake-quant nodes.
///
/// Errors: [`QflowError::Unsupported`] for a graph in eval mode or a node with a QAT
/// counterpart whose QConfig has no fake-quant weight spec; [`QflowError::AlreadyPrepared`].
pub fn prepare_qat(graph: &mut Graph, mapping: &QConfigMapping) -> Result<Vec<String>> {
    propagate_qconfig(graph, mapping);
    prepare_qat_configured(graph)
}

/// [`prepare_qat`] on a graph whose nodes already carry their QConfigs.
pub fn prepare_qat_configured(graph: &mut Graph) -> Result<Vec<String>> {
    if !graph.training() {
        return Err(QflowError::Unsupported {
            node: "<graph>".into(),
            reason: "prepare_qat needs a graph in training mode (call train(true) first)".into(),
        });
    }
    if let Some(n) = graph.nodes().find(|n| is_activation_post_process(n)) {
        return Err(QflowError::AlreadyPrepared {
            node: n.name().into(),
        });
    }
    graph.rewrite_nodes(qat_op)?;
    // The swapped layers start in the graph's mode.
    graph.train(true);
    insert_activation_nodes(graph, true)
}
