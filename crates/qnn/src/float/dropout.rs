//! `nn.Dropout` with a seeded mask.

use qtensor::Tensor;

use super::util::{f32_grad, f32_input, saved};
use crate::error::{QnnError, Result};
use crate::init::Rng;
use crate::module::{Module, ModuleKind};
use crate::value::Value;

/// In training, zeroes each element with probability `p` and scales the rest by `1 / (1 - p)`;
/// in evaluation, the identity. The mask comes from the layer's own seeded [`Rng`].
#[derive(Clone, Debug)]
pub struct Dropout {
    p: f32,
    rng: Rng,
    mask: Option<Tensor<f32>>,
    training: bool,
}

impl Dropout {
    /// Drop probability `p` in `[0, 1]`; masks are drawn from `Rng::new(seed)`.
    pub fn new(p: f32, seed: u64) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            return Err(QnnError::InvalidConfig {
                module: "Dropout",
                reason: format!("probability {p} is not in [0, 1]"),
            });
        }
        Ok(Self {
            p,
            rng: Rng::new(seed),
            mask: None,
            training: true,
        })
    }

    /// The drop probability.
    pub fn p(&self) -> f32 {
        self.p
    }
}

impl Module for Dropout {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Dropout
    }

    fn extra_repr(&self) -> String {
        format!("p={}, inplace=False", crate::repr::py_float32(self.p))
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let mut x = f32_input(input, "Dropout")?;
        if !self.training || self.p == 0.0 {
            self.mask = Some(Tensor::from_fn(x.shape(), |_| 1.0));
            return Ok(Value::F32(x));
        }
        let scale = if self.p < 1.0 {
            1.0 / (1.0 - self.p)
        } else {
            0.0
        };
        let rng = &mut self.rng;
        let p = self.p;
        let mask = Tensor::from_fn(x.shape(), |_| if rng.bernoulli(p) { 0.0 } else { scale });
        for (v, m) in x.data_mut().iter_mut().zip(mask.data()) {
            *v *= m;
        }
        self.mask = Some(mask);
        Ok(Value::F32(x))
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        let mask = saved(&self.mask, "Dropout")?;
        let mut g = f32_grad(grad_output, "Dropout", mask.shape())?;
        for (v, m) in g.data_mut().iter_mut().zip(mask.data()) {
            *v *= m;
        }
        Ok(Value::F32(g))
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}
