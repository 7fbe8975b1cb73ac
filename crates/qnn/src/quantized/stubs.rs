//! `Quantize` and `DeQuantize`: the boundaries between float and quantized parts of a model
//! (`torch.ao.nn.quantized.Quantize` / `DeQuantize`).

use qkernels::eltwise::layout;
use qtensor::{Layout, QDType, QParams, QTensor, Tensor};

use super::common::{check_qparams, not_trainable};
use crate::error::{QnnError, Result};
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef};
use crate::value::Value;

const QUANTIZE: &str = "Quantize";
const DEQUANTIZE: &str = "DeQuantize";

/// Quantizes an f32 input per-tensor to quint8 (or qint8) with fixed qparams, bit-exact with
/// `torch.quantize_per_tensor` (through the SIMD kernels of [`qkernels::quant`]).
///
/// A 4-d input comes out channels-last (NHWC memory, logical shape `[N, C, H, W]`), the
/// layout the quantized convolutions and pools work in; other ranks stay row-major.
#[derive(Clone, Debug)]
pub struct Quantize {
    scale: Vec<f64>,
    zero_point: Vec<i64>,
    dtype: QDType,
    training: bool,
}

impl Quantize {
    /// `nnq.Quantize(scale, zero_point, dtype)`; `dtype` is quint8 or qint8.
    pub fn new(scale: f64, zero_point: i64, dtype: QDType) -> Result<Self> {
        if !matches!(dtype, QDType::QUInt8 | QDType::QInt8) {
            return Err(QnnError::InvalidQParams {
                module: QUANTIZE,
                reason: format!("dtype must be quint8 or qint8, got {dtype}"),
            });
        }
        check_qparams(QUANTIZE, "output", scale, zero_point, dtype)?;
        Ok(Self {
            scale: vec![scale],
            zero_point: vec![zero_point],
            dtype,
            training: false,
        })
    }

    /// The output scale.
    pub fn scale(&self) -> f64 {
        self.scale[0]
    }

    /// The output zero point.
    pub fn zero_point(&self) -> i64 {
        self.zero_point[0]
    }

    /// The output dtype.
    pub fn dtype(&self) -> QDType {
        self.dtype
    }

    /// Quantizes one tensor (what `forward` does).
    pub fn quantize(&self, x: &Tensor<f32>) -> Result<QTensor> {
        let qparams = QParams::PerTensor {
            scale: self.scale(),
            zero_point: self.zero_point(),
        };
        if x.ndim() == 4 && x.layout() == Layout::RowMajor && self.dtype == QDType::QUInt8 {
            // quantize in NCHW order with the SIMD kernel, then one byte transpose to NHWC
            // (none for one channel: both layouts are then the same bytes)
            let s = x.shape();
            let mut nchw = vec![0u8; x.numel()];
            qkernels::quant::quantize_u8(
                x.data(),
                self.scale() as f32,
                self.zero_point() as i32,
                &mut nchw,
            )?;
            let nhwc = if s[1] == 1 {
                nchw
            } else {
                let mut nhwc = vec![0u8; nchw.len()];
                layout::nchw_to_nhwc(&nchw, s[0], s[1], s[2] * s[3], &mut nhwc)?;
                nhwc
            };
            return Ok(QTensor::from_u8_storage(
                nhwc,
                s,
                Layout::ChannelsLast,
                self.dtype,
                qparams,
            )?);
        }
        let q = qkernels::quant::quantize_per_tensor_fast(
            x,
            self.scale(),
            self.zero_point(),
            self.dtype,
        )?;
        if x.ndim() != 4 || x.layout() == Layout::ChannelsLast {
            return Ok(q);
        }
        Ok(q.to_channels_last()?)
    }
}

impl Module for Quantize {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Quantize
    }

    fn extra_repr(&self) -> String {
        // PyTorch keeps the scale as a 1-element float32 tensor.
        let scale: Vec<f32> = self.scale.iter().map(|&s| s as f32).collect();
        format!(
            "scale={}, zero_point={}, dtype={}",
            crate::repr::torch_tensor_f32(&scale),
            crate::repr::torch_tensor_i64(&self.zero_point),
            crate::repr::torch_qdtype(self.dtype)
        )
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        Ok(Value::Quantized(self.quantize(input.as_f32(QUANTIZE)?)?))
    }

    fn backward(&mut self, _grad_output: &Value) -> Result<Value> {
        not_trainable(QUANTIZE)
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        f("scale", BufferRef::F64s(&self.scale));
        f("zero_point", BufferRef::I64s(&self.zero_point));
    }

    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        f("scale", BufferMut::F64s(&mut self.scale));
        f("zero_point", BufferMut::I64s(&mut self.zero_point));
    }

    fn after_load(&mut self) -> Result<()> {
        if self.scale.len() != 1 || self.zero_point.len() != 1 {
            return Err(QnnError::InvalidQParams {
                module: QUANTIZE,
                reason: "scale and zero_point must have one value each".into(),
            });
        }
        check_qparams(
            QUANTIZE,
            "output",
            self.scale[0],
            self.zero_point[0],
            self.dtype,
        )
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn param_bytes(&self) -> usize {
        16
    }
}

/// Dequantizes a quantized input to f32 in row-major logical order (channels-last inputs
/// are reordered), bit-exact with `Tensor.dequantize()`.
#[derive(Clone, Debug, Default)]
pub struct DeQuantize {
    training: bool,
}

impl DeQuantize {
    /// `nnq.DeQuantize()`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Dequantizes one tensor (what `forward` does).
    pub fn dequantize(&self, q: &QTensor) -> Result<Tensor<f32>> {
        if q.layout() == Layout::ChannelsLast
            && let (qtensor::IntRepr::U8(t), QParams::PerTensor { .. }) = (q.storage(), q.qparams())
        {
            let s = q.shape();
            let mut nchw = vec![0u8; t.numel()];
            layout::nhwc_to_nchw(t.data(), s[0], s[1], s[2] * s[3], &mut nchw)?;
            let rm = QTensor::from_u8_storage(
                nchw,
                s,
                Layout::RowMajor,
                q.dtype(),
                q.qparams().clone(),
            )?;
            return Ok(qkernels::quant::dequantize_fast(&rm)?);
        }
        let t = qkernels::quant::dequantize_fast(q)?;
        if t.layout() == Layout::ChannelsLast {
            Ok(t.to_row_major()?)
        } else {
            Ok(t)
        }
    }
}

impl Module for DeQuantize {
    fn kind(&self) -> ModuleKind {
        ModuleKind::DeQuantize
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        match input {
            Value::Quantized(q) => Ok(Value::F32(self.dequantize(q)?)),
            other => Err(QnnError::WrongValueKind {
                module: DEQUANTIZE,
                expected: "quantized",
                got: other.kind_name(),
            }),
        }
    }

    fn backward(&mut self, _grad_output: &Value) -> Result<Value> {
        not_trainable(DEQUANTIZE)
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}
