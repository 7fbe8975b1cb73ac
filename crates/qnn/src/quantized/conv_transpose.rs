//! Quantized ConvTranspose2d: PyTorch's `quantized::conv_transpose2d` (fbgemm engine) with a
//! per-tensor qint8 weight, on [`qkernels::conv::transpose`] (int8 GEMM to exact i32 sums,
//! col2im, fbgemm's requantization); bit-exact with torch 2.15 goldens
//! (`tests/quantized_conv_transpose.rs`).
//!
//! Reads either input layout and writes channels-last (as PyTorch's fbgemm convolutions do).
//! Per-channel weights are rejected, as `nnq.ConvTranspose2d.from_float` rejects them.

use qkernels::conv::transpose::{self, PackedTransposeWeights, TransposeGeometry};
use qkernels::gemm::{Activation, Requantize};
use qtensor::{Layout, QParams, QTensor, Tensor};

use super::common::{OutQ, QWeight, check_bias, nhwc_bytes, quint8_input, quint8_output};
use crate::error::{QnnError, Result};
use crate::float::{self, ConvTranspose2dConfig};
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef};
use crate::value::Value;

const NAME: &str = "quantized::ConvTranspose2d";

/// `torch.ao.nn.quantized.ConvTranspose2d`: a transposed 2-d convolution of a quint8
/// `(N, C_in, H, W)` input by a per-tensor qint8 weight `[C_in, C_out / groups, kh, kw]` with a
/// float bias, requantized to quint8 with the output qparams; the weights are packed once (at
/// construction and after loading).
#[derive(Clone, Debug)]
pub struct ConvTranspose2d {
    config: ConvTranspose2dConfig,
    weight: QWeight,
    bias: Option<Tensor<f32>>,
    out: OutQ,
    packed: Option<PackedTransposeWeights>,
    training: bool,
}

impl ConvTranspose2d {
    /// Quantizes a float weight (`[C_in, C_out / groups, kh, kw]`) with per-tensor qint8
    /// `weight_qparams`, as `from_float` does, and keeps the float bias.
    ///
    /// Errors: per-channel or float qparams, a weight or bias of the wrong shape, an invalid
    /// configuration, invalid output qparams.
    pub fn from_weights(
        config: ConvTranspose2dConfig,
        weight: &Tensor<f32>,
        bias: Option<&Tensor<f32>>,
        weight_qparams: &QParams,
        output_scale: f64,
        output_zero_point: i64,
    ) -> Result<Self> {
        if !matches!(weight_qparams, QParams::PerTensor { .. }) {
            return Err(QnnError::InvalidQParams {
                module: NAME,
                reason: "the weight must be quantized per tensor (PyTorch rejects per-channel \
                         weight observers for ConvTranspose)"
                    .into(),
            });
        }
        let expected = config.weight_shape();
        if weight.shape() != expected {
            return Err(QnnError::ShapeMismatch {
                what: format!("{NAME} weight"),
                expected: expected.to_vec(),
                got: weight.shape().to_vec(),
            });
        }
        let mut m = Self {
            config: ConvTranspose2dConfig {
                bias: bias.is_some(),
                ..config
            },
            weight: QWeight::quantize(NAME, weight, weight_qparams)?,
            bias: bias.cloned(),
            out: OutQ::new(NAME, output_scale, output_zero_point)?,
            packed: None,
            training: false,
        };
        m.check_and_pack()?;
        Ok(m)
    }

    /// `nnq.ConvTranspose2d.from_float`: the float layer's configuration, weight (quantized
    /// with the observed per-tensor `weight_qparams`) and bias, with the observed output
    /// qparams.
    pub fn from_float(
        float: &float::ConvTranspose2d,
        weight_qparams: &QParams,
        output_scale: f64,
        output_zero_point: i64,
    ) -> Result<Self> {
        Self::from_weights(
            *float.config(),
            &float.weight.value,
            float.bias.as_ref().map(|b| &b.value),
            weight_qparams,
            output_scale,
            output_zero_point,
        )
    }

    /// The layer's hyper-parameters.
    pub fn config(&self) -> &ConvTranspose2dConfig {
        &self.config
    }

    /// The quantized weight (qint8, per-tensor qparams).
    pub fn weight(&self) -> Result<QTensor> {
        self.weight.to_qtensor()
    }

    /// The float bias.
    pub fn bias(&self) -> Option<&Tensor<f32>> {
        self.bias.as_ref()
    }

    /// Output scale.
    pub fn output_scale(&self) -> f64 {
        self.out.scale()
    }

    /// Output zero point.
    pub fn output_zero_point(&self) -> i64 {
        self.out.zero_point()
    }

    /// A geometry for an `h × w` input of `batch` images.
    fn geometry(&self, batch: usize, h: usize, w: usize) -> TransposeGeometry {
        let c = &self.config;
        TransposeGeometry::new(
            batch,
            c.in_channels,
            c.out_channels,
            c.groups,
            [h, w],
            c.kernel_size,
        )
        .with_stride(c.stride)
        .with_padding(c.padding)
        .with_output_padding(c.output_padding)
        .with_dilation(c.dilation)
    }

    /// Validates the (possibly loaded) state and packs the weight for this CPU.
    fn check_and_pack(&mut self) -> Result<()> {
        self.packed = None;
        self.weight.validate(NAME)?;
        if self.weight.is_per_channel() {
            return Err(QnnError::InvalidQParams {
                module: NAME,
                reason: "weight_axis must be -1 (per-tensor)".into(),
            });
        }
        if self.weight.weight.shape() != self.config.weight_shape() {
            return Err(QnnError::ShapeMismatch {
                what: format!("{NAME} weight"),
                expected: self.config.weight_shape().to_vec(),
                got: self.weight.weight.shape().to_vec(),
            });
        }
        check_bias(NAME, self.bias.as_ref(), self.config.out_channels)?;
        self.out.validate(NAME)?;
        let (scales, zps) = self.weight.kernel_qparams();
        let g = self.geometry(1, 1, 1);
        self.packed = Some(PackedTransposeWeights::pack_best(
            self.weight.weight.data(),
            &g,
            scales[0],
            zps[0],
        )?);
        Ok(())
    }
}

impl Module for ConvTranspose2d {
    fn kind(&self) -> ModuleKind {
        ModuleKind::QuantizedConvTranspose2d
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
            out_qparams: Some((self.out.scale(), self.out.zero_point())),
        }
        .render()
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let a = quint8_input(NAME, input)?;
        let x = nhwc_bytes(NAME, &a)?;
        let &[n, c, h, w] = a.shape() else {
            unreachable!("nhwc_bytes checked the rank");
        };
        if c != self.config.in_channels {
            return Err(QnnError::ShapeMismatch {
                what: format!("{NAME} input channels vs in_channels"),
                expected: vec![self.config.in_channels],
                got: vec![c],
            });
        }
        let packed = self.packed.as_ref().ok_or(QnnError::InvalidConfig {
            module: NAME,
            reason: "weights are not packed (a failed load?)".into(),
        })?;
        let g = self.geometry(n, h, w);
        let [oh, ow] = g.output()?;
        let mut out = vec![0u8; g.output_len()?];
        let params = Requantize {
            act_scale: a.scale,
            out_scale: self.out.scale() as f32,
            out_zero_point: self.out.zero_point() as i32,
            bias: self.bias.as_ref().map(Tensor::data),
            activation: Activation::None,
        };
        transpose::conv_transpose_u8s8(&g, &x, a.zero_point, packed, params, &mut out)?;
        let shape = [n, self.config.out_channels, oh, ow];
        Ok(Value::Quantized(quint8_output(
            out,
            &shape,
            Layout::ChannelsLast,
            self.out.scale(),
            self.out.zero_point(),
        )?))
    }

    fn backward(&mut self, _grad_output: &Value) -> Result<Value> {
        Err(QnnError::NotTrainable { module: NAME })
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        self.weight.visit(f);
        if let Some(b) = &self.bias {
            f("bias", BufferRef::F32(b));
        }
        self.out.visit(f);
    }

    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        self.weight.visit_mut(f);
        if let Some(b) = &mut self.bias {
            f("bias", BufferMut::F32(b));
        }
        self.out.visit_mut(f);
    }

    fn after_load(&mut self) -> Result<()> {
        self.check_and_pack()
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn param_bytes(&self) -> usize {
        self.weight.bytes() + self.bias.as_ref().map_or(0, |b| 4 * b.numel()) + self.out.bytes()
    }
}
