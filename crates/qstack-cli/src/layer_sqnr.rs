//! Per-layer numerics of an int8 model: qflow's numeric suite run on a float graph and its
//! quantized version ([`compare_layers`]), as a text table ([`layer_table`]) for
//! `qstack inspect` and as the bars of the demo's per-layer SQNR chart.

use std::fmt::Write;

use qflow::Graph;
use qflow::numeric_suite::{compare_model_outputs, compare_weights};
use qnn::{Module, Value};
use qtensor::Tensor;

use crate::error::{CliError, Result};

/// The numeric-suite result for one node.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerRow {
    /// Node name (the float module's name, e.g. `conv1`).
    pub node: String,
    /// SQNR of the int8 node output against the float one, in dB.
    pub sqnr_db: f64,
    /// Largest absolute difference of the outputs.
    pub max_abs_error: f32,
    /// SQNR of the dequantized int8 weight against the float weight, for quantized layers.
    pub weight_sqnr_db: Option<f64>,
}

impl LayerRow {
    /// Whether the node is a quantized layer (it stores an int8 weight).
    pub fn is_quantized_layer(&self) -> bool {
        self.weight_sqnr_db.is_some()
    }
}

fn graph_of<'a>(m: &'a mut dyn Module, what: &str) -> Result<&'a mut Graph> {
    m.downcast_mut::<Graph>()
        .ok_or_else(|| CliError::NotAvailable {
            what: format!("the numeric suite for the {what} model"),
            waiting_for: "a qflow graph form of the model".into(),
        })
}

/// Runs the float reference and the quantized module (both qflow graphs) on `input` and
/// returns one row per node present in both, in the quantized graph's order, with the weight
/// SQNR of the layers that store an int8 weight.
pub fn compare_layers(
    float: &mut dyn Module,
    quantized: &mut dyn Module,
    input: &Tensor<f32>,
) -> Result<Vec<LayerRow>> {
    let float = graph_of(float, "float")?;
    let quantized = graph_of(quantized, "int8")?;
    let weights = compare_weights(float, quantized)?;
    let outputs = compare_model_outputs(float, quantized, &[Value::F32(input.clone())])?;
    Ok(outputs
        .into_iter()
        .map(|c| LayerRow {
            weight_sqnr_db: weights.iter().find(|w| w.node == c.node).map(|w| w.sqnr_db),
            node: c.node,
            sqnr_db: c.sqnr_db,
            max_abs_error: c.max_abs_error,
        })
        .collect())
}

/// `31.42`, or `inf` for identical tensors.
fn fmt_db(db: f64) -> String {
    if db.is_infinite() && db > 0.0 {
        "inf".into()
    } else {
        format!("{db:.2}")
    }
}

/// The rows as an aligned text table: node, output SQNR (dB), max abs error, weight SQNR (dB)
/// (`-` when the node has no int8 weight).
pub fn layer_table(rows: &[LayerRow]) -> String {
    let width = rows.iter().map(|r| r.node.len()).max().unwrap_or(0).max(4);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<width$}  {:>12}  {:>13}  {:>15}",
        "node", "SQNR (dB)", "max abs error", "weight SQNR (dB)"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:<width$}  {:>12}  {:>13.6}  {:>15}",
            r.node,
            fmt_db(r.sqnr_db),
            r.max_abs_error,
            r.weight_sqnr_db.map_or_else(|| "-".into(), fmt_db)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_formats_rows_and_missing_weights() {
        let rows = vec![
            LayerRow {
                node: "conv1".into(),
                sqnr_db: 31.416,
                max_abs_error: 0.125,
                weight_sqnr_db: Some(40.0),
            },
            LayerRow {
                node: "flatten".into(),
                sqnr_db: f64::INFINITY,
                max_abs_error: 0.0,
                weight_sqnr_db: None,
            },
        ];
        let t = layer_table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("conv1  ") && lines[1].contains("31.42"));
        assert!(lines[1].contains("0.125000") && lines[1].ends_with("40.00"));
        assert!(lines[2].contains("inf") && lines[2].ends_with('-'));
        assert!(rows[0].is_quantized_layer() && !rows[1].is_quantized_layer());
    }
}
