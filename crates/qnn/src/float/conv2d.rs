//! `nn.Conv2d` on NCHW input, on the convolution arithmetic of `conv_core` (direct kernels or
//! im2col + the float GEMM).

use qtensor::Tensor;

use half::f16;

use super::conv_core::{Channels, conv_backward, conv_forward};
use super::conv_layer::{
    check_weight_and_bias, layer_backward, stored_weight, validate_channels_and_window,
};
use super::half_weight::{
    backward_on_half, halve_weight, visit_weight_and_bias, visit_weight_and_bias_mut,
    weight_and_bias_bytes,
};
use super::im2col::Geom;
use super::util::{f32_grad, f32_input_ref, same_shape, save_input, saved, tensor};
use crate::error::{QnnError, Result};
use crate::init::{Rng, default_weight_and_bias};
use crate::module::{Module, ModuleKind};
use crate::param::Param;
use crate::value::Value;

const NAME: &str = "Conv2d";

/// Hyper-parameters of a [`Conv2d`] (PyTorch's constructor arguments; zero padding only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel `[height, width]`.
    pub kernel_size: [usize; 2],
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// Zero padding `[height, width]` on each side.
    pub padding: [usize; 2],
    /// Dilation `[height, width]`.
    pub dilation: [usize; 2],
    /// Groups: input and output channels are split into this many independent convolutions.
    pub groups: usize,
    /// Whether the layer has a bias.
    pub bias: bool,
}

impl Conv2dConfig {
    /// Square kernel, stride 1, no padding, dilation 1, one group, with bias (PyTorch's defaults).
    pub fn new(in_channels: usize, out_channels: usize, kernel_size: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel_size: [kernel_size; 2],
            stride: [1; 2],
            padding: [0; 2],
            dilation: [1; 2],
            groups: 1,
            bias: true,
        }
    }

    /// Sets the stride on both axes.
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = [s; 2];
        self
    }

    /// Sets the padding on both axes.
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = [p; 2];
        self
    }

    /// Sets the dilation on both axes.
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = [d; 2];
        self
    }

    /// Sets the number of groups.
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }

    /// Sets whether the layer has a bias.
    pub fn bias(mut self, b: bool) -> Self {
        self.bias = b;
        self
    }

    /// The weight shape `[out, in / groups, kh, kw]`.
    pub fn weight_shape(&self) -> [usize; 4] {
        [
            self.out_channels,
            self.in_channels / self.groups.max(1),
            self.kernel_size[0],
            self.kernel_size[1],
        ]
    }

    pub(crate) fn validate(&self) -> Result<()> {
        validate_channels_and_window(
            NAME,
            [self.in_channels, self.out_channels, self.groups],
            &self.kernel_size,
            &self.stride,
            &self.dilation,
        )
    }

    /// Output geometry for an `h x w` input, or an error if the (dilated) kernel does not fit.
    pub(crate) fn geom(&self, h: usize, w: usize) -> Result<Geom> {
        let out = |n: usize, k: usize, s: usize, p: usize, d: usize| -> Option<usize> {
            let span = d * (k - 1) + 1;
            (n + 2 * p).checked_sub(span).map(|r| r / s + 1)
        };
        let [kh, kw] = self.kernel_size;
        let [sh, sw] = self.stride;
        let [ph, pw] = self.padding;
        let [dh, dw] = self.dilation;
        match (out(h, kh, sh, ph, dh), out(w, kw, sw, pw, dw)) {
            (Some(oh), Some(ow)) => Ok(Geom {
                h,
                w,
                kh,
                kw,
                sh,
                sw,
                ph,
                pw,
                dh,
                dw,
                oh,
                ow,
            }),
            _ => Err(QnnError::InvalidConfig {
                module: NAME,
                reason: format!(
                    "input {h}x{w} with padding {:?} is smaller than the dilated kernel {:?} (dilation {:?})",
                    self.padding, self.kernel_size, self.dilation
                ),
            }),
        }
    }
}

/// 2-d convolution over NCHW input `[N, C_in, H, W]` (or unbatched `[C_in, H, W]`), weight
/// `[C_out, C_in / groups, kh, kw]`, optional bias `[C_out]`.
#[derive(Clone, Debug)]
pub struct Conv2d {
    config: Conv2dConfig,
    /// Weight, `[C_out, C_in / groups, kh, kw]` (empty once halved by `half()`).
    pub weight: Param,
    weight_f16: Option<Tensor<f16>>,
    /// Bias, `[C_out]`, if any.
    pub bias: Option<Param>,
    input: Option<Tensor<f32>>,
    training: bool,
}

impl Conv2d {
    /// A layer with PyTorch's default initialization drawn from `rng`.
    pub fn new(config: Conv2dConfig, rng: &mut Rng) -> Result<Self> {
        config.validate()?;
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
        mut config: Conv2dConfig,
        weight: Tensor<f32>,
        bias: Option<Tensor<f32>>,
    ) -> Result<Self> {
        config.bias = bias.is_some();
        config.validate()?;
        same_shape("Conv2d weight", &config.weight_shape(), weight.shape())?;
        if let Some(b) = &bias {
            same_shape("Conv2d bias", &[config.out_channels], b.shape())?;
        }
        Ok(Self {
            config,
            weight: Param::new(weight),
            bias: bias.map(Param::new),
            weight_f16: None,
            input: None,
            training: true,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &Conv2dConfig {
        &self.config
    }

    /// `(n, geometry)` of a 4-d (or 3-d unbatched) input, checked against the config; also
    /// re-checks the parameter shapes (the fields are public and may have been replaced).
    fn input_geom(&self, shape: &[usize]) -> Result<(usize, Geom)> {
        self.check_params()?;
        let (n, c, h, w) = match *shape {
            [n, c, h, w] => (n, c, h, w),
            [c, h, w] => (1, c, h, w),
            _ => {
                return Err(QnnError::WrongRank {
                    module: NAME,
                    expected: "3-d (C, H, W) or 4-d (N, C, H, W)",
                    got: shape.to_vec(),
                });
            }
        };
        if c != self.config.in_channels {
            return Err(QnnError::ShapeMismatch {
                what: "Conv2d input channels (dim 1) vs in_channels".into(),
                expected: vec![self.config.in_channels],
                got: vec![c],
            });
        }
        Ok((n, self.config.geom(h, w)?))
    }

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

    fn out_shape(&self, in_shape: &[usize], g: &Geom) -> Vec<usize> {
        let mut s = in_shape.to_vec();
        let nd = s.len();
        s[nd - 3] = self.config.out_channels;
        s[nd - 2] = g.oh;
        s[nd - 1] = g.ow;
        s
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
}

impl Module for Conv2d {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Conv2d
    }

    fn extra_repr(&self) -> String {
        let c = &self.config;
        crate::repr::ConvRepr {
            in_channels: c.in_channels,
            out_channels: c.out_channels,
            kernel_size: &c.kernel_size,
            stride: &c.stride,
            padding: &c.padding,
            dilation: &c.dilation,
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
        let x = f32_input_ref(input, NAME)?;
        let y = self.apply(&x)?;
        save_input(&mut self.input, x);
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
