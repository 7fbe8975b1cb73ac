//! `torch.optim.SGD`.

use std::collections::HashMap;

use super::Optimizer;
use crate::error::{QnnError, Result};
use crate::module::Module;

/// Hyper-parameters of [`Sgd`] (PyTorch's names and defaults, with `lr` required).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f32,
    /// Momentum factor (default 0).
    pub momentum: f32,
    /// Dampening of the momentum (default 0).
    pub dampening: f32,
    /// L2 penalty added to the gradient (default 0).
    pub weight_decay: f32,
    /// Nesterov momentum (default false; needs momentum > 0 and dampening 0).
    pub nesterov: bool,
}

impl SgdConfig {
    /// Plain SGD with learning rate `lr`.
    pub fn new(lr: f32) -> Self {
        Self {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}

/// Stochastic gradient descent, per parameter:
/// `g = grad + weight_decay * p`; with momentum, `buf = g` on the first step, else
/// `buf = momentum * buf + (1 - dampening) * g`, and `g = g + momentum * buf` (Nesterov) or
/// `g = buf`; then `p -= lr * g`.
#[derive(Clone, Debug)]
pub struct Sgd {
    cfg: SgdConfig,
    momentum_buffers: HashMap<String, Vec<f32>>,
}

impl Sgd {
    /// A new optimizer; rejects negative hyper-parameters and Nesterov without momentum.
    pub fn new(cfg: SgdConfig) -> Result<Self> {
        let bad = |reason: String| {
            Err(QnnError::InvalidConfig {
                module: "SGD",
                reason,
            })
        };
        if cfg.lr.is_nan()
            || cfg.lr < 0.0
            || cfg.momentum.is_nan()
            || cfg.momentum < 0.0
            || cfg.weight_decay.is_nan()
            || cfg.weight_decay < 0.0
        {
            return bad(format!(
                "lr {}, momentum {} and weight_decay {} must be >= 0",
                cfg.lr, cfg.momentum, cfg.weight_decay
            ));
        }
        if cfg.nesterov && (cfg.momentum <= 0.0 || cfg.dampening != 0.0) {
            return bad(format!(
                "nesterov needs momentum > 0 and dampening 0, got momentum {} and dampening {}",
                cfg.momentum, cfg.dampening
            ));
        }
        Ok(Self {
            cfg,
            momentum_buffers: HashMap::new(),
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &SgdConfig {
        &self.cfg
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, model: &mut dyn Module) -> Result<()> {
        let c = self.cfg;
        let buffers = &mut self.momentum_buffers;
        model.visit_params_mut(&mut |name, p| {
            let mut g: Vec<f32> = p.grad.data().to_vec();
            if c.weight_decay != 0.0 {
                for (gv, &pv) in g.iter_mut().zip(p.value.data()) {
                    *gv += c.weight_decay * pv;
                }
            }
            if c.momentum != 0.0 {
                let buf = match buffers.get_mut(name) {
                    Some(buf) if buf.len() == g.len() => {
                        for (b, &gv) in buf.iter_mut().zip(&g) {
                            *b = *b * c.momentum + (1.0 - c.dampening) * gv;
                        }
                        buf
                    }
                    _ => buffers
                        .entry(name.to_string())
                        .insert_entry(g.clone())
                        .into_mut(),
                };
                if c.nesterov {
                    for (gv, &b) in g.iter_mut().zip(buf.iter()) {
                        *gv += c.momentum * b;
                    }
                } else {
                    g.copy_from_slice(buf);
                }
            }
            for (pv, &gv) in p.value.data_mut().iter_mut().zip(&g) {
                *pv += -c.lr * gv;
            }
        });
        Ok(())
    }

    fn lr(&self) -> f32 {
        self.cfg.lr
    }

    fn set_lr(&mut self, lr: f32) {
        self.cfg.lr = lr;
    }
}
