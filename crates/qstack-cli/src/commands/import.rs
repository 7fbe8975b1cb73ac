//! `qstack import`: a PyTorch safetensors state dict into a qstack model.

use crate::cli::ImportArgs;
use crate::data::SplitKind;
use crate::error::Result;
use crate::evaluate::accuracy;
use crate::model::{FloatModel, Model, load_weights};

/// Loads `--input` strictly into the architecture (every key, every shape, no extras), runs
/// one forward pass as a check, optionally evaluates, and saves to `--output`.
pub fn run(a: &ImportArgs, quiet: bool) -> Result<()> {
    let module = load_weights(a.model, &a.input)?;
    let params = module.num_parameters();
    let mut model = FloatModel::fp32(module, a.model);
    let mut shape = vec![1];
    shape.extend(a.model.input_layout().sample_shape());
    model.predict(&qtensor::Tensor::zeros(&shape))?;
    println!(
        "{}: a valid {} state dict ({params} parameters)",
        a.input.display(),
        a.model.name()
    );
    if a.eval {
        let (test, norm) = super::load(&a.data, SplitKind::Test)?;
        let acc = accuracy(&mut model, &test, &norm, quiet)?;
        println!("test accuracy {:.2} % ({} images)", 100.0 * acc, test.len());
    }
    if let Some(out) = &a.output {
        let bytes = model.save(out)?;
        println!("saved {} ({bytes} bytes)", out.display());
    }
    Ok(())
}
