//! `qstack quantize`: build an int8 model from saved fp32 weights, save it and print its test
//! accuracy.

use std::path::PathBuf;

use crate::cli::QuantizeArgs;
use crate::data::SplitKind;
use crate::error::Result;
use crate::evaluate::accuracy;
use crate::model::{FloatModel, load_weights};
use crate::quantize::{QuantInputs, build};

/// Checks the arguments and inputs, then runs the chosen flow and saves its model.
pub fn run(a: &QuantizeArgs, quiet: bool) -> Result<()> {
    let output = a.output.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "qstack-out/{}-{}.safetensors",
            a.model.name(),
            a.mode.file_stem()
        ))
    });
    let module = load_weights(a.model, &a.weights)?;
    let (train, norm) = super::load(&a.data, SplitKind::Train)?;
    let float = FloatModel::fp32(module, a.model);
    let inputs = QuantInputs::for_saved_weights(&train, &norm, a.calib_size, a.backend, quiet)?;
    let mut model = build(a.mode, &float, &inputs)?;
    let bytes = model.save(&output)?;
    println!("saved {} ({bytes} bytes)", output.display());
    let (test, test_norm) = super::load(&a.data, SplitKind::Test)?;
    let acc = accuracy(model.as_mut(), &test, &test_norm, quiet)?;
    println!(
        "{} {} ({}): test accuracy {:.2} % ({} images)",
        a.model.name(),
        model.label(),
        a.backend.name(),
        100.0 * acc,
        test.len()
    );
    Ok(())
}
