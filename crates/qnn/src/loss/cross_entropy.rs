//! `nn.CrossEntropyLoss(reduction='mean')` on `[N, C]` logits and class-index targets.

use qtensor::Tensor;

use crate::error::{QnnError, Result};

/// Mean over the batch of `-log softmax(logits)[target]`; [`CrossEntropyLoss::backward`] gives
/// `(softmax(logits) - onehot(target)) / N`.
#[derive(Clone, Debug, Default)]
pub struct CrossEntropyLoss {
    saved: Option<(Tensor<f32>, Vec<usize>)>,
}

impl CrossEntropyLoss {
    /// A new loss.
    pub fn new() -> Self {
        Self::default()
    }

    /// The mean loss of `logits` `[N, C]` against `targets` (`N` class indices in `[0, C)`).
    pub fn forward(&mut self, logits: &Tensor<f32>, targets: &[usize]) -> Result<f32> {
        let &[n, c] = logits.shape() else {
            return Err(QnnError::WrongRank {
                module: "CrossEntropyLoss",
                expected: "2-d (N, C) logits",
                got: logits.shape().to_vec(),
            });
        };
        if targets.len() != n {
            return Err(QnnError::ShapeMismatch {
                what: "CrossEntropyLoss targets vs logits batch".into(),
                expected: vec![n],
                got: vec![targets.len()],
            });
        }
        if let Some((index, &target)) = targets.iter().enumerate().find(|&(_, &t)| t >= c) {
            return Err(QnnError::TargetOutOfRange {
                index,
                target,
                num_classes: c,
            });
        }
        let logits = logits.to_row_major()?;
        let mut probs = vec![0.0f32; n * c];
        let mut total = 0.0f64;
        for ((row, prow), &t) in logits
            .data()
            .chunks_exact(c.max(1))
            .zip(probs.chunks_exact_mut(c.max(1)))
            .zip(targets)
        {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
            let lse = max + sum.ln();
            total += (lse - row[t]) as f64;
            for (p, &v) in prow.iter_mut().zip(row) {
                *p = (v - max).exp() / sum;
            }
        }
        self.saved = Some((Tensor::new(&[n, c], probs)?, targets.to_vec()));
        Ok(if n == 0 {
            f32::NAN
        } else {
            (total / n as f64) as f32
        })
    }

    /// Gradient of the last forward's mean loss with respect to the logits.
    pub fn backward(&self) -> Result<Tensor<f32>> {
        let (probs, targets) = self.saved.as_ref().ok_or(QnnError::BackwardBeforeForward {
            module: "CrossEntropyLoss",
        })?;
        let (n, c) = (probs.shape()[0], probs.shape()[1]);
        let mut g = probs.clone();
        let inv_n = 1.0 / n.max(1) as f32;
        for (row, &t) in g.data_mut().chunks_exact_mut(c.max(1)).zip(targets) {
            row[t] -= 1.0;
            for v in row.iter_mut() {
                *v *= inv_n;
            }
        }
        Ok(g)
    }
}
