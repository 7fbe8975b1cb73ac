//! The QAT layer without batch norm, generic over its float layer: `nnqat.Linear`,
//! `nniqat.LinearReLU`, `nnqat.Conv1d`, `nnqat.Conv2d`, `nniqat.ConvReLU2d` are all
//! [`QatLayer`] — the float layer run on `fake_quant(W)`, optionally followed by a ReLU.

use qtensor::{QParams, Tensor};

use super::FakeQuantSpec;
use super::fake_quant::FakeQuant;
use super::layer::{QatFloatLayer, name_and_kind};
use super::weight::{WeightFakeQuant, accumulate, not_halved, relu_backward, relu_in_place};
use crate::Value;
use crate::error::{QnnError, Result};
use crate::float::util::{f32_grad, f32_input, saved};
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef, Param};

/// A QAT layer, `layer(x, fake_quant(W), b)`, followed by a ReLU when `RELU`. Gradients reach
/// `W` through the weight fake-quant's straight-through mask. State-dict names: `weight`,
/// `bias`, `weight_fake_quant.*`. Used through its PyTorch-named aliases ([`super::Linear`],
/// [`super::LinearReLU`], [`super::Conv1d`], [`super::Conv2d`], [`super::ConvReLU2d`]).
#[derive(Clone, Debug)]
pub struct QatLayer<L: QatFloatLayer, const RELU: bool> {
    config: L::Config,
    /// Weight, PyTorch's shape (`[out_features, in_features]`, `[C_out, C_in / groups, k...]`).
    pub weight: Param,
    /// Bias, `[out]`, if any.
    pub bias: Option<Param>,
    weight_fq: WeightFakeQuant,
    inner: Option<L>,
    output: Option<Tensor<f32>>,
    training: bool,
}

impl<L: QatFloatLayer, const RELU: bool> QatLayer<L, RELU> {
    const ENTRY: Option<(&'static str, ModuleKind)> = L::NAMES.plain[RELU as usize];
    const NAME: &'static str = match Self::ENTRY {
        Some((name, _)) => name,
        None => "qat",
    };

    /// PyTorch's `from_float`: the float layer's hyper-parameters, weight and bias (copied)
    /// with a fresh weight fake-quant built from `weight_fake_quant` (the qconfig's weight
    /// entry).
    pub fn from_float(float: &L, weight_fake_quant: &FakeQuantSpec) -> Result<Self> {
        name_and_kind(Self::ENTRY)?;
        not_halved(Self::NAME, float.is_halved())?;
        let config = float.layer_config();
        let weight = float.weight_param().value.clone();
        let bias = float.bias_param().map(|b| b.value.clone());
        L::build(config, weight.clone(), bias.clone())?;
        Ok(Self {
            config,
            weight: Param::new(weight),
            bias: bias.map(Param::new),
            weight_fq: WeightFakeQuant::new(weight_fake_quant, L::out_channels(&config))?,
            inner: None,
            output: None,
            training: true,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &L::Config {
        &self.config
    }

    /// The weight fake-quant.
    pub fn weight_fake_quant(&self) -> &dyn FakeQuant {
        self.weight_fq.fq.as_ref()
    }

    /// The weight fake-quant, mutably (toggles).
    pub fn weight_fake_quant_mut(&mut self) -> &mut dyn FakeQuant {
        self.weight_fq.fq.as_mut()
    }

    /// PyTorch's `to_float()`: the float layer with this layer's weight and bias (not
    /// fake-quantized) and train/eval mode. For the ReLU variants this is the inner layer (the
    /// quantized fused module takes it, as [`crate::quantized`] conventions say).
    pub fn to_float(&self) -> Result<L> {
        let mut f = L::build(
            self.config,
            self.weight.value.clone(),
            self.bias.as_ref().map(|b| b.value.clone()),
        )?;
        f.train(self.training);
        Ok(f)
    }

    /// What convert needs, as PyTorch's quantized `from_float` gets it: the float layer, then
    /// `weight_fake_quant(weight)` (one more observation if the observer is enabled) and its
    /// `calculate_qparams()` as the weight qparams.
    pub fn to_float_with_weight_qparams(&mut self) -> Result<(L, QParams)> {
        let f = self.to_float()?;
        let qparams = self.weight_fq.convert_qparams(&f.weight_param().value)?;
        Ok((f, qparams))
    }
}

impl<L: QatFloatLayer, const RELU: bool> Module for QatLayer<L, RELU> {
    fn kind(&self) -> ModuleKind {
        Self::ENTRY.map_or(ModuleKind::Custom, |(_, kind)| kind)
    }

    fn extra_repr(&self) -> String {
        L::repr(&self.config, self.bias.is_some())
    }

    fn repr_children(&self) -> Vec<(String, crate::repr::ReprTree)> {
        vec![self.weight_fq.repr_child()]
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let x = f32_input(input, Self::NAME)?;
        let wq = self.weight_fq.forward(&self.weight.value)?;
        let mut inner = L::build(self.config, wq, self.bias.as_ref().map(|b| b.value.clone()))?;
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
            .ok_or(QnnError::BackwardBeforeForward { module: Self::NAME })?;
        inner.zero_grad();
        let dx = inner.backward(&Value::F32(g))?;
        let dw = self.weight_fq.backward(&inner.weight_param().grad)?;
        accumulate(&mut self.weight.grad, &dw);
        if let (Some(b), Some(ib)) = (&mut self.bias, inner.bias_param()) {
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
