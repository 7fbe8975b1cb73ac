//! `nn.Linear`: `y = x Wᵀ + b`.

use half::f16;
use qkernels::float::{MatMut, MatRef, Threads, sgemm};
use qtensor::Tensor;

use super::dense::{DenseWeight, dense};
use super::half_weight::{
    backward_on_half, halve_weight, visit_weight_and_bias, visit_weight_and_bias_mut,
    weight_and_bias_bytes,
};

use super::util::{f32_grad, f32_input, same_shape, saved, tensor};
use crate::error::{QnnError, Result};
use crate::init::{Rng, default_weight_and_bias};
use crate::module::{Module, ModuleKind};
use crate::param::Param;
use crate::value::Value;

const NAME: &str = "Linear";

/// Fully connected layer: input `[*, in_features]`, output `[*, out_features]`, weight
/// `[out_features, in_features]` (PyTorch's layout and names `weight`, `bias`).
///
/// After [`Module::half`] the weight is stored as f16 ([`Linear::weight_f16`]) and `weight` is
/// an empty placeholder.
#[derive(Clone, Debug)]
pub struct Linear {
    /// Weight, `[out_features, in_features]` (empty once the layer is halved).
    pub weight: Param,
    weight_f16: Option<Tensor<f16>>,
    /// Bias, `[out_features]`, if any.
    pub bias: Option<Param>,
    input: Option<Tensor<f32>>,
    training: bool,
}

impl Linear {
    /// A layer with PyTorch's default initialization drawn from `rng`.
    pub fn new(in_features: usize, out_features: usize, bias: bool, rng: &mut Rng) -> Self {
        let (w, b) = default_weight_and_bias(
            &[out_features, in_features],
            bias.then_some(out_features),
            rng,
        );
        Self {
            weight: Param::new(w),
            bias: b.map(Param::new),
            weight_f16: None,
            input: None,
            training: true,
        }
    }

    /// A layer with the given weight `[out, in]` and optional bias `[out]`.
    pub fn from_tensors(weight: Tensor<f32>, bias: Option<Tensor<f32>>) -> Result<Self> {
        let layer = Self {
            weight: Param::new(weight),
            bias: bias.map(Param::new),
            weight_f16: None,
            input: None,
            training: true,
        };
        layer.check_params()?;
        Ok(layer)
    }

    /// Re-checks the parameter shapes (the fields are public and may have been replaced).
    fn check_params(&self) -> Result<()> {
        let shape = self.weight_shape();
        if shape.len() != 2 {
            return Err(QnnError::WrongRank {
                module: NAME,
                expected: "2-d [out_features, in_features] weight",
                got: shape.to_vec(),
            });
        }
        if let Some(b) = &self.bias {
            same_shape("Linear bias vs weight rows", &[shape[0]], b.shape())?;
        }
        Ok(())
    }

    /// The weight's shape, wherever it is stored.
    fn weight_shape(&self) -> &[usize] {
        match &self.weight_f16 {
            Some(h) => h.shape(),
            None => self.weight.shape(),
        }
    }

    /// The f16 weight `[out_features, in_features]` once the layer is halved.
    pub fn weight_f16(&self) -> Option<&Tensor<f16>> {
        self.weight_f16.as_ref()
    }

    /// Number of input features.
    pub fn in_features(&self) -> usize {
        self.weight_shape().get(1).copied().unwrap_or(0)
    }

    /// Number of output features.
    pub fn out_features(&self) -> usize {
        self.weight_shape().first().copied().unwrap_or(0)
    }

    /// The forward computation on a tensor, without saving anything for backward.
    pub fn apply(&self, x: &Tensor<f32>) -> Result<Tensor<f32>> {
        self.check_params()?;
        let (inf, outf) = (self.in_features(), self.out_features());
        let shape = x.shape();
        match shape.last() {
            None => {
                return Err(QnnError::WrongRank {
                    module: NAME,
                    expected: "at least 1-d [*, in_features]",
                    got: shape.to_vec(),
                });
            }
            Some(&last) if last != inf => {
                return Err(QnnError::ShapeMismatch {
                    what: "Linear input features (last dim) vs weight".into(),
                    expected: vec![inf],
                    got: vec![last],
                });
            }
            Some(_) => {}
        }
        let rows = x.numel() / inf.max(1);
        let w = match &self.weight_f16 {
            Some(h) => DenseWeight::F16(h.data()),
            None => DenseWeight::F32(self.weight.value.data()),
        };
        let bias = self.bias.as_ref().map(|b| b.value.data());
        let out = dense(x.data(), rows, inf, w, bias, outf)?;
        let mut out_shape = shape.to_vec();
        if let Some(last) = out_shape.last_mut() {
            *last = outf;
        }
        tensor(&out_shape, out)
    }
}

impl Module for Linear {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Linear
    }

    fn extra_repr(&self) -> String {
        format!(
            "in_features={}, out_features={}, bias={}",
            self.in_features(),
            self.out_features(),
            crate::repr::py_bool(self.bias.is_some())
        )
    }

    fn param_dtype(&self, name: &str) -> Option<crate::repr::TensorDType> {
        (name == "weight" && self.weight_f16.is_some()).then_some(crate::repr::TensorDType::F16)
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let x = f32_input(input, NAME)?;
        let y = self.apply(&x)?;
        self.input = Some(x);
        Ok(Value::F32(y))
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        if self.weight_f16.is_some() {
            return Err(backward_on_half(NAME));
        }
        self.check_params()?;
        let x = saved(&self.input, NAME)?;
        let (inf, outf) = (self.in_features(), self.out_features());
        let mut out_shape = x.shape().to_vec();
        if let Some(last) = out_shape.last_mut() {
            *last = outf;
        }
        let g = f32_grad(grad_output, NAME, &out_shape)?;
        let rows = x.numel() / inf.max(1);
        let gv = MatRef::row_major(g.data(), rows, outf)?;
        // dW += dYᵀ X
        sgemm(
            1.0,
            gv.t(),
            MatRef::row_major(x.data(), rows, inf)?,
            1.0,
            MatMut::row_major(self.weight.grad.data_mut(), outf, inf)?,
            Threads::Single,
        )?;
        if let Some(b) = &mut self.bias {
            let db = b.grad.data_mut();
            for row in g.data().chunks_exact(outf.max(1)) {
                for (d, v) in db.iter_mut().zip(row) {
                    *d += v;
                }
            }
        }
        // dX = dY W
        let mut dx = vec![0.0f32; rows * inf];
        sgemm(
            1.0,
            gv,
            MatRef::row_major(self.weight.value.data(), outf, inf)?,
            0.0,
            MatMut::row_major(&mut dx, rows, inf)?,
            Threads::Single,
        )?;
        Ok(Value::F32(tensor(x.shape(), dx)?))
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param)) {
        visit_weight_and_bias(
            &self.weight,
            self.weight_f16.as_ref(),
            self.bias.as_ref(),
            f,
        );
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        visit_weight_and_bias_mut(
            &mut self.weight,
            self.weight_f16.as_mut(),
            self.bias.as_mut(),
            f,
        );
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn half(&mut self) -> Result<()> {
        self.check_params()?;
        if halve_weight(&mut self.weight, &mut self.weight_f16)? {
            self.input = None;
        }
        Ok(())
    }

    fn param_bytes(&self) -> usize {
        weight_and_bias_bytes(&self.weight, self.weight_f16.as_ref(), self.bias.as_ref())
    }
}
