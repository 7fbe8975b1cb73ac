//! Observer, fake-quant and batch-norm switches, model-wide or per node (PyTorch's
//! `model.apply(torch.ao.quantization.enable_observer)` and friends, and
//! `torch.ao.nn.intrinsic.qat.freeze_bn_stats` / `update_bn_stats`).
//!
//! Model-wide switches reach every observer node, every activation fake-quant node and the
//! weight fake-quant inside every QAT layer; per-node switches reach what one node holds. Each
//! returns how many observers / fake-quants / batch norms it switched.

use qnn::ModuleKind;

use super::observer_node::ObserverNode;
use super::qat::{as_fake_quant_mut, weight_fake_quant_mut};
use crate::error::{QflowError, Result};
use crate::graph::{Graph, Node};

/// Which switch to flip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Switch {
    Observer(bool),
    FakeQuant(bool),
}

fn apply(node: &mut Node, switch: Switch) -> usize {
    let Some(m) = node.module_mut() else {
        return 0;
    };
    if let Some(obs) = m.downcast_mut::<ObserverNode>() {
        if let Switch::Observer(on) = switch {
            obs.set_enabled(on);
            return 1;
        }
        return 0;
    }
    let fq = match m.kind() {
        ModuleKind::FakeQuantize
        | ModuleKind::FixedQParamsFakeQuantize
        | ModuleKind::FusedMovingAvgObsFakeQuantize => as_fake_quant_mut(m),
        _ => weight_fake_quant_mut(m),
    };
    match (fq, switch) {
        (Some(fq), Switch::Observer(on)) => {
            fq.enable_observer(on);
            1
        }
        (Some(fq), Switch::FakeQuant(on)) => {
            fq.enable_fake_quant(on);
            1
        }
        (None, _) => 0,
    }
}

fn all(graph: &mut Graph, switch: Switch) -> usize {
    graph.nodes_mut().map(|n| apply(n, switch)).sum()
}

fn one(graph: &mut Graph, name: &str, switch: Switch) -> Result<usize> {
    let node = graph
        .node_mut(name)
        .ok_or_else(|| QflowError::UnknownNode { name: name.into() })?;
    Ok(apply(node, switch))
}

/// `model.apply(enable_observer)`: every observer and fake-quant records statistics again.
pub fn enable_observer(graph: &mut Graph) -> usize {
    all(graph, Switch::Observer(true))
}

/// `model.apply(disable_observer)`: observers and fake-quants keep their current qparams.
pub fn disable_observer(graph: &mut Graph) -> usize {
    all(graph, Switch::Observer(false))
}

/// `model.apply(enable_fake_quant)`: every fake-quant quantizes-dequantizes again.
pub fn enable_fake_quant(graph: &mut Graph) -> usize {
    all(graph, Switch::FakeQuant(true))
}

/// `model.apply(disable_fake_quant)`: every fake-quant passes values through unchanged.
pub fn disable_fake_quant(graph: &mut Graph) -> usize {
    all(graph, Switch::FakeQuant(false))
}

/// Turns the observer (or the fake-quant's observer, or a QAT layer's weight fake-quant
/// observer) of node `name` on or off.
pub fn set_node_observer(graph: &mut Graph, name: &str, enabled: bool) -> Result<usize> {
    one(graph, name, Switch::Observer(enabled))
}

/// Turns the fake-quant of node `name` (an activation fake-quant or a QAT layer's weight
/// fake-quant) on or off.
pub fn set_node_fake_quant(graph: &mut Graph, name: &str, enabled: bool) -> Result<usize> {
    one(graph, name, Switch::FakeQuant(enabled))
}

/// Freezes or updates the BN statistics of `m` if it is a `QatBnFolded<L, RELU>`.
fn switch_bn<L: qnn::qat::QatFloatLayer, const RELU: bool>(
    m: &mut dyn qnn::Module,
    freeze: bool,
) -> bool {
    let Some(c) = m.downcast_mut::<qnn::qat::QatBnFolded<L, RELU>>() else {
        return false;
    };
    if freeze {
        c.freeze_bn_stats();
    } else {
        c.update_bn_stats();
    }
    true
}

fn bn_stats(graph: &mut Graph, freeze: bool) -> usize {
    use qnn::float::{Conv1d, Conv2d, Linear};
    let mut n = 0;
    for node in graph.nodes_mut() {
        let Some(m) = node.module_mut() else {
            continue;
        };
        if switch_bn::<Conv2d, false>(m, freeze)
            || switch_bn::<Conv2d, true>(m, freeze)
            || switch_bn::<Conv1d, false>(m, freeze)
            || switch_bn::<Conv1d, true>(m, freeze)
            || switch_bn::<Linear, false>(m, freeze)
        {
            n += 1;
        }
    }
    n
}

/// `model.apply(freeze_bn_stats)`: QAT Conv/Linear+BN layers stop updating their running statistics.
pub fn freeze_bn_stats(graph: &mut Graph) -> usize {
    bn_stats(graph, true)
}

/// `model.apply(update_bn_stats)`: QAT Conv/Linear+BN layers update their running statistics again.
pub fn update_bn_stats(graph: &mut Graph) -> usize {
    bn_stats(graph, false)
}
