//! `qstack inspect`: the numeric suite, per layer. Builds the int8 model of `--mode` from the
//! fp32 weights (calibrating on the training images), runs it and the float model (fused like
//! the int8 flow fuses it, so node names match) on the first test images, and prints each
//! node's output SQNR, largest absolute error, and weight SQNR for the quantized layers.

use crate::cli::InspectArgs;
use crate::data::{SplitKind, make_batch};
use crate::error::Result;
use crate::layer_sqnr::{compare_layers, layer_table};
use crate::model::{FloatModel, load_weights};
use crate::quantize::{QuantInputs, float_reference, quantized_module};

/// Test images the comparison runs on.
const INSPECT_IMAGES: usize = 64;

/// Checks the inputs, builds the int8 model and prints the per-layer table.
pub fn run(a: &InspectArgs, quiet: bool) -> Result<()> {
    let module = load_weights(a.model, &a.weights)?;
    let (train, norm) = super::load(&a.data, SplitKind::Train)?;
    let inputs = QuantInputs::for_saved_weights(&train, &norm, a.calib_size, a.backend, quiet)?;
    let (test, _) = super::load(&a.data, SplitKind::Test)?;
    let float = FloatModel::fp32(module, a.model);
    let mut reference = float_reference(a.mode, &float)?;
    let mut quantized = quantized_module(a.mode, &float, &inputs)?;
    let n = INSPECT_IMAGES.min(test.len());
    let idx: Vec<usize> = (0..n).collect();
    let (x, _) = make_batch(&test, &idx, a.model.input_layout(), &norm);
    let rows = compare_layers(reference.as_mut(), quantized.as_mut(), &x)?;
    println!(
        "{} {} ({}) against fp32, {n} test images:",
        a.model.name(),
        a.mode.label(),
        a.backend.name()
    );
    print!("{}", layer_table(&rows));
    Ok(())
}
