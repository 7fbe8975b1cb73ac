//! QAT linear layers: `nnqat.Linear` and `nniqat.LinearReLU` — a float linear layer whose weight
//! passes through a weight fake-quant on every forward.

use qtensor::{QParams, Tensor};

use super::FakeQuantSpec;
use super::fake_quant::FakeQuant;
use super::weight::{WeightFakeQuant, accumulate, not_halved, relu_backward, relu_in_place};
use crate::error::Result;
use crate::float::util::{f32_grad, f32_input, saved};
use crate::fused;
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef, Param};
use crate::{Value, float};

/// A QAT linear layer, `y = x · fake_quant(W)ᵀ + b`, followed by a ReLU when `RELU`
/// ([`Linear`] and [`LinearReLU`]). Gradients reach `W` through the weight fake-quant's
/// straight-through mask. State-dict names: `weight`, `bias`, `weight_fake_quant.*`.
#[derive(Clone, Debug)]
pub struct QatLinear<const RELU: bool> {
    /// Weight, `[out_features, in_features]`.
    pub weight: Param,
    /// Bias, `[out_features]`, if any.
    pub bias: Option<Param>,
    weight_fq: WeightFakeQuant,
    inner: Option<float::Linear>,
    output: Option<Tensor<f32>>,
    training: bool,
}

/// PyTorch's `torch.ao.nn.qat.Linear`.
pub type Linear = QatLinear<false>;
/// PyTorch's `torch.ao.nn.intrinsic.qat.LinearReLU`.
pub type LinearReLU = QatLinear<true>;

impl<const RELU: bool> QatLinear<RELU> {
    const NAME: &'static str = if RELU {
        "qat::LinearReLU"
    } else {
        "qat::Linear"
    };

    /// PyTorch's `from_float`: the float layer's weight and bias (copied) with a fresh weight
    /// fake-quant built from `weight_fake_quant` (the qconfig's weight entry).
    pub fn from_float(float: &float::Linear, weight_fake_quant: &FakeQuantSpec) -> Result<Self> {
        not_halved(Self::NAME, float.weight_f16().is_some())?;
        float::Linear::from_tensors(
            float.weight.value.clone(),
            float.bias.as_ref().map(|b| b.value.clone()),
        )?;
        Ok(Self {
            weight: Param::new(float.weight.value.clone()),
            bias: float.bias.as_ref().map(|b| Param::new(b.value.clone())),
            weight_fq: WeightFakeQuant::new(weight_fake_quant, float.out_features())?,
            inner: None,
            output: None,
            training: true,
        })
    }

    /// The weight fake-quant.
    pub fn weight_fake_quant(&self) -> &dyn FakeQuant {
        self.weight_fq.fq.as_ref()
    }

    /// The weight fake-quant, mutably (toggles).
    pub fn weight_fake_quant_mut(&mut self) -> &mut dyn FakeQuant {
        self.weight_fq.fq.as_mut()
    }

    /// PyTorch's `to_float()`: a float linear layer with this layer's weight and bias (not
    /// fake-quantized) and its train/eval mode. For [`LinearReLU`] this is the inner linear
    /// layer (the quantized fused module takes it, as [`crate::quantized`] conventions say).
    pub fn to_float(&self) -> Result<float::Linear> {
        let mut f = float::Linear::from_tensors(
            self.weight.value.clone(),
            self.bias.as_ref().map(|b| b.value.clone()),
        )?;
        f.train(self.training);
        Ok(f)
    }

    /// What convert needs, as PyTorch's quantized `from_float` gets it: the float layer, then
    /// `weight_fake_quant(weight)` (one more observation if the observer is enabled) and its
    /// `calculate_qparams()` as the weight qparams.
    pub fn to_float_with_weight_qparams(&mut self) -> Result<(float::Linear, QParams)> {
        let f = self.to_float()?;
        let qparams = self.weight_fq.convert_qparams(&f.weight.value)?;
        Ok((f, qparams))
    }
}

impl LinearReLU {
    /// `to_float()` as PyTorch returns it for this class: the fused float `nni.LinearReLU`.
    pub fn to_float_fused(&self) -> Result<fused::LinearReLU> {
        Ok(fused::LinearReLU::new(self.to_float()?, float::ReLU::new()))
    }

    /// From PyTorch's fused float `nni.LinearReLU`.
    pub fn from_fused(
        fused: &fused::LinearReLU,
        weight_fake_quant: &FakeQuantSpec,
    ) -> Result<Self> {
        Self::from_float(fused.linear(), weight_fake_quant)
    }
}

impl<const RELU: bool> Module for QatLinear<RELU> {
    fn kind(&self) -> ModuleKind {
        if RELU {
            ModuleKind::QatLinearReLU
        } else {
            ModuleKind::QatLinear
        }
    }

    fn repr_children(&self) -> Vec<(String, crate::repr::ReprTree)> {
        vec![self.weight_fq.repr_child()]
    }

    fn extra_repr(&self) -> String {
        let shape = self.weight.shape();
        format!(
            "in_features={}, out_features={}, bias={}",
            shape.get(1).copied().unwrap_or(0),
            shape.first().copied().unwrap_or(0),
            crate::repr::py_bool(self.bias.is_some())
        )
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let x = f32_input(input, Self::NAME)?;
        let wq = self.weight_fq.forward(&self.weight.value)?;
        let mut inner =
            float::Linear::from_tensors(wq, self.bias.as_ref().map(|b| b.value.clone()))?;
        let mut y = inner.forward(&Value::F32(x))?.into_f32(Self::NAME)?;
        if RELU {
            relu_in_place(&mut y);
        }
        self.inner = Some(inner);
        self.output = Some(y.clone());
        Ok(Value::F32(y))
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        let y = saved(&self.output, Self::NAME)?;
        let mut g = f32_grad(grad_output, Self::NAME, y.shape())?;
        if RELU {
            g = relu_backward(&g, y)?;
        }
        let inner = self
            .inner
            .as_mut()
            .ok_or(crate::QnnError::BackwardBeforeForward { module: Self::NAME })?;
        inner.zero_grad();
        let dx = inner.backward(&Value::F32(g))?;
        let dw = self.weight_fq.backward(&inner.weight.grad)?;
        accumulate(&mut self.weight.grad, &dw);
        if let (Some(b), Some(ib)) = (&mut self.bias, &inner.bias) {
            accumulate(&mut b.grad, &ib.grad);
        }
        Ok(dx)
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param)) {
        f("weight", &self.weight);
        if let Some(b) = &self.bias {
            f("bias", b);
        }
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        f("weight", &mut self.weight);
        if let Some(b) = &mut self.bias {
            f("bias", b);
        }
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        self.weight_fq.visit_buffers(f);
    }

    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        self.weight_fq.visit_buffers_mut(f);
    }

    fn after_load(&mut self) -> Result<()> {
        self.weight_fq.fq.after_load()
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
        self.weight_fq.fq.train(mode);
    }

    fn is_training(&self) -> bool {
        self.training
    }
}
