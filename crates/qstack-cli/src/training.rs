//! The training loop: shuffled mini-batches, cross-entropy, SGD with momentum or Adam, a
//! cosine learning-rate schedule, per-epoch loss / accuracy / time.

use std::time::Instant;

use qnn::init::Rng;
use qnn::loss::CrossEntropyLoss;
use qnn::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use qnn::{Module, Value};

use crate::data::{InputLayout, Normalizer, Split, make_batch};
use crate::error::{CliError, Result};
use crate::evaluate::count_correct;
use crate::progress;

/// Which optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizerKind {
    /// Adam (PyTorch's defaults: betas 0.9/0.999, eps 1e-8).
    Adam,
    /// SGD with momentum.
    Sgd,
}

/// Training hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training split.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f32,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// SGD momentum.
    pub momentum: f32,
    /// Shuffling seed.
    pub seed: u64,
    /// Cosine decay of the learning rate to 0 over all steps (else constant).
    pub cosine: bool,
}

/// What one epoch did.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochStats {
    /// 1-based.
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Training accuracy (on the shuffled mini-batches, in train mode).
    pub train_accuracy: f64,
    /// Wall time of the epoch in seconds.
    pub seconds: f64,
}

fn optimizer(cfg: &TrainConfig) -> Result<Box<dyn Optimizer>> {
    Ok(match cfg.optimizer {
        OptimizerKind::Adam => Box::new(Adam::new(AdamConfig::adam(cfg.lr))?),
        OptimizerKind::Sgd => Box::new(Sgd::new(SgdConfig {
            momentum: cfg.momentum,
            ..SgdConfig::new(cfg.lr)
        })?),
    })
}

/// Fisher–Yates shuffle of `0..n` from `rng`.
pub fn shuffled(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        v.swap(i, rng.below(i + 1));
    }
    v
}

/// Trains `model` on `train`; calls `on_epoch` after every epoch. Returns the epochs' stats.
pub fn train(
    model: &mut dyn Module,
    layout: InputLayout,
    train: &Split,
    norm: &Normalizer,
    cfg: &TrainConfig,
    quiet: bool,
    on_epoch: &mut dyn FnMut(&EpochStats),
) -> Result<Vec<EpochStats>> {
    let mut opt = optimizer(cfg)?;
    let mut loss_fn = CrossEntropyLoss::new();
    let mut rng = Rng::new(cfg.seed ^ 0x5eed_5eed);
    let steps_per_epoch = train.len().div_ceil(cfg.batch_size);
    let total_steps = (steps_per_epoch * cfg.epochs).max(1);
    let mut global_step = 0usize;
    let mut all = Vec::with_capacity(cfg.epochs);
    model.train(true);
    for epoch in 1..=cfg.epochs {
        let t0 = Instant::now();
        let order = shuffled(train.len(), &mut rng);
        let pb = progress::bar(
            steps_per_epoch as u64,
            &format!("epoch {epoch}/{}", cfg.epochs),
            quiet,
        );
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        for (step, idx) in order.chunks(cfg.batch_size).enumerate() {
            if cfg.cosine {
                let progress = global_step as f32 / total_steps as f32;
                opt.set_lr(cfg.lr * 0.5 * (1.0 + (std::f32::consts::PI * progress).cos()));
            }
            let (x, y) = make_batch(train, idx, layout, norm);
            let logits = model.forward(&Value::F32(x))?.into_f32("logits")?;
            let loss = loss_fn.forward(&logits, &y)?;
            if !loss.is_finite() {
                return Err(CliError::Diverged { epoch, step, loss });
            }
            correct += count_correct(logits.data(), &y)?;
            loss_sum += f64::from(loss) * idx.len() as f64;
            model.zero_grad();
            model.backward(&Value::F32(loss_fn.backward()?))?;
            opt.step(model)?;
            global_step += 1;
            pb.inc(1);
            if step % 20 == 0 {
                pb.set_message(format!("loss {loss:.4}"));
            }
        }
        pb.finish_and_clear();
        let stats = EpochStats {
            epoch,
            loss: loss_sum / train.len().max(1) as f64,
            train_accuracy: correct as f64 / train.len().max(1) as f64,
            seconds: t0.elapsed().as_secs_f64(),
        };
        on_epoch(&stats);
        all.push(stats);
    }
    model.eval();
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_a_permutation_and_seeded() {
        let a = shuffled(100, &mut Rng::new(3));
        let mut s = a.clone();
        s.sort_unstable();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
        assert_eq!(a, shuffled(100, &mut Rng::new(3)));
        assert_ne!(a, shuffled(100, &mut Rng::new(4)));
    }
}
