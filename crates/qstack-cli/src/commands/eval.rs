//! `qstack eval`: test accuracy of saved weights.

use crate::cli::EvalArgs;
use crate::data::SplitKind;
use crate::error::Result;
use crate::evaluate::accuracy;
use crate::model::{FloatModel, Model, load_weights};

/// Loads the weights (strictly), optionally halves them, and prints the test accuracy.
pub fn run(a: &EvalArgs, quiet: bool) -> Result<()> {
    let module = load_weights(a.model, &a.weights)?;
    let (test, norm) = super::load(&a.data, SplitKind::Test)?;
    let mut model = FloatModel::fp32(module, a.model);
    if a.half {
        model = model.into_fp16()?;
    }
    let acc = accuracy(&mut model, &test, &norm, quiet)?;
    println!(
        "{} {}: test accuracy {:.2} % ({} images)",
        a.model.name(),
        model.label(),
        100.0 * acc,
        test.len()
    );
    Ok(())
}
