//! Quantized `Linear` and `LinearReLU` (`torch.ao.nn.quantized.Linear`,
//! `torch.ao.nn.intrinsic.quantized.LinearReLU`): quint8 input × qint8 weight packed once,
//! fbgemm-exact requantization to the module's output qparams.

use qkernels::gemm::{self, Activation, Activations, Requantize, VecOutput, WeightQParams};
use qtensor::{Layout, QParams, QTensor, Tensor};

use super::common::{
    OutQ, QWeight, check_bias, not_trainable, quint8_input, quint8_output, quint8_tensor,
    row_major_bytes,
};
use super::requant_cache::RequantCache;
use crate::error::{QnnError, Result};
use crate::float;
use crate::int8_panels::Int8Panels;
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef};
use crate::value::Value;

/// The state and computation shared by [`Linear`] and [`LinearReLU`].
#[derive(Clone, Debug)]
struct LinearCore {
    name: &'static str,
    weight: QWeight,
    bias: Option<Tensor<f32>>,
    out: OutQ,
    activation: Activation,
    packed: Int8Panels,
    /// The requantization prepared for the last activation qparams seen.
    requant: RequantCache,
    training: bool,
}

impl LinearCore {
    fn from_weights(
        name: &'static str,
        activation: Activation,
        weight: &Tensor<f32>,
        bias: Option<&Tensor<f32>>,
        weight_qparams: &QParams,
        output_scale: f64,
        output_zero_point: i64,
    ) -> Result<Self> {
        if weight.ndim() != 2 {
            return Err(QnnError::WrongRank {
                module: name,
                expected: "2-d [out_features, in_features] weight",
                got: weight.shape().to_vec(),
            });
        }
        check_bias(name, bias, weight.shape()[0])?;
        let out = OutQ::new(name, output_scale, output_zero_point)?;
        let weight = QWeight::quantize(name, weight, weight_qparams)?;
        let packed = pack(name, &weight)?;
        Ok(Self {
            name,
            weight,
            bias: bias.cloned(),
            out,
            activation,
            packed,
            requant: RequantCache::default(),
            training: false,
        })
    }

    fn from_float(
        name: &'static str,
        activation: Activation,
        f: &float::Linear,
        weight_qparams: &QParams,
        output_scale: f64,
        output_zero_point: i64,
    ) -> Result<Self> {
        if f.weight_f16().is_some() {
            return Err(QnnError::InvalidConfig {
                module: name,
                reason: "the float Linear is halved (f16 weights); convert an f32 layer".into(),
            });
        }
        Self::from_weights(
            name,
            activation,
            &f.weight.value,
            f.bias.as_ref().map(|b| &b.value),
            weight_qparams,
            output_scale,
            output_zero_point,
        )
    }

    fn apply(&self, x: &QTensor) -> Result<QTensor> {
        let a = quint8_tensor(self.name, x)?;
        let shape = a.shape();
        let k = self.packed.k();
        if shape.len() < 2 {
            return Err(QnnError::WrongRank {
                module: self.name,
                expected: "at least 2-d (*, in_features)",
                got: shape.to_vec(),
            });
        }
        if shape[shape.len() - 1] != k {
            return Err(QnnError::ShapeMismatch {
                what: format!("{} input features (last dim) vs in_features", self.name),
                expected: vec![k],
                got: vec![shape[shape.len() - 1]],
            });
        }
        let data = row_major_bytes(&a)?;
        let m = data.len() / k;
        let n = self.packed.n();
        let mut out = Vec::new();
        if m > 0 {
            let params = Requantize {
                act_scale: a.scale,
                out_scale: self.out.scale() as f32,
                out_zero_point: self.out.zero_point() as i32,
                bias: self.bias.as_ref().map(|b| b.data()),
                activation: self.activation,
            };
            let weights = self.packed.for_data(&data);
            let acts = Activations {
                data: &data,
                rows: m,
                row_stride: k,
                zero_point: a.zero_point,
            };
            self.requant
                .with(weights, params, a.zero_point, |prepared| {
                    // Into the Vec's capacity: no zeroing pass, each thread first touches
                    // the rows it computes.
                    gemm::gemm_u8s8_into_vec(
                        acts,
                        weights,
                        VecOutput::QUInt8Prepared {
                            params: prepared,
                            out: &mut out,
                        },
                    )
                })??;
        }
        let mut out_shape = shape.to_vec();
        let last = out_shape.len() - 1;
        out_shape[last] = n;
        quint8_output(
            out,
            &out_shape,
            Layout::RowMajor,
            self.out.scale(),
            self.out.zero_point(),
        )
    }

    fn visit(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        self.weight.visit(f);
        if let Some(b) = &self.bias {
            f("bias", BufferRef::F32(b));
        }
        self.out.visit(f);
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        self.requant.clear();
        self.weight.visit_mut(f);
        if let Some(b) = &mut self.bias {
            f("bias", BufferMut::F32(b));
        }
        self.out.visit_mut(f);
    }

    fn after_load(&mut self) -> Result<()> {
        if self.weight.weight.ndim() != 2 {
            return Err(QnnError::WrongRank {
                module: self.name,
                expected: "2-d [out_features, in_features] weight",
                got: self.weight.weight.shape().to_vec(),
            });
        }
        self.weight.validate(self.name)?;
        check_bias(self.name, self.bias.as_ref(), self.weight.weight.shape()[0])?;
        self.out.validate(self.name)?;
        self.packed = pack(self.name, &self.weight)?;
        self.requant.clear();
        Ok(())
    }

    fn bytes(&self) -> usize {
        self.weight.bytes() + self.bias.as_ref().map_or(0, |b| 4 * b.numel()) + self.out.bytes()
    }
}

/// Packs a `[N, K]` qint8 weight for this CPU's kernel families ([`Int8Panels`]).
fn pack(name: &'static str, w: &QWeight) -> Result<Int8Panels> {
    let (n, k) = (w.weight.shape()[0], w.weight.shape()[1]);
    if n == 0 || k == 0 {
        return Err(QnnError::InvalidConfig {
            module: name,
            reason: format!("weight shape {:?} has an empty dimension", w.weight.shape()),
        });
    }
    let (scales, zps) = w.kernel_qparams();
    let q = WeightQParams::from_slices(w.is_per_channel(), &scales, &zps)?;
    Int8Panels::pack(w.weight.data(), n, k, q)
}

macro_rules! quantized_linear {
    ($ty:ident, $name:literal, $kind:ident, $act:expr, $doc:literal) => {
        #[doc = $doc]
        ///
        /// Input: quint8 per-tensor, rank ≥ 2, last dim `in_features` (any layout; a
        /// channels-last 4-d input is read in logical order). Output: row-major quint8 with the
        /// module's `scale` / `zero_point`. State-dict buffers: `weight` (i8 `[out, in]`),
        /// `weight_scale`, `weight_zero_point`, `weight_axis` (-1 per-tensor, 0 per-channel),
        /// `bias` (f32, if any), `scale`, `zero_point`.
        #[derive(Clone, Debug)]
        pub struct $ty(LinearCore);

        impl $ty {
            /// Converts a float layer as PyTorch's `from_float` does: quantizes the weight to
            /// qint8 with `weight_qparams` (per-tensor, or per-channel along axis 0), keeps the
            /// bias in f32, and packs the weight once.
            pub fn from_float(
                float: &float::Linear,
                weight_qparams: &QParams,
                output_scale: f64,
                output_zero_point: i64,
            ) -> Result<Self> {
                LinearCore::from_float(
                    $name,
                    $act,
                    float,
                    weight_qparams,
                    output_scale,
                    output_zero_point,
                )
                .map(Self)
            }

            /// The same from a float weight `[out, in]` and optional bias `[out]`.
            pub fn from_weights(
                weight: &Tensor<f32>,
                bias: Option<&Tensor<f32>>,
                weight_qparams: &QParams,
                output_scale: f64,
                output_zero_point: i64,
            ) -> Result<Self> {
                LinearCore::from_weights(
                    $name,
                    $act,
                    weight,
                    bias,
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

            /// The integer weight `[out_features, in_features]`.
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

            /// Input features.
            pub fn in_features(&self) -> usize {
                self.0.packed.k()
            }

            /// Output features.
            pub fn out_features(&self) -> usize {
                self.0.packed.n()
            }
        }

        impl Module for $ty {
            fn kind(&self) -> ModuleKind {
                ModuleKind::$kind
            }

            fn extra_repr(&self) -> String {
                let qscheme = if self.0.weight.is_per_channel() {
                    qtensor::QScheme::PerChannelAffine
                } else {
                    qtensor::QScheme::PerTensorAffine
                };
                format!(
                    "in_features={}, out_features={}, scale={}, zero_point={}, qscheme={}",
                    self.in_features(),
                    self.out_features(),
                    crate::repr::py_float(self.scale()),
                    self.zero_point(),
                    crate::repr::torch_qscheme(qscheme)
                )
            }

            fn forward(&mut self, input: &Value) -> Result<Value> {
                let a = quint8_input($name, input)?;
                Ok(Value::Quantized(self.0.apply(a.q)?))
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
                self.0.after_load()
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

quantized_linear!(
    Linear,
    "QuantizedLinear",
    QuantizedLinear,
    Activation::None,
    "Quantized fully connected layer (`torch.ao.nn.quantized.Linear`), bit-exact with fbgemm."
);
quantized_linear!(
    LinearReLU,
    "QuantizedLinearReLU",
    QuantizedLinearReLU,
    Activation::Relu,
    "Quantized Linear fused with ReLU (`torch.ao.nn.intrinsic.quantized.LinearReLU`): the \
     requantization clamps at the output zero point."
);
