//! `nn.BatchNorm1d` / `nn.BatchNorm2d`: batch statistics in training, running statistics in eval.

use qtensor::Tensor;

use super::util::{f32_grad, f32_input, saved, tensor};
use crate::error::{QnnError, Result};
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef, Param};
use crate::value::Value;

/// Hyper-parameters of a batch-norm layer (PyTorch's defaults from [`BatchNormConfig::new`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormConfig {
    /// Number of channels `C`.
    pub num_features: usize,
    /// Added to the variance before the square root (default 1e-5).
    pub eps: f32,
    /// Running-statistics update factor (default `Some(0.1)`); `None` is a cumulative average.
    pub momentum: Option<f32>,
    /// Whether the layer has `weight` and `bias` (default true).
    pub affine: bool,
    /// Whether the layer keeps running statistics (default true).
    pub track_running_stats: bool,
}

impl BatchNormConfig {
    /// PyTorch's defaults: eps 1e-5, momentum 0.1, affine, tracking running statistics.
    pub fn new(num_features: usize) -> Self {
        Self {
            num_features,
            eps: 1e-5,
            momentum: Some(0.1),
            affine: true,
            track_running_stats: true,
        }
    }
}

/// What forward saved for backward.
#[derive(Clone, Debug)]
struct Saved {
    xhat: Tensor<f32>,
    invstd: Vec<f32>,
    batch_stats: bool,
}

/// The shared implementation of both batch-norm layers.
#[derive(Clone, Debug)]
struct Core {
    cfg: BatchNormConfig,
    weight: Option<Param>,
    bias: Option<Param>,
    running_mean: Option<Tensor<f32>>,
    running_var: Option<Tensor<f32>>,
    num_batches_tracked: Option<i64>,
    saved: Option<Saved>,
    training: bool,
}

impl Core {
    fn new(cfg: BatchNormConfig) -> Self {
        let c = cfg.num_features;
        let track = cfg.track_running_stats;
        Self {
            cfg,
            weight: cfg
                .affine
                .then(|| Param::new(Tensor::from_fn(&[c], |_| 1.0))),
            bias: cfg.affine.then(|| Param::new(Tensor::zeros(&[c]))),
            running_mean: track.then(|| Tensor::zeros(&[c])),
            running_var: track.then(|| Tensor::from_fn(&[c], |_| 1.0)),
            num_batches_tracked: track.then_some(0),
            saved: None,
            training: true,
        }
    }

    /// `(n, c, inner)` of the input; `inner` is the number of positions per channel and sample.
    fn dims(
        &self,
        module: &'static str,
        shape: &[usize],
        ranks: &[usize],
        expected: &'static str,
    ) -> Result<(usize, usize, usize)> {
        if !ranks.contains(&shape.len()) {
            return Err(QnnError::WrongRank {
                module,
                expected,
                got: shape.to_vec(),
            });
        }
        let c = shape[1];
        if c != self.cfg.num_features {
            return Err(QnnError::ShapeMismatch {
                what: format!("{module} input channels (dim 1) vs num_features"),
                expected: vec![self.cfg.num_features],
                got: vec![c],
            });
        }
        for (name, p) in [("weight", &self.weight), ("bias", &self.bias)] {
            if let Some(p) = p
                && p.shape() != [c]
            {
                return Err(QnnError::KeyShapeMismatch {
                    key: name.into(),
                    expected: vec![c],
                    got: p.shape().to_vec(),
                });
            }
        }
        Ok((shape[0], c, shape[2..].iter().product()))
    }

    fn forward(
        &mut self,
        module: &'static str,
        x: &Tensor<f32>,
        ranks: &[usize],
        expected: &'static str,
    ) -> Result<Tensor<f32>> {
        let (n, c, inner) = self.dims(module, x.shape(), ranks, expected)?;
        let count = n * inner;
        let xd = x.data();
        let at = |b: usize, ch: usize| (b * c + ch) * inner;
        let use_batch = self.training || self.running_mean.is_none();
        let (mut mean, mut var) = (vec![0.0f32; c], vec![0.0f32; c]);
        if use_batch {
            if count <= 1 && self.training {
                return Err(QnnError::InvalidConfig {
                    module,
                    reason: format!(
                        "expected more than 1 value per channel when training, got input shape {:?}",
                        x.shape()
                    ),
                });
            }
            let momentum = match self.cfg.momentum {
                Some(m) => m,
                None => 1.0 / (self.num_batches_tracked.unwrap_or(0) + 1) as f32,
            };
            for ch in 0..c {
                let mut s = 0.0f64;
                for b in 0..n {
                    s += xd[at(b, ch)..at(b, ch) + inner]
                        .iter()
                        .map(|&v| v as f64)
                        .sum::<f64>();
                }
                let m = s / count as f64;
                let mut sq = 0.0f64;
                for b in 0..n {
                    sq += xd[at(b, ch)..at(b, ch) + inner]
                        .iter()
                        .map(|&v| (v as f64 - m) * (v as f64 - m))
                        .sum::<f64>();
                }
                mean[ch] = m as f32;
                var[ch] = (sq / count as f64) as f32;
                if self.training
                    && let (Some(rm), Some(rv)) = (&mut self.running_mean, &mut self.running_var)
                {
                    let unbiased = if count > 1 {
                        (sq / (count - 1) as f64) as f32
                    } else {
                        f32::NAN
                    };
                    rm.data_mut()[ch] = (1.0 - momentum) * rm.data()[ch] + momentum * mean[ch];
                    rv.data_mut()[ch] = (1.0 - momentum) * rv.data()[ch] + momentum * unbiased;
                }
            }
            if self.training
                && let Some(t) = &mut self.num_batches_tracked
            {
                *t += 1;
            }
        } else if let (Some(rm), Some(rv)) = (&self.running_mean, &self.running_var) {
            mean.copy_from_slice(rm.data());
            var.copy_from_slice(rv.data());
        }
        let invstd: Vec<f32> = var
            .iter()
            .map(|v| 1.0 / (v + self.cfg.eps).sqrt())
            .collect();
        let mut xhat = vec![0.0f32; xd.len()];
        let mut y = vec![0.0f32; xd.len()];
        for b in 0..n {
            for ch in 0..c {
                let (gamma, beta) = (
                    self.weight.as_ref().map_or(1.0, |w| w.value.data()[ch]),
                    self.bias.as_ref().map_or(0.0, |p| p.value.data()[ch]),
                );
                let r = at(b, ch)..at(b, ch) + inner;
                for i in r {
                    let h = (xd[i] - mean[ch]) * invstd[ch];
                    xhat[i] = h;
                    y[i] = h * gamma + beta;
                }
            }
        }
        self.saved = Some(Saved {
            xhat: tensor(x.shape(), xhat)?,
            invstd,
            batch_stats: use_batch,
        });
        tensor(x.shape(), y)
    }

    fn backward(&mut self, module: &'static str, grad: &Value) -> Result<Tensor<f32>> {
        let s = saved(&self.saved, module)?;
        let shape = s.xhat.shape().to_vec();
        let g = f32_grad(grad, module, &shape)?;
        let (n, c) = (shape[0], shape[1]);
        let inner: usize = shape[2..].iter().product();
        let count = (n * inner) as f32;
        let at = |b: usize, ch: usize| (b * c + ch) * inner;
        let (gd, xh) = (g.data(), s.xhat.data());
        let mut dx = vec![0.0f32; gd.len()];
        for ch in 0..c {
            let (mut sum_g, mut sum_gx) = (0.0f64, 0.0f64);
            for b in 0..n {
                for i in at(b, ch)..at(b, ch) + inner {
                    sum_g += gd[i] as f64;
                    sum_gx += (gd[i] * xh[i]) as f64;
                }
            }
            if let Some(w) = &mut self.weight {
                w.grad.data_mut()[ch] += sum_gx as f32;
            }
            if let Some(bp) = &mut self.bias {
                bp.grad.data_mut()[ch] += sum_g as f32;
            }
            let gamma = self.weight.as_ref().map_or(1.0, |w| w.value.data()[ch]);
            let k = gamma * s.invstd[ch];
            let (mg, mgx) = (
                (sum_g / count as f64) as f32,
                (sum_gx / count as f64) as f32,
            );
            for b in 0..n {
                for i in at(b, ch)..at(b, ch) + inner {
                    dx[i] = if s.batch_stats {
                        k * (gd[i] - mg - xh[i] * mgx)
                    } else {
                        k * gd[i]
                    };
                }
            }
        }
        tensor(&shape, dx)
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param)) {
        if let (Some(w), Some(b)) = (&self.weight, &self.bias) {
            f("weight", w);
            f("bias", b);
        }
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        if let (Some(w), Some(b)) = (&mut self.weight, &mut self.bias) {
            f("weight", w);
            f("bias", b);
        }
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        if let (Some(m), Some(v), Some(t)) = (
            &self.running_mean,
            &self.running_var,
            &self.num_batches_tracked,
        ) {
            f("running_mean", BufferRef::F32(m));
            f("running_var", BufferRef::F32(v));
            f("num_batches_tracked", BufferRef::I64(t));
        }
    }

    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        if let (Some(m), Some(v), Some(t)) = (
            &mut self.running_mean,
            &mut self.running_var,
            &mut self.num_batches_tracked,
        ) {
            f("running_mean", BufferMut::F32(m));
            f("running_var", BufferMut::F32(v));
            f("num_batches_tracked", BufferMut::I64(t));
        }
    }
}

macro_rules! batchnorm {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $ranks:expr, $expected:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $ty {
            core: Core,
        }

        impl $ty {
            /// A layer with weight 1, bias 0, running mean 0 and running variance 1.
            pub fn new(config: BatchNormConfig) -> Self {
                Self { core: Core::new(config) }
            }

            /// The hyper-parameters.
            pub fn config(&self) -> &BatchNormConfig {
                &self.core.cfg
            }

            /// `weight` (gamma), if affine.
            pub fn weight(&self) -> Option<&Param> {
                self.core.weight.as_ref()
            }

            /// `bias` (beta), if affine.
            pub fn bias(&self) -> Option<&Param> {
                self.core.bias.as_ref()
            }

            /// `running_mean`, if tracked.
            pub fn running_mean(&self) -> Option<&Tensor<f32>> {
                self.core.running_mean.as_ref()
            }

            /// `running_var` (unbiased batch variances, averaged), if tracked.
            pub fn running_var(&self) -> Option<&Tensor<f32>> {
                self.core.running_var.as_ref()
            }

            /// `num_batches_tracked`, if tracked.
            pub fn num_batches_tracked(&self) -> Option<i64> {
                self.core.num_batches_tracked
            }
        }

        impl Module for $ty {
            fn kind(&self) -> ModuleKind {
                ModuleKind::$ty
            }

            fn extra_repr(&self) -> String {
                let c = &self.core.cfg;
                format!(
                    "{}, eps={}, momentum={}, affine={}, bias={}, track_running_stats={}",
                    c.num_features,
                    crate::repr::py_float32(c.eps),
                    c.momentum.map_or_else(|| "None".into(), crate::repr::py_float32),
                    crate::repr::py_bool(c.affine),
                    crate::repr::py_bool(self.core.bias.is_some()),
                    crate::repr::py_bool(c.track_running_stats)
                )
            }

            fn forward(&mut self, input: &Value) -> Result<Value> {
                let x = f32_input(input, $name)?;
                Ok(Value::F32(self.core.forward($name, &x, &$ranks, $expected)?))
            }

            fn backward(&mut self, grad_output: &Value) -> Result<Value> {
                Ok(Value::F32(self.core.backward($name, grad_output)?))
            }

            fn visit_params(&self, f: &mut dyn FnMut(&str, &Param)) {
                self.core.visit_params(f);
            }

            fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
                self.core.visit_params_mut(f);
            }

            fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
                self.core.visit_buffers(f);
            }

            fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
                self.core.visit_buffers_mut(f);
            }

            fn train(&mut self, mode: bool) {
                self.core.training = mode;
            }

            fn is_training(&self) -> bool {
                self.core.training
            }
        }
    };
}

batchnorm!(
    /// Batch norm over `(N, C)` or `(N, C, L)` input, per channel `C`.
    BatchNorm1d, "BatchNorm1d", [2, 3], "2-d (N, C) or 3-d (N, C, L)"
);
batchnorm!(
    /// Batch norm over `(N, C, H, W)` input, per channel `C`.
    BatchNorm2d, "BatchNorm2d", [4], "4-d (N, C, H, W)"
);
