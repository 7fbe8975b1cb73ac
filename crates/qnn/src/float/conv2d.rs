//! `nn.Conv2d` on NCHW input: im2col per image and group, then the float GEMM.

use qkernels::float::{MatMut, MatRef, Threads, sgemm};
use qtensor::Tensor;

use super::im2col::{Geom, col2im, im2col};
use super::util::{f32_grad, f32_input, same_shape, saved, tensor};
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

    fn validate(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(QnnError::InvalidConfig {
                module: NAME,
                reason,
            })
        };
        if self.groups == 0
            || !self.in_channels.is_multiple_of(self.groups)
            || !self.out_channels.is_multiple_of(self.groups)
        {
            return bad(format!(
                "in_channels {} and out_channels {} must be divisible by groups {}",
                self.in_channels, self.out_channels, self.groups
            ));
        }
        if self.kernel_size.contains(&0) || self.stride.contains(&0) || self.dilation.contains(&0) {
            return bad(format!(
                "kernel_size {:?}, stride {:?} and dilation {:?} must be positive",
                self.kernel_size, self.stride, self.dilation
            ));
        }
        Ok(())
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
    /// Weight, `[C_out, C_in / groups, kh, kw]`.
    pub weight: Param,
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
        same_shape(
            "Conv2d weight",
            &self.config.weight_shape(),
            self.weight.shape(),
        )?;
        if let Some(b) = &self.bias {
            same_shape("Conv2d bias", &[self.config.out_channels], b.shape())?;
        }
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
        let cfg = &self.config;
        let groups = cfg.groups;
        let (cin_g, cout_g) = (cfg.in_channels / groups, cfg.out_channels / groups);
        let k = cin_g * g.kh * g.kw;
        let ohw = g.oh * g.ow;
        let in_img = cfg.in_channels * g.h * g.w;
        let out_img = cfg.out_channels * ohw;
        let mut out = vec![0.0f32; n * out_img];
        let mut cols = vec![0.0f32; k * ohw];
        let wdata = self.weight.value.data();
        for b in 0..n {
            let ximg = &x.data()[b * in_img..(b + 1) * in_img];
            let yimg = &mut out[b * out_img..(b + 1) * out_img];
            if let Some(bias) = &self.bias {
                for (oc, plane) in yimg.chunks_exact_mut(ohw.max(1)).enumerate() {
                    plane.fill(bias.value.data()[oc]);
                }
            }
            let beta = if self.bias.is_some() { 1.0 } else { 0.0 };
            for grp in 0..groups {
                let xg = &ximg[grp * cin_g * g.h * g.w..(grp + 1) * cin_g * g.h * g.w];
                im2col(xg, cin_g, &g, &mut cols);
                let wg = &wdata[grp * cout_g * k..(grp + 1) * cout_g * k];
                let yg = &mut yimg[grp * cout_g * ohw..(grp + 1) * cout_g * ohw];
                sgemm(
                    1.0,
                    MatRef::row_major(wg, cout_g, k)?,
                    MatRef::row_major(&cols, k, ohw)?,
                    beta,
                    MatMut::row_major(yg, cout_g, ohw)?,
                    Threads::Single,
                )?;
            }
        }
        tensor(&self.out_shape(x.shape(), &g), out)
    }
}

impl Module for Conv2d {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Conv2d
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let x = f32_input(input, NAME)?;
        let y = self.apply(&x)?;
        self.input = Some(x);
        Ok(Value::F32(y))
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        let x = saved(&self.input, NAME)?;
        let (n, g) = self.input_geom(x.shape())?;
        let gy = f32_grad(grad_output, NAME, &self.out_shape(x.shape(), &g))?;
        let cfg = self.config;
        let groups = cfg.groups;
        let (cin_g, cout_g) = (cfg.in_channels / groups, cfg.out_channels / groups);
        let k = cin_g * g.kh * g.kw;
        let ohw = g.oh * g.ow;
        let plane_in = g.h * g.w;
        let in_img = cfg.in_channels * plane_in;
        let out_img = cfg.out_channels * ohw;
        let mut dx = vec![0.0f32; n * in_img];
        let mut cols = vec![0.0f32; k * ohw];
        let mut dcols = vec![0.0f32; k * ohw];
        for b in 0..n {
            let ximg = &x.data()[b * in_img..(b + 1) * in_img];
            let gimg = &gy.data()[b * out_img..(b + 1) * out_img];
            if let Some(bias) = &mut self.bias {
                for (d, plane) in bias
                    .grad
                    .data_mut()
                    .iter_mut()
                    .zip(gimg.chunks_exact(ohw.max(1)))
                {
                    *d += plane.iter().sum::<f32>();
                }
            }
            for grp in 0..groups {
                let xg = &ximg[grp * cin_g * plane_in..(grp + 1) * cin_g * plane_in];
                im2col(xg, cin_g, &g, &mut cols);
                let gg = MatRef::row_major(
                    &gimg[grp * cout_g * ohw..(grp + 1) * cout_g * ohw],
                    cout_g,
                    ohw,
                )?;
                // dW_g += dY_g colsᵀ
                let dw = &mut self.weight.grad.data_mut()[grp * cout_g * k..(grp + 1) * cout_g * k];
                sgemm(
                    1.0,
                    gg,
                    MatRef::row_major(&cols, k, ohw)?.t(),
                    1.0,
                    MatMut::row_major(dw, cout_g, k)?,
                    Threads::Single,
                )?;
                // dcols = W_gᵀ dY_g, then scatter back
                let wg = &self.weight.value.data()[grp * cout_g * k..(grp + 1) * cout_g * k];
                sgemm(
                    1.0,
                    MatRef::row_major(wg, cout_g, k)?.t(),
                    gg,
                    0.0,
                    MatMut::row_major(&mut dcols, k, ohw)?,
                    Threads::Single,
                )?;
                let dxg = &mut dx[b * in_img + grp * cin_g * plane_in
                    ..b * in_img + (grp + 1) * cin_g * plane_in];
                col2im(&dcols, cin_g, &g, dxg);
            }
        }
        Ok(Value::F32(tensor(x.shape(), dx)?))
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

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}
