//! The numeric suite: per-node comparison of a float graph and its quantized version (the idea
//! of PyTorch's `torch.ao.ns._numeric_suite.compare_model_outputs`), to find the layer that
//! loses accuracy and decide which nodes to leave in float.
//!
//! Both graphs run on the same input; node outputs are matched by node name (the passes keep
//! the float node names), quantized outputs are dequantized, and each pair is scored with the
//! signal-to-quantization-noise ratio [`sqnr`] (PyTorch's `compute_sqnr`) and the largest
//! absolute difference ([`compare_model_outputs`]). [`compare_weights`] does the same for each
//! layer's float weight against its dequantized int8 weight.
//!
//! ```
//! use qflow::numeric_suite::sqnr;
//! use qnn::qtensor::Tensor;
//!
//! let x = Tensor::new(&[4], vec![1.0, -2.0, 3.0, 4.0])?;
//! let y = Tensor::new(&[4], vec![1.0, -2.0, 3.0, 4.1])?;
//! let db = sqnr(&x, &y)?;
//! assert!((db - 20.0 * (30.0f64.sqrt() / 0.1).log10()).abs() < 1e-3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;

use qnn::qtensor::{Layout, Tensor};
use qnn::{BufferRef, Module, QnnError, Value};

use crate::error::{QflowError, Result};
use crate::graph::Graph;

/// One matched node: its name, the SQNR of the quantized output against the float output, and
/// the largest absolute difference.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeComparison {
    /// The node name (present in both graphs).
    pub node: String,
    /// `20 log10(‖float‖ / ‖float − quantized‖)` in dB (`+inf` when equal).
    pub sqnr_db: f64,
    /// `max |float − quantized|`.
    pub max_abs_error: f32,
}

/// PyTorch's `compute_sqnr(x, y)`: `20 log10(‖x‖₂ / ‖x − y‖₂)` in dB, `+inf` for identical
/// tensors. Errors on different shapes.
pub fn sqnr(x: &Tensor<f32>, y: &Tensor<f32>) -> Result<f64> {
    if x.shape() != y.shape() {
        return Err(QflowError::Module(QnnError::ShapeMismatch {
            what: "sqnr operands".into(),
            expected: x.shape().to_vec(),
            got: y.shape().to_vec(),
        }));
    }
    let (x, y) = (row_major(x)?, row_major(y)?);
    let (mut signal, mut noise) = (0f64, 0f64);
    for (&a, &b) in x.data().iter().zip(y.data()) {
        signal += f64::from(a) * f64::from(a);
        noise += (f64::from(a) - f64::from(b)).powi(2);
    }
    Ok(20.0 * (signal.sqrt() / noise.sqrt()).log10())
}

fn row_major(t: &Tensor<f32>) -> Result<Tensor<f32>> {
    if t.layout() == Layout::RowMajor {
        Ok(t.clone())
    } else {
        Ok(t.to_row_major().map_err(QnnError::from)?)
    }
}

/// A node output as a row-major f32 tensor (quantized values dequantized), or `None` for
/// tuples and integer values.
fn as_float(v: &Value) -> Result<Option<Tensor<f32>>> {
    Ok(match v {
        Value::F32(t) => Some(row_major(t)?),
        Value::Quantized(q) => Some(row_major(&q.dequantize())?),
        _ => None,
    })
}

fn record(graph: &mut Graph, inputs: &[Value]) -> Result<HashMap<String, Tensor<f32>>> {
    let mut outs = HashMap::new();
    let mut failure = None;
    graph.run_with(inputs, &mut |node, value| match as_float(value) {
        Ok(Some(t)) => {
            outs.insert(node.name().to_string(), t);
        }
        Ok(None) => {}
        Err(e) => failure = Some(e),
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(outs),
    }
}

/// Runs both graphs on `inputs` and compares the outputs of every node name present in both
/// (in the quantized graph's topological order; nodes whose outputs are not tensors or differ
/// in shape are skipped). The float graph is typically the fused float model before `prepare`,
/// the quantized one the result of `convert`.
pub fn compare_model_outputs(
    float: &mut Graph,
    quantized: &mut Graph,
    inputs: &[Value],
) -> Result<Vec<NodeComparison>> {
    let f = record(float, inputs)?;
    let q = record(quantized, inputs)?;
    let mut out = Vec::new();
    for name in quantized.node_names() {
        let (Some(a), Some(b)) = (f.get(&name), q.get(&name)) else {
            continue;
        };
        if a.shape() != b.shape() {
            continue;
        }
        let max_abs_error = a
            .data()
            .iter()
            .zip(b.data())
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        out.push(NodeComparison {
            sqnr_db: sqnr(a, b)?,
            node: name,
            max_abs_error,
        });
    }
    Ok(out)
}

/// The float weight of a layer: its `weight` parameter, or its first child's (`0.weight`) for
/// fused modules.
fn float_weight(m: &dyn Module) -> Option<Tensor<f32>> {
    let mut found = None;
    m.visit_params(&mut |name, p| {
        if found.is_none() && (name == "weight" || name == "0.weight") {
            found = Some(p.value.clone());
        }
    });
    found
}

/// The dequantized weight of a quantized or dynamic layer, from its state-dict buffers
/// (`weight` int8, `weight_scale`, `weight_zero_point`, `weight_axis`: -1 per-tensor, 0
/// per-channel along the first dimension).
fn quantized_weight(m: &dyn Module) -> Option<Tensor<f32>> {
    let mut w: Option<Tensor<i8>> = None;
    let (mut scales, mut zps, mut axis) = (Vec::new(), Vec::new(), -1i64);
    m.visit_buffers(&mut |name, b| match (name, b) {
        ("weight", BufferRef::I8(t)) => w = Some(t.clone()),
        ("weight_scale", BufferRef::F64s(v)) => scales = v.to_vec(),
        ("weight_zero_point", BufferRef::I64s(v)) => zps = v.to_vec(),
        ("weight_axis", BufferRef::I64(a)) => axis = *a,
        _ => {}
    });
    let w = w?;
    if scales.is_empty() || scales.len() != zps.len() {
        return None;
    }
    let channels = scales.len();
    let per = if axis == 0 && channels > 0 && w.numel() % channels == 0 {
        w.numel() / channels
    } else if channels == 1 {
        w.numel()
    } else {
        return None;
    };
    let data = w
        .data()
        .iter()
        .enumerate()
        .map(|(i, &q)| {
            let c = (i / per.max(1)).min(channels - 1);
            ((f64::from(q) - zps[c] as f64) * scales[c]) as f32
        })
        .collect();
    Tensor::new(w.shape(), data).ok()
}

/// PyTorch's `compare_weights` idea: for every node name present in both graphs whose float
/// module has a weight and whose quantized module stores an int8 weight, the SQNR and largest
/// absolute difference of the dequantized weight against the float weight (in the quantized
/// graph's order). Conv+BN nodes compare against the unfolded float weight, as in PyTorch.
pub fn compare_weights(float: &Graph, quantized: &Graph) -> Result<Vec<NodeComparison>> {
    let mut out = Vec::new();
    for qn in quantized.nodes() {
        let (Some(fm), Some(qm)) = (float.node(qn.name()).and_then(|n| n.module()), qn.module())
        else {
            continue;
        };
        let (Some(a), Some(b)) = (float_weight(fm), quantized_weight(qm)) else {
            continue;
        };
        if a.shape() != b.shape() {
            continue;
        }
        let max_abs_error = a
            .data()
            .iter()
            .zip(b.data())
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        out.push(NodeComparison {
            node: qn.name().to_string(),
            sqnr_db: sqnr(&a, &b)?,
            max_abs_error,
        });
    }
    Ok(out)
}
