//! Accuracy of a [`Model`] on a split.

use crate::data::{Normalizer, Split, make_batch, sequential_batches};
use crate::error::{CliError, Result};
use crate::model::Model;
use crate::progress;

/// Batch size used for evaluation.
pub const EVAL_BATCH: usize = 256;

/// Fraction of `split` that `model` classifies correctly (arg-max of the logits).
pub fn accuracy(
    model: &mut dyn Model,
    split: &Split,
    norm: &Normalizer,
    quiet: bool,
) -> Result<f64> {
    let layout = model.input_layout();
    let pb = progress::bar(
        split.len() as u64,
        &format!("eval {}", model.label()),
        quiet,
    );
    let mut correct = 0usize;
    for idx in sequential_batches(split.len(), EVAL_BATCH) {
        let (x, y) = make_batch(split, &idx, layout, norm);
        let logits = model.predict(&x)?;
        correct += count_correct(logits.data(), &y)?;
        pb.inc(idx.len() as u64);
    }
    pb.finish_and_clear();
    Ok(correct as f64 / split.len().max(1) as f64)
}

/// Number of rows of `logits` (`[B, C]`, row-major) whose arg-max equals the label.
pub fn count_correct(logits: &[f32], labels: &[usize]) -> Result<usize> {
    if labels.is_empty() || !logits.len().is_multiple_of(labels.len()) {
        return Err(CliError::InvalidArg {
            flag: "model output",
            reason: format!("{} logits for {} labels", logits.len(), labels.len()),
        });
    }
    let classes = logits.len() / labels.len();
    Ok(logits
        .chunks_exact(classes)
        .zip(labels)
        .filter(|(row, label)| argmax(row) == **label)
        .count())
}

/// Index of the largest value (the first on ties; NaN never wins).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] || row[best].is_nan() {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_and_counting() {
        assert_eq!(argmax(&[0.0, 2.0, 2.0, -1.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 1.0]), 1);
        assert_eq!(
            count_correct(&[0.0, 1.0, 1.0, 0.0, 0.5, 0.2], &[1, 1, 0]).unwrap(),
            2
        );
        assert!(count_correct(&[0.0; 5], &[1, 1]).is_err());
    }
}
