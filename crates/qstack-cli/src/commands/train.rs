//! `qstack train`: train a model and save its fp32 weights.

use std::path::PathBuf;

use crate::cli::TrainCmdArgs;
use crate::data::SplitKind;
use crate::error::Result;
use crate::evaluate::accuracy;
use crate::model::{FloatModel, Model};
use crate::training::train;

/// Trains, reports per-epoch loss / accuracy / time and the test accuracy, saves the weights.
pub fn run(a: &TrainCmdArgs, quiet: bool) -> Result<()> {
    let output = a
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("qstack-out/{}.safetensors", a.model.name())));
    let (train_split, norm) = super::load(&a.data, SplitKind::Train)?;
    let (test_split, _) = super::load(&a.data, SplitKind::Test)?;
    let cfg = super::train_config(&a.train);
    let mut module = a.model.build(cfg.seed)?;
    println!(
        "training {} on {} ({} images), {} epochs, batch {}, {:?} lr {}",
        a.model.name(),
        super::dataset_name(a.data.dataset),
        train_split.len(),
        cfg.epochs,
        cfg.batch_size,
        cfg.optimizer,
        cfg.lr
    );
    train(
        module.as_mut(),
        a.model.input_layout(),
        &train_split,
        &norm,
        &cfg,
        quiet,
        &mut |e| {
            println!(
                "epoch {}: loss {:.4}, train accuracy {:.2} %, {:.1} s",
                e.epoch,
                e.loss,
                100.0 * e.train_accuracy,
                e.seconds
            )
        },
    )?;
    let mut model = FloatModel::fp32(module, a.model);
    let acc = accuracy(&mut model, &test_split, &norm, quiet)?;
    println!(
        "test accuracy {:.2} % ({} images)",
        100.0 * acc,
        test_split.len()
    );
    let bytes = model.save(&output)?;
    println!("saved {} ({bytes} bytes)", output.display());
    Ok(())
}
