//! `nn.GroupNorm`: normalizes groups of channels of `(N, C, *)` input, per sample.

use qtensor::Tensor;

use super::util::{f32_grad, f32_input, saved, tensor};
use crate::error::{QnnError, Result};
use crate::module::{Module, ModuleKind};
use crate::param::Param;
use crate::value::Value;

/// What forward keeps for backward: the normalized input and one `1/σ` per (sample, group).
#[derive(Clone, Debug)]
pub(super) struct Saved {
    xhat: Tensor<f32>,
    invstd: Vec<f32>,
}

/// The shared core of [`GroupNorm`] and [`super::InstanceNorm2d`]: channel count, group count,
/// epsilon and the optional per-channel affine parameters.
#[derive(Clone, Debug)]
pub(super) struct GroupCore {
    pub(super) num_groups: usize,
    pub(super) num_channels: usize,
    pub(super) eps: f64,
    pub(super) weight: Option<Param>,
    pub(super) bias: Option<Param>,
}

impl GroupCore {
    pub(super) fn new(
        module: &'static str,
        num_groups: usize,
        num_channels: usize,
        eps: f64,
        affine: bool,
    ) -> Result<Self> {
        if num_groups == 0 || num_channels == 0 || !num_channels.is_multiple_of(num_groups) {
            return Err(QnnError::InvalidConfig {
                module,
                reason: format!(
                    "num_channels {num_channels} must be a positive multiple of num_groups {num_groups}"
                ),
            });
        }
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(QnnError::InvalidConfig {
                module,
                reason: format!("eps {eps} must be finite and non-negative"),
            });
        }
        let p = |v: f32| affine.then(|| Param::new(Tensor::from_fn(&[num_channels], |_| v)));
        Ok(Self {
            num_groups,
            num_channels,
            eps,
            weight: p(1.0),
            bias: p(0.0),
        })
    }

    /// `(batch, spatial)` of an `(N, C, *)` input, after checking C and the parameters.
    fn dims(
        &self,
        module: &'static str,
        shape: &[usize],
        min_rank: usize,
    ) -> Result<(usize, usize)> {
        if shape.len() < min_rank {
            return Err(QnnError::WrongRank {
                module,
                expected: if min_rank == 4 {
                    "4-d (N, C, H, W)"
                } else {
                    "(N, C, *)"
                },
                got: shape.to_vec(),
            });
        }
        if shape[1] != self.num_channels {
            return Err(QnnError::ShapeMismatch {
                what: format!("{module} input channels vs num_channels"),
                expected: vec![self.num_channels],
                got: vec![shape[1]],
            });
        }
        for p in [&self.weight, &self.bias].into_iter().flatten() {
            if p.shape() != [self.num_channels] {
                return Err(QnnError::ShapeMismatch {
                    what: format!("{module} parameter vs num_channels"),
                    expected: vec![self.num_channels],
                    got: p.shape().to_vec(),
                });
            }
        }
        Ok((shape[0], shape[2..].iter().product()))
    }

    fn affine(&self, c: usize) -> (f32, f32) {
        (
            self.weight.as_ref().map_or(1.0, |p| p.value.data()[c]),
            self.bias.as_ref().map_or(0.0, |p| p.value.data()[c]),
        )
    }

    /// Forward: statistics in f64 per (sample, group), `y = x̂·w[c] + b[c]`.
    pub(super) fn forward(
        &self,
        module: &'static str,
        x: &Tensor<f32>,
        min_rank: usize,
    ) -> Result<(Tensor<f32>, Saved)> {
        let (n, spatial) = self.dims(module, x.shape(), min_rank)?;
        let cpg = self.num_channels / self.num_groups;
        let len = (cpg * spatial).max(1);
        let mut xhat = vec![0.0f32; x.numel()];
        let mut y = vec![0.0f32; x.numel()];
        let mut invstd = Vec::with_capacity(n * self.num_groups);
        for (gi, ((xs, hs), ys)) in x
            .data()
            .chunks_exact(len)
            .zip(xhat.chunks_exact_mut(len))
            .zip(y.chunks_exact_mut(len))
            .enumerate()
        {
            let mean = xs.iter().map(|&v| f64::from(v)).sum::<f64>() / len as f64;
            let var = xs
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / len as f64;
            let inv = 1.0 / (var + self.eps).sqrt();
            invstd.push(inv as f32);
            let g = gi % self.num_groups;
            for (k, ((&v, h), o)) in xs.iter().zip(hs.iter_mut()).zip(ys.iter_mut()).enumerate() {
                let c = g * cpg + k / spatial.max(1);
                let (w, b) = self.affine(c);
                *h = ((f64::from(v) - mean) * inv) as f32;
                *o = *h * w + b;
            }
        }
        let saved = Saved {
            xhat: tensor(x.shape(), xhat)?,
            invstd,
        };
        Ok((tensor(x.shape(), y)?, saved))
    }

    /// Backward: accumulates `dw`, `db` and returns `dx`.
    pub(super) fn backward(
        &mut self,
        module: &'static str,
        saved: &Saved,
        grad: &Value,
        min_rank: usize,
    ) -> Result<Tensor<f32>> {
        let shape = saved.xhat.shape().to_vec();
        let g = f32_grad(grad, module, &shape)?;
        let (_, spatial) = self.dims(module, &shape, min_rank)?;
        let spatial1 = spatial.max(1);
        let cpg = self.num_channels / self.num_groups;
        let len = (cpg * spatial).max(1);
        let mut dx = vec![0.0f32; g.numel()];
        for (gi, (((gs, hs), dxs), &inv)) in g
            .data()
            .chunks_exact(len)
            .zip(saved.xhat.data().chunks_exact(len))
            .zip(dx.chunks_exact_mut(len))
            .zip(&saved.invstd)
            .enumerate()
        {
            let grp = gi % self.num_groups;
            let mut dxhat = vec![0.0f64; len];
            for (k, (&gv, &h)) in gs.iter().zip(hs).enumerate() {
                let c = grp * cpg + k / spatial1;
                let (w, _) = self.affine(c);
                dxhat[k] = f64::from(gv) * f64::from(w);
                if let Some(p) = &mut self.weight {
                    p.grad.data_mut()[c] += gv * h;
                }
                if let Some(p) = &mut self.bias {
                    p.grad.data_mut()[c] += gv;
                }
            }
            let mean_d = dxhat.iter().sum::<f64>() / len as f64;
            let mean_dh = dxhat
                .iter()
                .zip(hs)
                .map(|(&a, &h)| a * f64::from(h))
                .sum::<f64>()
                / len as f64;
            for ((o, &a), &h) in dxs.iter_mut().zip(&dxhat).zip(hs) {
                *o = (f64::from(inv) * (a - mean_d - f64::from(h) * mean_dh)) as f32;
            }
        }
        tensor(&shape, dx)
    }

    pub(super) fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        if let Some(w) = &self.weight {
            f("weight", w);
        }
        if let Some(b) = &self.bias {
            f("bias", b);
        }
    }

    pub(super) fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        if let Some(w) = &mut self.weight {
            f("weight", w);
        }
        if let Some(b) = &mut self.bias {
            f("bias", b);
        }
    }
}

const NAME: &str = "GroupNorm";

/// `nn.GroupNorm(num_groups, num_channels, eps, affine)` on `(N, C, *)` input: each sample's
/// channels are split into `num_groups` groups, each normalized to zero mean and unit (biased)
/// variance, then scaled and shifted per channel by `weight` and `bias` (`[C]`).
#[derive(Clone, Debug)]
pub struct GroupNorm {
    core: GroupCore,
    saved: Option<Saved>,
    training: bool,
}

impl GroupNorm {
    /// A layer with weight 1 and bias 0 when `affine` (PyTorch's defaults: eps 1e-5, affine).
    ///
    /// Errors: zero groups or channels, channels not divisible by groups, a negative or
    /// non-finite eps.
    pub fn new(num_groups: usize, num_channels: usize, eps: f64, affine: bool) -> Result<Self> {
        Ok(Self {
            core: GroupCore::new(NAME, num_groups, num_channels, eps, affine)?,
            saved: None,
            training: true,
        })
    }

    /// Number of groups.
    pub fn num_groups(&self) -> usize {
        self.core.num_groups
    }

    /// Number of channels.
    pub fn num_channels(&self) -> usize {
        self.core.num_channels
    }

    /// The epsilon added to the variance (a double, as PyTorch keeps it).
    pub fn eps(&self) -> f64 {
        self.core.eps
    }

    /// The per-channel scale, if affine.
    pub fn weight(&self) -> Option<&Param> {
        self.core.weight.as_ref()
    }

    /// The per-channel shift, if affine.
    pub fn bias(&self) -> Option<&Param> {
        self.core.bias.as_ref()
    }

    /// The forward computation, without saving anything for backward.
    pub fn apply(&self, x: &Tensor<f32>) -> Result<Tensor<f32>> {
        Ok(self.core.forward(NAME, x, 2)?.0)
    }
}

impl Module for GroupNorm {
    fn kind(&self) -> ModuleKind {
        ModuleKind::GroupNorm
    }

    fn extra_repr(&self) -> String {
        let c = &self.core;
        crate::repr::group_norm_args(
            c.num_groups,
            c.num_channels,
            &crate::repr::py_float(c.eps),
            c.weight.is_some(),
            c.bias.is_some(),
        )
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let x = f32_input(input, NAME)?;
        let (y, s) = self.core.forward(NAME, &x, 2)?;
        self.saved = Some(s);
        Ok(Value::F32(y))
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        let s = saved(&self.saved, NAME)?.clone();
        Ok(Value::F32(self.core.backward(NAME, &s, grad_output, 2)?))
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param)) {
        self.core.visit(f);
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        self.core.visit_mut(f);
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}
