//! `nn.InstanceNorm2d` (without running statistics): each channel of each sample normalized.

use super::groupnorm::{GroupCore, Saved};
use super::util::{f32_input, saved};
use crate::error::Result;
use crate::module::{Module, ModuleKind};
use crate::param::Param;
use crate::value::Value;

const NAME: &str = "InstanceNorm2d";

/// `nn.InstanceNorm2d(num_features, eps, affine, track_running_stats=False)` on `(N, C, H, W)`
/// input: every `H × W` plane is normalized to zero mean and unit (biased) variance, then, if
/// affine, scaled and shifted per channel. It is GroupNorm with one channel per group, and
/// uses the batch statistics in training and evaluation alike (running statistics are not
/// supported, as with PyTorch's default `track_running_stats=False`).
#[derive(Clone, Debug)]
pub struct InstanceNorm2d {
    core: GroupCore,
    saved: Option<Saved>,
    training: bool,
}

impl InstanceNorm2d {
    /// A layer with weight 1 and bias 0 when `affine` (PyTorch's defaults: eps 1e-5, not
    /// affine).
    ///
    /// Errors: zero features, a negative or non-finite eps.
    pub fn new(num_features: usize, eps: f64, affine: bool) -> Result<Self> {
        Ok(Self {
            core: GroupCore::new(NAME, num_features, num_features, eps, affine)?,
            saved: None,
            training: true,
        })
    }

    /// Number of channels.
    pub fn num_features(&self) -> usize {
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
    pub fn apply(&self, x: &qtensor::Tensor<f32>) -> Result<qtensor::Tensor<f32>> {
        Ok(self.core.forward(NAME, x, 4)?.0)
    }
}

impl Module for InstanceNorm2d {
    fn kind(&self) -> ModuleKind {
        ModuleKind::InstanceNorm2d
    }

    fn extra_repr(&self) -> String {
        let c = &self.core;
        crate::repr::instance_norm_args(
            c.num_channels,
            &crate::repr::py_float(c.eps),
            c.weight.is_some(),
            c.bias.is_some(),
        )
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let x = f32_input(input, NAME)?;
        if x.ndim() != 4 {
            return Err(crate::QnnError::WrongRank {
                module: NAME,
                expected: "4-d (N, C, H, W)",
                got: x.shape().to_vec(),
            });
        }
        let (y, s) = self.core.forward(NAME, &x, 4)?;
        self.saved = Some(s);
        Ok(Value::F32(y))
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        let s = saved(&self.saved, NAME)?.clone();
        Ok(Value::F32(self.core.backward(NAME, &s, grad_output, 4)?))
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
