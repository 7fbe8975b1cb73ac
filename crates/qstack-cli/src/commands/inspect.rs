//! `qstack inspect`: the numeric suite, per layer (SQNR of each quantized layer's output
//! against the float layer's). Checks its inputs now; the comparison itself needs the
//! quantized graph.

use crate::cli::InspectArgs;
use crate::error::{CliError, Result};
use crate::model::load_weights;

/// Loads and checks the weights, then reports that the comparison is not available yet.
pub fn run(a: &InspectArgs) -> Result<()> {
    load_weights(a.model, &a.weights)?;
    Err(CliError::NotAvailable {
        what: format!("inspect ({} {})", a.mode.label(), a.backend.name()),
        waiting_for: "qflow's convert pass and numeric suite".into(),
    })
}
