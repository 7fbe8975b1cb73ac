//! The numeric suite: per-node comparison of a float graph and its quantized version (the idea
//! of PyTorch's `torch.ao.ns._numeric_suite.compare_model_outputs`), to find the layer that
//! loses accuracy and decide which nodes to leave in float.
//!
//! Both graphs run on the same input; node outputs are matched by node name (the passes keep
//! the float node names), quantized outputs are dequantized, and each pair is scored with the
//! signal-to-quantization-noise ratio [`sqnr`] (PyTorch's `compute_sqnr`) and the largest
//! absolute difference.
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
use qnn::{QnnError, Value};

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
