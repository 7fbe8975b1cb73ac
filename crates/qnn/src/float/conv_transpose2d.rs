//! `nn.ConvTranspose2d` on NCHW input: the adjoint of a convolution (col2im of Wᵀ x).

use half::f16;
use qtensor::Tensor;

use super::conv_core::{Channels, conv_transpose_backward, conv_transpose_forward};
use super::conv_layer::{check_weight_and_bias, layer_backward, validate_channels_and_window};
use super::half_weight::{
    backward_on_half, f32_weight, halve_weight, visit_weight_and_bias, visit_weight_and_bias_mut,
    weight_and_bias_bytes,
};
use super::im2col::Geom;
use super::util::{f32_grad, f32_input, saved, tensor};
use crate::error::{QnnError, Result};
use crate::init::{Rng, default_weight_and_bias};
use crate::module::{Module, ModuleKind};
use crate::param::Param;
use crate::value::Value;

const NAME: &str = "ConvTranspose2d";

/// Hyper-parameters of a [`ConvTranspose2d`] (PyTorch's constructor arguments; zero padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel `[height, width]`.
    pub kernel_size: [usize; 2],
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// Implicit zero padding removed from each side of the output, `[height, width]`.
    pub padding: [usize; 2],
    /// Extra rows/columns added to one side of the output, `[height, width]`.
    pub output_padding: [usize; 2],
    /// Dilation `[height, width]`.
    pub dilation: [usize; 2],
    /// Groups.
    pub groups: usize,
    /// Whether the layer has a bias.
    pub bias: bool,
}

impl ConvTranspose2dConfig {
    /// Square kernel, stride 1, no padding, dilation 1, one group, with bias (PyTorch's defaults).
    pub fn new(in_channels: usize, out_channels: usize, kernel_size: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel_size: [kernel_size; 2],
            stride: [1; 2],
            padding: [0; 2],
            output_padding: [0; 2],
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

    /// Sets the output padding on both axes.
    pub fn output_padding(mut self, p: usize) -> Self {
        self.output_padding = [p; 2];
        self
    }

    /// The weight shape `[in, out / groups, kh, kw]` (PyTorch's layout).
    pub fn weight_shape(&self) -> [usize; 4] {
        [
            self.in_channels,
            self.out_channels / self.groups.max(1),
            self.kernel_size[0],
            self.kernel_size[1],
        ]
    }

    fn validate(&self) -> Result<()> {
        validate_channels_and_window(
            NAME,
            [self.in_channels, self.out_channels, self.groups],
            &self.kernel_size,
            &self.stride,
            &self.dilation,
        )?;
        for a in 0..2 {
            if self.output_padding[a] >= self.stride[a]
                && self.output_padding[a] >= self.dilation[a]
            {
                return Err(QnnError::InvalidConfig {
                    module: NAME,
                    reason: format!(
                        "output_padding {:?} must be smaller than either stride {:?} or dilation {:?}",
                        self.output_padding, self.stride, self.dilation
                    ),
                });
            }
        }
        Ok(())
    }

    /// Geometry of the adjoint convolution: its input plane is this layer's `oh x ow` output,
    /// its output plane is this layer's `h x w` input.
    fn geom(&self, h: usize, w: usize) -> Result<Geom> {
        let out = |n: usize, a: usize| -> Option<usize> {
            ((n.checked_sub(1)?) * self.stride[a]
                + self.dilation[a] * (self.kernel_size[a] - 1)
                + self.output_padding[a]
                + 1)
            .checked_sub(2 * self.padding[a])
            .filter(|&o| o > 0)
        };
        match (out(h, 0), out(w, 1)) {
            (Some(oh), Some(ow)) => Ok(Geom {
                h: oh,
                w: ow,
                kh: self.kernel_size[0],
                kw: self.kernel_size[1],
                sh: self.stride[0],
                sw: self.stride[1],
                ph: self.padding[0],
                pw: self.padding[1],
                dh: self.dilation[0],
                dw: self.dilation[1],
                oh: h,
                ow: w,
            }),
            _ => Err(QnnError::InvalidConfig {
                module: NAME,
                reason: format!(
                    "input {h}x{w} gives an empty output with padding {:?}",
                    self.padding
                ),
            }),
        }
    }
}

/// Transposed 2-d convolution over `(N, C_in, H, W)` (or unbatched) input, weight
/// `[C_in, C_out / groups, kh, kw]`, output `H_out = (H - 1) s - 2 p + d (k - 1) + output_padding + 1`.
#[derive(Clone, Debug)]
pub struct ConvTranspose2d {
    config: ConvTranspose2dConfig,
    /// Weight, `[C_in, C_out / groups, kh, kw]` (an empty placeholder after `half()`).
    pub weight: Param,
    /// Bias, `[C_out]`, if any.
    pub bias: Option<Param>,
    weight_f16: Option<Tensor<f16>>,
    input: Option<Tensor<f32>>,
    training: bool,
}

impl ConvTranspose2d {
    /// A layer with PyTorch's default initialization drawn from `rng`.
    pub fn new(config: ConvTranspose2dConfig, rng: &mut Rng) -> Result<Self> {
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
        mut config: ConvTranspose2dConfig,
        weight: Tensor<f32>,
        bias: Option<Tensor<f32>>,
    ) -> Result<Self> {
        config.bias = bias.is_some();
        config.validate()?;
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
    pub fn config(&self) -> &ConvTranspose2dConfig {
        &self.config
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
                what: "ConvTranspose2d input channels vs in_channels".into(),
                expected: vec![self.config.in_channels],
                got: vec![c],
            });
        }
        Ok((n, self.config.geom(h, w)?))
    }

    fn out_shape(&self, in_shape: &[usize], g: &Geom) -> Vec<usize> {
        let mut s = in_shape.to_vec();
        let nd = s.len();
        s[nd - 3] = self.config.out_channels;
        s[nd - 2] = g.h;
        s[nd - 1] = g.w;
        s
    }

    /// The adjoint convolution maps this layer's output channels to its input channels.
    fn channels(&self) -> Channels {
        Channels {
            cin: self.config.out_channels,
            cout: self.config.in_channels,
            groups: self.config.groups,
        }
    }

    /// The forward computation on a tensor, without saving anything for backward.
    pub fn apply(&self, x: &Tensor<f32>) -> Result<Tensor<f32>> {
        let (n, g) = self.input_geom(x.shape())?;
        let bias = self.bias.as_ref().map(|b| b.value.data());
        let weight = f32_weight(&self.weight, self.weight_f16.as_ref());
        let out = conv_transpose_forward(self.channels(), &g, n, x.data(), &weight, bias)?;
        tensor(&self.out_shape(x.shape(), &g), out)
    }
}

impl Module for ConvTranspose2d {
    fn kind(&self) -> ModuleKind {
        ModuleKind::ConvTranspose2d
    }

    fn param_dtype(&self, name: &str) -> Option<crate::repr::TensorDType> {
        (name == "weight" && self.weight_f16.is_some()).then_some(crate::repr::TensorDType::F16)
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
            output_padding: &c.output_padding,
            groups: c.groups,
            bias: self.bias.is_some(),
            ..Default::default()
        }
        .render()
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
            conv_transpose_backward,
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

    /// Moves the weight to f16 (bias stays f32); inference-only after.
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
