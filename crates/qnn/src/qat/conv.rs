//! QAT convolutions: `nnqat.Conv1d`, `nnqat.Conv2d` and `nniqat.ConvReLU2d` — a float
//! convolution whose weight passes through a weight fake-quant on every forward.

use qtensor::{QParams, Tensor};

use super::FakeQuantSpec;
use super::fake_quant::FakeQuant;
use super::weight::{WeightFakeQuant, accumulate, not_halved, relu_backward, relu_in_place};
use crate::error::{QnnError, Result};
use crate::float::util::{f32_grad, f32_input, saved};
use crate::fused;
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef, Param};
use crate::{Value, float};

macro_rules! qat_conv {
    ($(#[$doc:meta])* $ty:ident, $float:ty, $config:ty, $kind:ident, $kind_relu:ident, $name:literal, $name_relu:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $ty<const RELU: bool> {
            config: $config,
            /// Weight, PyTorch's shape `[C_out, C_in / groups, kernel...]`.
            pub weight: Param,
            /// Bias, `[C_out]`, if any.
            pub bias: Option<Param>,
            weight_fq: WeightFakeQuant,
            inner: Option<$float>,
            output: Option<Tensor<f32>>,
            training: bool,
        }

        impl<const RELU: bool> $ty<RELU> {
            const NAME: &'static str = if RELU { $name_relu } else { $name };

            /// PyTorch's `from_float`: the float convolution's hyper-parameters, weight and
            /// bias (copied) with a fresh weight fake-quant built from `weight_fake_quant`.
            pub fn from_float(float: &$float, weight_fake_quant: &FakeQuantSpec) -> Result<Self> {
                not_halved(Self::NAME, float.weight_f16().is_some())?;
                let config = *float.config();
                <$float>::from_tensors(
                    config,
                    float.weight.value.clone(),
                    float.bias.as_ref().map(|b| b.value.clone()),
                )?;
                Ok(Self {
                    config,
                    weight: Param::new(float.weight.value.clone()),
                    bias: float.bias.as_ref().map(|b| Param::new(b.value.clone())),
                    weight_fq: WeightFakeQuant::new(weight_fake_quant, config.out_channels)?,
                    inner: None,
                    output: None,
                    training: true,
                })
            }

            /// The hyper-parameters.
            pub fn config(&self) -> &$config {
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

            /// PyTorch's `to_float()`: the float convolution with this layer's weight and bias
            /// and train/eval mode (for the ReLU variant, the inner convolution).
            pub fn to_float(&self) -> Result<$float> {
                let mut f = <$float>::from_tensors(
                    self.config,
                    self.weight.value.clone(),
                    self.bias.as_ref().map(|b| b.value.clone()),
                )?;
                f.train(self.training);
                Ok(f)
            }

            /// The float layer and the weight qparams as PyTorch's quantized `from_float` gets
            /// them (`weight_fake_quant(weight)`, then `calculate_qparams()`).
            pub fn to_float_with_weight_qparams(&mut self) -> Result<($float, QParams)> {
                let f = self.to_float()?;
                let qparams = self.weight_fq.convert_qparams(&f.weight.value)?;
                Ok((f, qparams))
            }
        }

        impl<const RELU: bool> Module for $ty<RELU> {
            fn kind(&self) -> ModuleKind {
                if RELU {
                    ModuleKind::$kind_relu
                } else {
                    ModuleKind::$kind
                }
            }

            fn extra_repr(&self) -> String {
                crate::repr::ConvConfigRepr::conv_repr(&self.config, self.bias.is_some())
            }

            fn repr_children(&self) -> Vec<(String, crate::repr::ReprTree)> {
                vec![self.weight_fq.repr_child()]
            }

            fn forward(&mut self, input: &Value) -> Result<Value> {
                let x = f32_input(input, Self::NAME)?;
                let wq = self.weight_fq.forward(&self.weight.value)?;
                let mut inner = <$float>::from_tensors(
                    self.config,
                    wq,
                    self.bias.as_ref().map(|b| b.value.clone()),
                )?;
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
    };
}

qat_conv!(
    /// A QAT 2-d convolution, `conv2d(x, fake_quant(W), b)`, followed by a ReLU when `RELU`
    /// ([`Conv2d`], [`ConvReLU2d`]). State-dict names: `weight`, `bias`, `weight_fake_quant.*`.
    QatConv2d, float::Conv2d, float::Conv2dConfig, QatConv2d, QatConvReLU2d, "qat::Conv2d", "qat::ConvReLU2d"
);
qat_conv!(
    /// A QAT 1-d convolution, `conv1d(x, fake_quant(W), b)` ([`Conv1d`]). State-dict names:
    /// `weight`, `bias`, `weight_fake_quant.*`.
    QatConv1d, float::Conv1d, float::Conv1dConfig, QatConv1d, QatConv1d, "qat::Conv1d", "qat::Conv1d"
);

/// PyTorch's `torch.ao.nn.qat.Conv2d`.
pub type Conv2d = QatConv2d<false>;
/// PyTorch's `torch.ao.nn.intrinsic.qat.ConvReLU2d`.
pub type ConvReLU2d = QatConv2d<true>;
/// PyTorch's `torch.ao.nn.qat.Conv1d`.
pub type Conv1d = QatConv1d<false>;

impl ConvReLU2d {
    /// `to_float()` as PyTorch returns it for this class: the fused float `nni.ConvReLU2d`.
    pub fn to_float_fused(&self) -> Result<fused::ConvReLU2d> {
        Ok(fused::ConvReLU2d::new(self.to_float()?, float::ReLU::new()))
    }

    /// From PyTorch's fused float `nni.ConvReLU2d`.
    pub fn from_fused(
        fused: &fused::ConvReLU2d,
        weight_fake_quant: &FakeQuantSpec,
    ) -> Result<Self> {
        Self::from_float(fused.conv(), weight_fake_quant)
    }
}
