//! `torch.optim.Adam` and `torch.optim.AdamW` (decoupled weight decay).

use std::collections::HashMap;

use super::Optimizer;
use crate::error::{QnnError, Result};
use crate::module::Module;

/// Hyper-parameters of [`Adam`]; [`AdamConfig::adam`] and [`AdamConfig::adamw`] give PyTorch's
/// defaults for `Adam` and `AdamW`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate (default 1e-3).
    pub lr: f32,
    /// Decay rates of the first and second moments (default (0.9, 0.999)).
    pub betas: (f32, f32),
    /// Added to the denominator (default 1e-8).
    pub eps: f32,
    /// Weight decay (Adam default 0, AdamW default 1e-2).
    pub weight_decay: f32,
    /// AMSGrad variant (default false).
    pub amsgrad: bool,
    /// `true` for AdamW: `p *= 1 - lr * weight_decay` instead of adding `weight_decay * p` to the gradient.
    pub decoupled_weight_decay: bool,
}

impl AdamConfig {
    /// `torch.optim.Adam(lr=lr)` defaults.
    pub fn adam(lr: f32) -> Self {
        Self {
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            decoupled_weight_decay: false,
        }
    }

    /// `torch.optim.AdamW(lr=lr)` defaults (weight decay 1e-2, decoupled).
    pub fn adamw(lr: f32) -> Self {
        Self {
            weight_decay: 1e-2,
            decoupled_weight_decay: true,
            ..Self::adam(lr)
        }
    }
}

#[derive(Clone, Debug)]
struct State {
    step: u64,
    exp_avg: Vec<f32>,
    exp_avg_sq: Vec<f32>,
    max_exp_avg_sq: Vec<f32>,
}

/// Adam / AdamW, per parameter at step `t`:
/// `m = lerp(m, g, 1 - b1)`, `v = b2 v + (1 - b2) g²`,
/// `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)` (with `max(v)` for AMSGrad).
#[derive(Clone, Debug)]
pub struct Adam {
    cfg: AdamConfig,
    state: HashMap<String, State>,
}

impl Adam {
    /// A new optimizer; rejects negative or out-of-range hyper-parameters.
    pub fn new(cfg: AdamConfig) -> Result<Self> {
        let (b1, b2) = cfg.betas;
        if cfg.lr.is_nan()
            || cfg.lr < 0.0
            || cfg.eps.is_nan()
            || cfg.eps < 0.0
            || cfg.weight_decay.is_nan()
            || cfg.weight_decay < 0.0
            || !(0.0..1.0).contains(&b1)
            || !(0.0..1.0).contains(&b2)
        {
            return Err(QnnError::InvalidConfig {
                module: "Adam",
                reason: format!(
                    "lr {}, eps {}, weight_decay {} must be >= 0 and betas ({b1}, {b2}) in [0, 1)",
                    cfg.lr, cfg.eps, cfg.weight_decay
                ),
            });
        }
        Ok(Self {
            cfg,
            state: HashMap::new(),
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamConfig {
        &self.cfg
    }
}

/// `torch.lerp` for one element (the two-sided form that is exact at both ends).
fn lerp(start: f32, end: f32, w: f32) -> f32 {
    if w.abs() < 0.5 {
        start + w * (end - start)
    } else {
        end - (end - start) * (1.0 - w)
    }
}

impl Optimizer for Adam {
    fn step(&mut self, model: &mut dyn Module) -> Result<()> {
        let c = self.cfg;
        let (b1, b2) = c.betas;
        let states = &mut self.state;
        model.visit_params_mut(&mut |name, p| {
            let n = p.value.numel();
            let st = match states.get_mut(name) {
                Some(s) if s.exp_avg.len() == n => s,
                _ => states
                    .entry(name.to_string())
                    .insert_entry(State {
                        step: 0,
                        exp_avg: vec![0.0; n],
                        exp_avg_sq: vec![0.0; n],
                        max_exp_avg_sq: vec![0.0; n],
                    })
                    .into_mut(),
            };
            st.step += 1;
            let t = st.step as f64;
            let bc1 = 1.0 - (b1 as f64).powf(t);
            let bc2_sqrt = (1.0 - (b2 as f64).powf(t)).sqrt() as f32;
            let step_size = (c.lr as f64 / bc1) as f32;
            let (value, grad) = (p.value.data_mut(), p.grad.data());
            for i in 0..n {
                let mut g = grad[i];
                if c.weight_decay != 0.0 {
                    if c.decoupled_weight_decay {
                        value[i] *= 1.0 - c.lr * c.weight_decay;
                    } else {
                        g += c.weight_decay * value[i];
                    }
                }
                st.exp_avg[i] = lerp(st.exp_avg[i], g, 1.0 - b1);
                st.exp_avg_sq[i] = st.exp_avg_sq[i] * b2 + (1.0 - b2) * g * g;
                let v = if c.amsgrad {
                    st.max_exp_avg_sq[i] = st.max_exp_avg_sq[i].max(st.exp_avg_sq[i]);
                    st.max_exp_avg_sq[i]
                } else {
                    st.exp_avg_sq[i]
                };
                let denom = v.sqrt() / bc2_sqrt + c.eps;
                value[i] += -step_size * (st.exp_avg[i] / denom);
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
