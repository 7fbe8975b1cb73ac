//! `nn.Conv1d` on `(N, C, L)` input, computed as a 2-d convolution over a `1 x L` plane.

use qtensor::Tensor;

use half::f16;

use super::conv_core::{Channels, conv_backward, conv_forward};
use super::conv_layer::{check_weight_and_bias, layer_backward, stored_weight};
use super::conv2d::Conv2dConfig;
use super::half_weight::{
    backward_on_half, halve_weight, visit_weight_and_bias, visit_weight_and_bias_mut,
    weight_and_bias_bytes,
};
use super::im2col::Geom;
use super::util::{f32_grad, f32_input, saved, tensor};
use crate::error::{QnnError, Result};
use crate::init::{Rng, default_weight_and_bias};
use crate::module::{Module, ModuleKind};
use crate::param::Param;
use crate::value::Value;

const NAME: &str = "Conv1d";

/// Hyper-parameters of a [`Conv1d`] (PyTorch's constructor arguments; zero padding only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv1dConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel length.
    pub kernel_size: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub padding: usize,
    /// Dilation.
    pub dilation: usize,
    /// Groups.
    pub groups: usize,
    /// Whether the layer has a bias.
    pub bias: bool,
}

impl Conv1dConfig {
    /// Stride 1, no padding, dilation 1, one group, with bias (PyTorch's defaults).
    pub fn new(in_channels: usize, out_channels: usize, kernel_size: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel_size,
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 1,
            bias: true,
        }
    }

    /// The weight shape `[out, in / groups, k]`.
    pub fn weight_shape(&self) -> [usize; 3] {
        [
            self.out_channels,
            self.in_channels / self.groups.max(1),
            self.kernel_size,
        ]
    }

    /// The equivalent 2-d configuration over a `1 x L` plane.
    fn as_2d(&self) -> Conv2dConfig {
        Conv2dConfig {
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            kernel_size: [1, self.kernel_size],
            stride: [1, self.stride],
            padding: [0, self.padding],
            dilation: [1, self.dilation],
            groups: self.groups,
            bias: self.bias,
        }
    }
}

/// 1-d convolution over `(N, C_in, L)` (or unbatched `(C_in, L)`) input, weight
/// `[C_out, C_in / groups, k]`, optional bias `[C_out]`.
#[derive(Clone, Debug)]
pub struct Conv1d {
    config: Conv1dConfig,
    /// Weight, `[C_out, C_in / groups, k]` (empty once halved by `half()`).
    pub weight: Param,
    weight_f16: Option<Tensor<f16>>,
    /// Bias, `[C_out]`, if any.
    pub bias: Option<Param>,
    input: Option<Tensor<f32>>,
    training: bool,
}

impl Conv1d {
    /// A layer with PyTorch's default initialization drawn from `rng`.
    pub fn new(config: Conv1dConfig, rng: &mut Rng) -> Result<Self> {
        config.as_2d().validate()?;
        let (w, b) = default_weight_and_bias(
            &config.weight_shape(),
            config.bias.then_some(config.out_channels),
            rng,
        );
        Ok(Self {
            config,
            weight: Param::new(w),
            bias: b.map(Param::new),
            weight_f16: None,
            input: None,
            training: true,
        })
    }

    /// A layer with the given weight and bias; `config.bias` is set from `bias.is_some()`.
    pub fn from_tensors(
        mut config: Conv1dConfig,
        weight: Tensor<f32>,
        bias: Option<Tensor<f32>>,
    ) -> Result<Self> {
        config.bias = bias.is_some();
        config.as_2d().validate()?;
        let layer = Self {
            config,
            weight: Param::new(weight),
            bias: bias.map(Param::new),
            weight_f16: None,
            input: None,
            training: true,
        };
        layer.check_params()?;
        Ok(layer)
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &Conv1dConfig {
        &self.config
    }

    /// Re-checks the parameter shapes (the fields are public and may have been replaced).
    fn check_params(&self) -> Result<()> {
        check_weight_and_bias(
            NAME,
            &self.config.weight_shape(),
            self.config.out_channels,
            &self.weight,
            self.weight_f16.as_ref(),
            self.bias.as_ref(),
        )
    }

    fn input_geom(&self, shape: &[usize]) -> Result<(usize, Geom)> {
        self.check_params()?;
        let (n, c, l) = match *shape {
            [n, c, l] => (n, c, l),
            [c, l] => (1, c, l),
            _ => {
                return Err(QnnError::WrongRank {
                    module: NAME,
                    expected: "2-d (C, L) or 3-d (N, C, L)",
                    got: shape.to_vec(),
                });
            }
        };
        if c != self.config.in_channels {
            return Err(QnnError::ShapeMismatch {
                what: "Conv1d input channels vs in_channels".into(),
                expected: vec![self.config.in_channels],
                got: vec![c],
            });
        }
        Ok((n, self.config.as_2d().geom(1, l)?))
    }

    fn out_shape(&self, in_shape: &[usize], g: &Geom) -> Vec<usize> {
        let mut s = in_shape.to_vec();
        let nd = s.len();
        s[nd - 2] = self.config.out_channels;
        s[nd - 1] = g.ow;
        s
    }

    /// The f16 weight once the layer is halved.
    pub fn weight_f16(&self) -> Option<&Tensor<f16>> {
        self.weight_f16.as_ref()
    }

    fn channels(&self) -> Channels {
        Channels {
            cin: self.config.in_channels,
            cout: self.config.out_channels,
            groups: self.config.groups,
        }
    }

    /// The forward computation on a tensor, without saving anything for backward.
    pub fn apply(&self, x: &Tensor<f32>) -> Result<Tensor<f32>> {
        let (n, g) = self.input_geom(x.shape())?;
        let bias = self.bias.as_ref().map(|b| b.value.data());
        let out = conv_forward(
            self.channels(),
            &g,
            n,
            x.data(),
            stored_weight(&self.weight, self.weight_f16.as_ref()),
            bias,
        )?;
        tensor(&self.out_shape(x.shape(), &g), out)
    }
}

impl Module for Conv1d {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Conv1d
    }

    fn extra_repr(&self) -> String {
        let c = &self.config;
        crate::repr::ConvRepr {
            in_channels: c.in_channels,
            out_channels: c.out_channels,
            kernel_size: &[c.kernel_size],
            stride: &[c.stride],
            padding: &[c.padding],
            dilation: &[c.dilation],
            groups: c.groups,
            bias: self.bias.is_some(),
            ..Default::default()
        }
        .render()
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
        let x = saved(&self.input, NAME)?;
        let (n, g) = self.input_geom(x.shape())?;
        let gy = f32_grad(grad_output, NAME, &self.out_shape(x.shape(), &g))?;
        layer_backward(
            conv_backward,
            self.channels(),
            &g,
            n,
            x,
            &gy,
            &mut self.weight,
            self.bias.as_mut(),
        )
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
