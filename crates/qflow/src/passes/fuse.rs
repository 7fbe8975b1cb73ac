//! `fuse_modules`: PyTorch's `torch.ao.quantization.fuse_modules` on a graph, by lists of node
//! names, plus an automatic fuser that finds the same patterns itself.
//!
//! Patterns (`fuser_method_mappings.py`): conv-bn, conv-bn-relu, conv-relu (Conv1d/Conv2d),
//! linear-bn, linear-relu, bn-relu (BatchNorm2d). In eval mode conv-bn and linear-bn are folded
//! into one conv / linear with PyTorch's exact formula (conv-bn-relu becomes ConvReLU of the
//! folded conv); in training mode (or with [`fuse_modules_qat`]) they become the QAT-ready
//! [`ConvBn2d`], [`ConvBnReLU2d`], [`LinearBn1d`], … . The first node of a group receives the
//! fused module; the others become [`Identity`] and keep their names (as PyTorch does).
//!
//! Unlike PyTorch's eager mode, the graph knows the dataflow, so a group must be a chain:
//! each node reads only the previous one, which no other node or graph output reads.

use qnn::float::{BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Identity, Linear, ReLU};
use qnn::fused::{
    BNReLU2d, ConvBn1d, ConvBn2d, ConvBnReLU1d, ConvBnReLU2d, ConvReLU1d, ConvReLU2d, LinearBn1d,
    LinearReLU, fuse_conv_bn_eval, fuse_conv1d_bn_eval, fuse_linear_bn_eval,
};
use qnn::{Module, ModuleKind};

use crate::error::{QflowError, Result};
use crate::graph::{Graph, Op};

/// One supported fusion pattern, by the module kinds of its nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pattern {
    Conv1dBn,
    Conv1dBnRelu,
    Conv2dBn,
    Conv2dBnRelu,
    Conv1dRelu,
    Conv2dRelu,
    LinearBn,
    LinearRelu,
    BnRelu,
}

/// The patterns, longest first (the automatic fuser prefers conv-bn-relu over conv-bn).
const PATTERNS: [(Pattern, &[ModuleKind]); 9] = {
    use ModuleKind::*;
    [
        (Pattern::Conv1dBnRelu, &[Conv1d, BatchNorm1d, ReLU]),
        (Pattern::Conv2dBnRelu, &[Conv2d, BatchNorm2d, ReLU]),
        (Pattern::Conv1dBn, &[Conv1d, BatchNorm1d]),
        (Pattern::Conv2dBn, &[Conv2d, BatchNorm2d]),
        (Pattern::Conv1dRelu, &[Conv1d, ReLU]),
        (Pattern::Conv2dRelu, &[Conv2d, ReLU]),
        (Pattern::LinearBn, &[Linear, BatchNorm1d]),
        (Pattern::LinearRelu, &[Linear, ReLU]),
        (Pattern::BnRelu, &[BatchNorm2d, ReLU]),
    ]
};

fn fuse_err(names: &[&str], reason: impl Into<String>) -> QflowError {
    QflowError::Fuse {
        nodes: names.iter().map(|s| s.to_string()).collect(),
        reason: reason.into(),
    }
}

/// Fuses each group of node names (PyTorch's `fuse_modules(model, [["conv1", "bn1", "relu1"],
/// ...])`). Conv-bn and linear-bn fold when the modules are in eval mode and become QAT fused
/// modules when they are training. Groups are applied in order; on error the groups before it
/// stay fused and the failing group is left unchanged.
pub fn fuse_modules(graph: &mut Graph, groups: &[&[&str]]) -> Result<()> {
    for group in groups {
        fuse_group(graph, group, None)?;
    }
    Ok(())
}

/// PyTorch's `fuse_modules_qat`: like [`fuse_modules`], but conv-bn and linear-bn always become
/// the QAT fused modules ([`ConvBn2d`], …), whatever the modules' mode.
pub fn fuse_modules_qat(graph: &mut Graph, groups: &[&[&str]]) -> Result<()> {
    for group in groups {
        fuse_group(graph, group, Some(true))?;
    }
    Ok(())
}

/// The groups the automatic fuser would fuse: every chain matching a pattern (longest first, in
/// topological order, non-overlapping) whose nodes share one train/eval mode, where each link
/// is read only by the next node and is not a graph output.
pub fn find_fusable(graph: &Graph) -> Vec<Vec<String>> {
    let mut used = std::collections::HashSet::new();
    let mut found = Vec::new();
    for start in graph.nodes() {
        if used.contains(start.name()) {
            continue;
        }
        for (_, kinds) in PATTERNS {
            if let Some(chain) = match_chain(graph, start.name(), kinds)
                && chain.iter().all(|n| !used.contains(n))
            {
                used.extend(chain.iter().cloned());
                found.push(chain);
                break;
            }
        }
    }
    found
}

/// Finds ([`find_fusable`]) and fuses ([`fuse_modules`]) every pattern; returns the groups.
pub fn fuse_auto(graph: &mut Graph) -> Result<Vec<Vec<String>>> {
    let groups = find_fusable(graph);
    for g in &groups {
        let names: Vec<&str> = g.iter().map(String::as_str).collect();
        fuse_group(graph, &names, None)?;
    }
    Ok(groups)
}

/// [`fuse_auto`] with [`fuse_modules_qat`]'s semantics.
pub fn fuse_auto_qat(graph: &mut Graph) -> Result<Vec<Vec<String>>> {
    let groups = find_fusable(graph);
    for g in &groups {
        let names: Vec<&str> = g.iter().map(String::as_str).collect();
        fuse_group(graph, &names, Some(true))?;
    }
    Ok(groups)
}

/// The chain starting at `start` matching `kinds`, if the dataflow and modes allow fusing it.
fn match_chain(graph: &Graph, start: &str, kinds: &[ModuleKind]) -> Option<Vec<String>> {
    let mut chain = vec![start.to_string()];
    let first = graph.node(start)?;
    if first.kind() != Some(kinds[0]) {
        return None;
    }
    let mode = first.module()?.is_training();
    for &kind in &kinds[1..] {
        let prev = chain.last()?.as_str();
        let readers = graph.consumers(prev);
        if readers.len() != 1 || graph.is_output(prev) {
            return None;
        }
        let next = graph.node(readers[0])?;
        if next.kind() != Some(kind)
            || next.inputs().len() != 1
            || next.module()?.is_training() != mode
        {
            return None;
        }
        chain.push(next.name().to_string());
    }
    Some(chain)
}

/// Checks the group's dataflow and returns its pattern.
fn check_group(graph: &Graph, names: &[&str]) -> Result<Pattern> {
    if names.len() < 2 {
        return Err(fuse_err(names, "a fusion group needs at least two nodes"));
    }
    let mut kinds = Vec::with_capacity(names.len());
    for n in names {
        let node = graph.try_node(n)?;
        match node.kind() {
            Some(ModuleKind::Custom) | None => {
                return Err(fuse_err(
                    names,
                    format!("`{n}` is a {}, not a fusable layer", node.op().describe()),
                ));
            }
            Some(k) => kinds.push(k),
        }
    }
    let pattern = PATTERNS
        .iter()
        .find(|(_, k)| *k == kinds.as_slice())
        .map(|(p, _)| *p)
        .ok_or_else(|| {
            fuse_err(
                names,
                format!(
                    "no fuser method for {kinds:?} (supported: conv-bn, conv-bn-relu, conv-relu, linear-bn, linear-relu, bn-relu)"
                ),
            )
        })?;
    for pair in names.windows(2) {
        let (prev, next) = (pair[0], pair[1]);
        let next_inputs = graph.try_node(next)?.inputs();
        if next_inputs != [prev] {
            return Err(fuse_err(
                names,
                format!("`{next}` must read exactly `{prev}`, it reads {next_inputs:?}"),
            ));
        }
        if graph.consumers(prev) != [next] || graph.is_output(prev) {
            return Err(fuse_err(
                names,
                format!("`{prev}` is also read outside the group; fusing would change the graph"),
            ));
        }
    }
    let modes: Vec<bool> = names
        .iter()
        .filter_map(|n| graph.node(n)?.module().map(|m| m.is_training()))
        .collect();
    if modes.iter().any(|&m| m != modes[0]) {
        return Err(fuse_err(
            names,
            "the modules must all be in the same mode (train or eval)",
        ));
    }
    Ok(pattern)
}

fn get<T: Module + Clone>(graph: &Graph, name: &str) -> Result<T> {
    graph
        .module_as::<T>(name)
        .cloned()
        .ok_or_else(|| QflowError::UnknownNode { name: name.into() })
}

/// PyTorch's QAT-mode preconditions on the batch norm.
fn qat_bn_ok(names: &[&str], affine: bool, tracking: bool) -> Result<()> {
    if !affine {
        return Err(fuse_err(
            names,
            "only batch norms with affine=True can be fused for QAT",
        ));
    }
    if !tracking {
        return Err(fuse_err(
            names,
            "only batch norms with track_running_stats=True can be fused for QAT",
        ));
    }
    Ok(())
}

fn qnn_err<'a>(names: &'a [&'a str]) -> impl FnOnce(qnn::QnnError) -> QflowError + 'a {
    move |e| fuse_err(names, e.to_string())
}

/// Builds the fused module for a checked group.
fn build(graph: &Graph, names: &[&str], pattern: Pattern, qat: bool) -> Result<Op> {
    let e = qnn_err(names);
    Ok(match pattern {
        Pattern::Conv1dRelu => Op::module(ConvReLU1d::new(
            get(graph, names[0])?,
            get(graph, names[1])?,
        )),
        Pattern::Conv2dRelu => Op::module(ConvReLU2d::new(
            get(graph, names[0])?,
            get(graph, names[1])?,
        )),
        Pattern::LinearRelu => Op::module(LinearReLU::new(
            get(graph, names[0])?,
            get(graph, names[1])?,
        )),
        Pattern::BnRelu => Op::module(BNReLU2d::new(get(graph, names[0])?, get(graph, names[1])?)),
        Pattern::Conv1dBn | Pattern::Conv1dBnRelu => {
            let (conv, bn): (Conv1d, BatchNorm1d) = (get(graph, names[0])?, get(graph, names[1])?);
            let relu: Option<ReLU> = names.get(2).map(|n| get(graph, n)).transpose()?;
            if qat {
                qat_bn_ok(names, bn.config().affine, bn.config().track_running_stats)?;
                match relu {
                    Some(r) => Op::module(ConvBnReLU1d::new(conv, bn, r).map_err(e)?),
                    None => Op::module(ConvBn1d::new(conv, bn).map_err(e)?),
                }
            } else {
                let folded = fuse_conv1d_bn_eval(&conv, &bn).map_err(e)?;
                match relu {
                    Some(r) => Op::module(ConvReLU1d::new(folded, r)),
                    None => Op::module(folded),
                }
            }
        }
        Pattern::Conv2dBn | Pattern::Conv2dBnRelu => {
            let (conv, bn): (Conv2d, BatchNorm2d) = (get(graph, names[0])?, get(graph, names[1])?);
            let relu: Option<ReLU> = names.get(2).map(|n| get(graph, n)).transpose()?;
            if qat {
                qat_bn_ok(names, bn.config().affine, bn.config().track_running_stats)?;
                match relu {
                    Some(r) => Op::module(ConvBnReLU2d::new(conv, bn, r).map_err(e)?),
                    None => Op::module(ConvBn2d::new(conv, bn).map_err(e)?),
                }
            } else {
                let folded = fuse_conv_bn_eval(&conv, &bn).map_err(e)?;
                match relu {
                    Some(r) => Op::module(ConvReLU2d::new(folded, r)),
                    None => Op::module(folded),
                }
            }
        }
        Pattern::LinearBn => {
            let (lin, bn): (Linear, BatchNorm1d) = (get(graph, names[0])?, get(graph, names[1])?);
            if qat {
                qat_bn_ok(names, bn.config().affine, bn.config().track_running_stats)?;
                Op::module(LinearBn1d::new(lin, bn).map_err(e)?)
            } else {
                Op::module(fuse_linear_bn_eval(&lin, &bn).map_err(e)?)
            }
        }
    })
}

/// Fuses one group. `qat`: `None` decides by the modules' mode, `Some(true)` forces QAT form.
fn fuse_group(graph: &mut Graph, names: &[&str], qat: Option<bool>) -> Result<()> {
    let pattern = check_group(graph, names)?;
    let training = graph
        .node(names[0])
        .and_then(|n| n.module())
        .is_some_and(|m| m.is_training());
    let fused = build(graph, names, pattern, qat.unwrap_or(training))?;
    graph.replace_op(names[0], fused)?;
    for n in &names[1..] {
        let mut id = Identity::new();
        id.train(training);
        graph.replace_op(n, Op::module(id))?;
    }
    Ok(())
}
