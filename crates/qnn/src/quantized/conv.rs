//! Quantized convolutions `Conv1d`, `Conv2d`, `Conv3d` and the fused `ConvReLU1d/2d/3d`
//! (`torch.ao.nn.quantized.Conv*d`, `torch.ao.nn.intrinsic.quantized.ConvReLU*d`) on
//! [`qkernels::conv`]: weights packed once, fbgemm-exact requantization.
//!
//! Layouts: `Conv2d` takes a 4-d `(N, C, H, W)` quint8 input in either layout and returns a
//! channels-last output (no conversion between consecutive convolutions); `Conv1d` takes and
//! returns row-major `(N, C, L)`, `Conv3d` row-major `(N, C, D, H, W)` (converted to and from
//! channels-last around the kernel, as the tensor type has no 3-d/5-d channels-last layout).

use std::borrow::Cow;

use qkernels::conv::{self, ConvGeometry, PackedConvWeights};
use qkernels::eltwise::layout;
use qkernels::gemm::{Activation, Requantize, WeightQParams};
use qtensor::{Layout, QParams, QTensor, Tensor};

use super::common::{
    OutQ, QWeight, check_bias, nhwc_bytes, not_trainable, quint8_input, quint8_output,
    quint8_tensor,
};
use crate::error::{QnnError, Result};
use crate::float;
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef};
use crate::value::Value;

/// Stride, zero padding, dilation (one value per spatial dim) and groups of a quantized
/// convolution; the channel counts and kernel size come from the weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvOptions<const N: usize> {
    /// Stride per spatial dim.
    pub stride: [usize; N],
    /// Zero padding on both sides per spatial dim (filled with the input zero point).
    pub padding: [usize; N],
    /// Dilation per spatial dim.
    pub dilation: [usize; N],
    /// Groups.
    pub groups: usize,
}

impl<const N: usize> Default for ConvOptions<N> {
    /// Stride 1, no padding, dilation 1, one group (PyTorch's defaults).
    fn default() -> Self {
        Self {
            stride: [1; N],
            padding: [0; N],
            dilation: [1; N],
            groups: 1,
        }
    }
}

/// State and computation shared by every quantized convolution.
#[derive(Clone, Debug)]
struct ConvCore {
    name: &'static str,
    nd: usize,
    in_channels: usize,
    groups: usize,
    stride: Vec<usize>,
    padding: Vec<usize>,
    dilation: Vec<usize>,
    weight: QWeight,
    bias: Option<Tensor<f32>>,
    out: OutQ,
    activation: Activation,
    packed: PackedConvWeights,
    training: bool,
}

impl ConvCore {
    #[allow(clippy::too_many_arguments)]
    fn from_weights(
        name: &'static str,
        nd: usize,
        activation: Activation,
        weight: &Tensor<f32>,
        bias: Option<&Tensor<f32>>,
        stride: &[usize],
        padding: &[usize],
        dilation: &[usize],
        groups: usize,
        weight_qparams: &QParams,
        output_scale: f64,
        output_zero_point: i64,
    ) -> Result<Self> {
        let out = OutQ::new(name, output_scale, output_zero_point)?;
        let qweight = QWeight::quantize(name, weight, weight_qparams)?;
        let in_channels = weight.shape().get(1).copied().unwrap_or(0) * groups;
        let mut core = Self {
            name,
            nd,
            in_channels,
            groups,
            stride: stride.to_vec(),
            padding: padding.to_vec(),
            dilation: dilation.to_vec(),
            weight: qweight,
            bias: bias.cloned(),
            out,
            activation,
            packed: placeholder_pack()?,
            training: false,
        };
        core.check_and_pack()?;
        Ok(core)
    }

    /// Validates the weight shape, qparams and bias, and packs the weight.
    fn check_and_pack(&mut self) -> Result<()> {
        let ws = self.weight.weight.shape();
        if ws.len() != self.nd + 2 {
            return Err(QnnError::WrongRank {
                module: self.name,
                expected: match self.nd {
                    1 => "3-d [O, C/groups, k] weight",
                    2 => "4-d [O, C/groups, kh, kw] weight",
                    _ => "5-d [O, C/groups, kd, kh, kw] weight",
                },
                got: ws.to_vec(),
            });
        }
        self.in_channels = ws[1] * self.groups;
        self.weight.validate(self.name)?;
        check_bias(self.name, self.bias.as_ref(), ws[0])?;
        self.out.validate(self.name)?;
        let g = self.geometry(1, &self.template_input())?;
        let (scales, zps) = self.weight.kernel_qparams();
        let q = WeightQParams::from_slices(self.weight.is_per_channel(), &scales, &zps)?;
        self.packed = PackedConvWeights::pack_best(self.weight.weight.data(), &g, q)?;
        Ok(())
    }

    /// The smallest input the kernel fits (packing does not depend on the input size).
    fn template_input(&self) -> Vec<usize> {
        let k = &self.weight.weight.shape()[2..];
        (0..self.nd)
            .map(|d| self.dilation[d] * (k[d].max(1) - 1) + 1)
            .collect()
    }

    fn geometry(&self, batch: usize, input: &[usize]) -> Result<ConvGeometry> {
        let ws = self.weight.weight.shape();
        let g = ConvGeometry::new(batch, self.in_channels, ws[0], self.groups, input, &ws[2..])?
            .with_stride(&self.stride)?
            .with_padding(&self.padding)?
            .with_dilation(&self.dilation)?;
        g.output()?;
        Ok(g)
    }

    fn apply(&self, x: &QTensor) -> Result<QTensor> {
        self.apply_pooled(x, false)
    }

    /// Whether `next` is a max pool this 2-d convolution can fuse for input `x`: 2×2
    /// windows, stride 2, no padding or dilation, floor mode (or even output dims), a
    /// non-empty batch and an output of at least 2×2.
    fn fuses_pool(&self, x: &QTensor, next: &dyn Module) -> bool {
        let Some(pool) = next.downcast_ref::<super::MaxPool2d>() else {
            return false;
        };
        let s = x.shape();
        if self.nd != 2 || s.len() != 4 || s[0] == 0 || s[1] != self.in_channels {
            return false;
        }
        let Ok(Ok([_, oh, ow])) = self.geometry(s[0], &s[2..]).map(|g| g.output()) else {
            return false;
        };
        pool.options() == ([2, 2], [2, 2], [0, 0], [1, 1])
            && oh >= 2
            && ow >= 2
            && (!pool.ceil_mode() || (oh % 2 == 0 && ow % 2 == 0))
    }

    /// The convolution of `x`; with `pool` (2-d, checked by [`ConvCore::fuses_pool`]), its
    /// 2×2 stride-2 max pool.
    fn apply_pooled(&self, x: &QTensor, pool: bool) -> Result<QTensor> {
        let a = quint8_tensor(self.name, x)?;
        let s = a.shape().to_vec();
        if s.len() != self.nd + 2 {
            return Err(QnnError::WrongRank {
                module: self.name,
                expected: match self.nd {
                    1 => "3-d (N, C, L)",
                    2 => "4-d (N, C, H, W)",
                    _ => "5-d (N, C, D, H, W)",
                },
                got: s,
            });
        }
        if s[1] != self.in_channels {
            return Err(QnnError::ShapeMismatch {
                what: format!("{} input channels (dim 1) vs in_channels", self.name),
                expected: vec![self.in_channels],
                got: vec![s[1]],
            });
        }
        // The kernels need a positive batch; PyTorch answers an empty batch with an empty
        // output, so the rest of the geometry is validated with one image.
        let g = self.geometry(s[0].max(1), &s[2..])?;
        let mut od = g.output()?;
        if pool {
            od = [od[0], od[1] / 2, od[2] / 2];
        }
        let out_spatial = &od[3 - self.nd..];
        let o = self.weight.weight.shape()[0];
        if s[0] == 0 {
            let mut shape = vec![0, o];
            shape.extend_from_slice(out_spatial);
            let layout = if self.nd == 2 {
                Layout::ChannelsLast
            } else {
                Layout::RowMajor
            };
            return quint8_output(
                vec![],
                &shape,
                layout,
                self.out.scale(),
                self.out.zero_point(),
            );
        }
        let input: Cow<'_, [u8]> = if self.nd == 2 {
            nhwc_bytes(self.name, &a)?
        } else {
            let mut t = vec![0u8; a.data.len()];
            layout::nchw_to_nhwc(a.data, s[0], s[1], s[2..].iter().product(), &mut t)?;
            Cow::Owned(t)
        };
        let mut out = vec![0u8; s[0] * od.iter().product::<usize>() * o];
        let params = Requantize {
            act_scale: a.scale,
            out_scale: self.out.scale() as f32,
            out_zero_point: self.out.zero_point() as i32,
            bias: self.bias.as_ref().map(|b| b.data()),
            activation: self.activation,
        };
        if pool {
            conv::conv_u8s8_max_pool2(&g, &input, a.zero_point, &self.packed, params, &mut out)?;
        } else {
            conv::conv_u8s8(&g, &input, a.zero_point, &self.packed, params, &mut out)?;
        }
        let mut shape = vec![s[0], o];
        shape.extend_from_slice(out_spatial);
        let (scale, zp) = (self.out.scale(), self.out.zero_point());
        if self.nd == 2 {
            return quint8_output(out, &shape, Layout::ChannelsLast, scale, zp);
        }
        let mut nc = vec![0u8; out.len()];
        layout::nhwc_to_nchw(&out, s[0], o, out_spatial.iter().product(), &mut nc)?;
        quint8_output(nc, &shape, Layout::RowMajor, scale, zp)
    }

    fn visit(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        self.weight.visit(f);
        if let Some(b) = &self.bias {
            f("bias", BufferRef::F32(b));
        }
        self.out.visit(f);
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        self.weight.visit_mut(f);
        if let Some(b) = &mut self.bias {
            f("bias", BufferMut::F32(b));
        }
        self.out.visit_mut(f);
    }

    fn bytes(&self) -> usize {
        self.weight.bytes() + self.bias.as_ref().map_or(0, |b| 4 * b.numel()) + self.out.bytes()
    }
}

/// A 1×1 packing used only until the real one is built.
fn placeholder_pack() -> Result<PackedConvWeights> {
    let g = ConvGeometry::new(1, 1, 1, 1, &[1], &[1])?;
    Ok(PackedConvWeights::pack_best(
        &[0],
        &g,
        WeightQParams::PerTensor {
            scale: 1.0,
            zero_point: 0,
        },
    )?)
}

fn halved(name: &'static str) -> QnnError {
    QnnError::InvalidConfig {
        module: name,
        reason: "the float convolution is halved (f16 weights); convert an f32 layer".into(),
    }
}

macro_rules! quantized_conv {
    ($ty:ident, $name:literal, $kind:ident, $nd:literal, $act:expr, $doc:literal) => {
        #[doc = $doc]
        ///
        /// State-dict buffers: `weight` (i8, PyTorch's weight shape), `weight_scale`,
        /// `weight_zero_point`, `weight_axis` (-1 per-tensor, 0 per-channel), `bias` (f32, if
        /// any), `scale`, `zero_point`.
        #[derive(Clone, Debug)]
        pub struct $ty(ConvCore);

        impl $ty {
            /// Builds the layer from a float weight `[O, C/groups, k...]`, an optional bias
            /// `[O]`, the geometry, the weight qparams (per-tensor or per-channel along axis 0,
            /// qint8) and the output qparams; the weight is quantized as `from_float` does and
            /// packed once.
            pub fn from_weights(
                weight: &Tensor<f32>,
                bias: Option<&Tensor<f32>>,
                options: ConvOptions<$nd>,
                weight_qparams: &QParams,
                output_scale: f64,
                output_zero_point: i64,
            ) -> Result<Self> {
                ConvCore::from_weights(
                    $name,
                    $nd,
                    $act,
                    weight,
                    bias,
                    &options.stride,
                    &options.padding,
                    &options.dilation,
                    options.groups,
                    weight_qparams,
                    output_scale,
                    output_zero_point,
                )
                .map(Self)
            }

            /// Runs the layer on one quantized tensor (what `forward` does).
            pub fn apply(&self, x: &QTensor) -> Result<QTensor> {
                self.0.apply(x)
            }

            /// The quantized weight (qint8 with its per-tensor or per-channel qparams).
            pub fn weight(&self) -> Result<QTensor> {
                self.0.weight.to_qtensor()
            }

            /// The integer weight, PyTorch's weight shape.
            pub fn weight_int(&self) -> &Tensor<i8> {
                &self.0.weight.weight
            }

            /// The float bias, if any.
            pub fn bias(&self) -> Option<&Tensor<f32>> {
                self.0.bias.as_ref()
            }

            /// The output scale.
            pub fn scale(&self) -> f64 {
                self.0.out.scale()
            }

            /// The output zero point.
            pub fn zero_point(&self) -> i64 {
                self.0.out.zero_point()
            }

            /// Stride, padding, dilation and groups.
            pub fn options(&self) -> ConvOptions<$nd> {
                let mut o = ConvOptions::<$nd>::default();
                o.stride.copy_from_slice(&self.0.stride);
                o.padding.copy_from_slice(&self.0.padding);
                o.dilation.copy_from_slice(&self.0.dilation);
                o.groups = self.0.groups;
                o
            }

            /// Which kernel path runs (`"depthwise"`, `"small"`, `"row-run"` or `"gemm"`).
            pub fn kernel_path(&self) -> &'static str {
                self.0.packed.path()
            }
        }

        impl Module for $ty {
            fn kind(&self) -> ModuleKind {
                ModuleKind::$kind
            }

            fn extra_repr(&self) -> String {
                let c = &self.0;
                let shape = c.weight.weight.shape();
                crate::repr::ConvRepr {
                    in_channels: c.in_channels,
                    out_channels: shape.first().copied().unwrap_or(0),
                    kernel_size: shape.get(2..).unwrap_or(&[]),
                    stride: &c.stride,
                    padding: &c.padding,
                    dilation: &c.dilation,
                    groups: c.groups,
                    bias: c.bias.is_some(),
                    out_qparams: Some((c.out.scale(), c.out.zero_point())),
                    ..Default::default()
                }
                .render()
            }

            fn forward(&mut self, input: &Value) -> Result<Value> {
                let a = quint8_input($name, input)?;
                Ok(Value::Quantized(self.0.apply(a.q)?))
            }

            /// A 2×2 stride-2 max pool after a 2-d convolution runs fused
            /// ([`conv::conv_u8s8_max_pool2`]).
            fn forward_fused(
                &mut self,
                input: &Value,
                next: &mut dyn Module,
            ) -> Option<Result<Value>> {
                let Value::Quantized(x) = input else {
                    return None;
                };
                self.0
                    .fuses_pool(x, next)
                    .then(|| self.0.apply_pooled(x, true).map(Value::Quantized))
            }

            fn backward(&mut self, _grad_output: &Value) -> Result<Value> {
                not_trainable($name)
            }

            fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
                self.0.visit(f);
            }

            fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
                self.0.visit_mut(f);
            }

            fn after_load(&mut self) -> Result<()> {
                self.0.check_and_pack()
            }

            fn train(&mut self, mode: bool) {
                self.0.training = mode;
            }

            fn is_training(&self) -> bool {
                self.0.training
            }

            fn param_bytes(&self) -> usize {
                self.0.bytes()
            }
        }
    };
}

quantized_conv!(
    Conv1d,
    "QuantizedConv1d",
    QuantizedConv1d,
    1,
    Activation::None,
    "Quantized 1-d convolution (`torch.ao.nn.quantized.Conv1d`), bit-exact with fbgemm; row-major `(N, C, L)` in and out."
);
quantized_conv!(
    ConvReLU1d,
    "QuantizedConvReLU1d",
    QuantizedConvReLU1d,
    1,
    Activation::Relu,
    "Quantized 1-d convolution fused with ReLU (`torch.ao.nn.intrinsic.quantized.ConvReLU1d`)."
);
quantized_conv!(
    Conv2d,
    "QuantizedConv2d",
    QuantizedConv2d,
    2,
    Activation::None,
    "Quantized 2-d convolution (`torch.ao.nn.quantized.Conv2d`), bit-exact with fbgemm; `(N, C, H, W)` in either layout, channels-last out."
);
quantized_conv!(
    ConvReLU2d,
    "QuantizedConvReLU2d",
    QuantizedConvReLU2d,
    2,
    Activation::Relu,
    "Quantized 2-d convolution fused with ReLU (`torch.ao.nn.intrinsic.quantized.ConvReLU2d`)."
);
quantized_conv!(
    Conv3d,
    "QuantizedConv3d",
    QuantizedConv3d,
    3,
    Activation::None,
    "Quantized 3-d convolution (`torch.ao.nn.quantized.Conv3d`), bit-exact with fbgemm; row-major `(N, C, D, H, W)` in and out."
);
quantized_conv!(
    ConvReLU3d,
    "QuantizedConvReLU3d",
    QuantizedConvReLU3d,
    3,
    Activation::Relu,
    "Quantized 3-d convolution fused with ReLU (`torch.ao.nn.intrinsic.quantized.ConvReLU3d`)."
);

macro_rules! from_float_2d {
    ($($ty:ident),*) => {$(
        impl $ty {
            /// Converts a float `Conv2d` as PyTorch's `from_float` does (for the fused module,
            /// the inner convolution, BN already folded by the caller).
            pub fn from_float(
                float: &float::Conv2d,
                weight_qparams: &QParams,
                output_scale: f64,
                output_zero_point: i64,
            ) -> Result<Self> {
                if float.weight_f16().is_some() {
                    return Err(halved(stringify!($ty)));
                }
                let c = float.config();
                let options = ConvOptions {
                    stride: c.stride,
                    padding: c.padding,
                    dilation: c.dilation,
                    groups: c.groups,
                };
                Self::from_weights(&float.weight.value, float.bias.as_ref().map(|b| &b.value), options, weight_qparams, output_scale, output_zero_point)
            }
        }
    )*};
}
from_float_2d!(Conv2d, ConvReLU2d);

macro_rules! from_float_1d {
    ($($ty:ident),*) => {$(
        impl $ty {
            /// Converts a float `Conv1d` as PyTorch's `from_float` does (for the fused module,
            /// the inner convolution, BN already folded by the caller).
            pub fn from_float(
                float: &float::Conv1d,
                weight_qparams: &QParams,
                output_scale: f64,
                output_zero_point: i64,
            ) -> Result<Self> {
                if float.weight_f16().is_some() {
                    return Err(halved(stringify!($ty)));
                }
                let c = float.config();
                let options = ConvOptions {
                    stride: [c.stride],
                    padding: [c.padding],
                    dilation: [c.dilation],
                    groups: c.groups,
                };
                Self::from_weights(&float.weight.value, float.bias.as_ref().map(|b| &b.value), options, weight_qparams, output_scale, output_zero_point)
            }
        }
    )*};
}
from_float_1d!(Conv1d, ConvReLU1d);
