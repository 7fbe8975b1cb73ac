//! `nn.LayerNorm` over the trailing `normalized_shape` dims.

use qtensor::Tensor;

use super::util::{f32_grad, f32_input, saved, tensor};
use crate::error::{QnnError, Result};
use crate::module::{Module, ModuleKind};
use crate::param::Param;
use crate::value::Value;

/// Normalizes each trailing block of `normalized_shape` elements to zero mean and unit (biased)
/// variance, then applies the element-wise affine `weight` and `bias` (shaped `normalized_shape`).
#[derive(Clone, Debug)]
pub struct LayerNorm {
    normalized_shape: Vec<usize>,
    eps: f32,
    /// Element-wise scale, if `elementwise_affine`.
    pub weight: Option<Param>,
    /// Element-wise shift, if `elementwise_affine`.
    pub bias: Option<Param>,
    saved: Option<(Tensor<f32>, Vec<f32>)>,
    training: bool,
}

impl LayerNorm {
    /// A layer with weight 1 and bias 0 (PyTorch's defaults: eps 1e-5, affine).
    pub fn new(normalized_shape: &[usize], eps: f32, elementwise_affine: bool) -> Self {
        let affine = |v: f32| {
            elementwise_affine.then(|| Param::new(Tensor::from_fn(normalized_shape, |_| v)))
        };
        Self {
            normalized_shape: normalized_shape.to_vec(),
            eps,
            weight: affine(1.0),
            bias: affine(0.0),
            saved: None,
            training: true,
        }
    }

    /// The epsilon added to the variance.
    pub fn eps(&self) -> f32 {
        self.eps
    }

    /// The trailing shape normalized over.
    pub fn normalized_shape(&self) -> &[usize] {
        &self.normalized_shape
    }

    /// Number of elements per normalized block, after checking the input's trailing dims.
    fn block(&self, shape: &[usize]) -> Result<usize> {
        let d = self.normalized_shape.len();
        if shape.len() < d || shape[shape.len() - d..] != self.normalized_shape[..] {
            return Err(QnnError::ShapeMismatch {
                what: "LayerNorm input trailing dims vs normalized_shape".into(),
                expected: self.normalized_shape.clone(),
                got: shape.to_vec(),
            });
        }
        for p in [&self.weight, &self.bias].into_iter().flatten() {
            if p.shape() != self.normalized_shape {
                return Err(QnnError::ShapeMismatch {
                    what: "LayerNorm parameter vs normalized_shape".into(),
                    expected: self.normalized_shape.clone(),
                    got: p.shape().to_vec(),
                });
            }
        }
        Ok(self.normalized_shape.iter().product())
    }
}

impl Module for LayerNorm {
    fn kind(&self) -> ModuleKind {
        ModuleKind::LayerNorm
    }

    fn extra_repr(&self) -> String {
        crate::repr::layer_norm_args(
            &self.normalized_shape,
            &crate::repr::py_float32(self.eps),
            self.weight.is_some(),
            self.bias.is_some(),
        )
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let x = f32_input(input, "LayerNorm")?;
        let d = self.block(x.shape())?.max(1);
        let mut xhat = vec![0.0f32; x.numel()];
        let mut y = vec![0.0f32; x.numel()];
        let mut invstds = Vec::with_capacity(x.numel() / d);
        for ((row, hrow), yrow) in x
            .data()
            .chunks_exact(d)
            .zip(xhat.chunks_exact_mut(d))
            .zip(y.chunks_exact_mut(d))
        {
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
            let invstd = 1.0 / (var as f32 + self.eps).sqrt();
            invstds.push(invstd);
            for (i, ((h, yv), &v)) in hrow.iter_mut().zip(yrow.iter_mut()).zip(row).enumerate() {
                *h = (v - mean as f32) * invstd;
                let (w, b) = (
                    self.weight.as_ref().map_or(1.0, |p| p.value.data()[i]),
                    self.bias.as_ref().map_or(0.0, |p| p.value.data()[i]),
                );
                *yv = *h * w + b;
            }
        }
        self.saved = Some((tensor(x.shape(), xhat)?, invstds));
        Ok(Value::F32(tensor(x.shape(), y)?))
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        let (xhat, invstds) = saved(&self.saved, "LayerNorm")?;
        let g = f32_grad(grad_output, "LayerNorm", xhat.shape())?;
        let d = self.block(xhat.shape())?.max(1);
        let mut dx = vec![0.0f32; g.numel()];
        for (((grow, hrow), dxrow), &invstd) in g
            .data()
            .chunks_exact(d)
            .zip(xhat.data().chunks_exact(d))
            .zip(dx.chunks_exact_mut(d))
            .zip(invstds)
        {
            let mut dxhat = vec![0.0f32; d];
            for (i, &gv) in grow.iter().enumerate() {
                dxhat[i] = gv * self.weight.as_ref().map_or(1.0, |p| p.value.data()[i]);
            }
            for (i, (&gv, &h)) in grow.iter().zip(hrow).enumerate() {
                if let Some(w) = &mut self.weight {
                    w.grad.data_mut()[i] += gv * h;
                }
                if let Some(b) = &mut self.bias {
                    b.grad.data_mut()[i] += gv;
                }
            }
            let mean_d = dxhat.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
            let mean_dh = dxhat
                .iter()
                .zip(hrow)
                .map(|(&a, &h)| (a * h) as f64)
                .sum::<f64>()
                / d as f64;
            for ((o, &a), &h) in dxrow.iter_mut().zip(&dxhat).zip(hrow) {
                *o = invstd * (a - mean_d as f32 - h * mean_dh as f32);
            }
        }
        Ok(Value::F32(tensor(xhat.shape(), dx)?))
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param)) {
        if let Some(w) = &self.weight {
            f("weight", w);
        }
        if let Some(b) = &self.bias {
            f("bias", b);
        }
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        if let Some(w) = &mut self.weight {
            f("weight", w);
        }
        if let Some(b) = &mut self.bias {
            f("bias", b);
        }
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}
