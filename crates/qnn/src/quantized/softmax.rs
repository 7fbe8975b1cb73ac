//! Quantized Softmax: PyTorch's `quantized::softmax(x, dim, scale, zero_point)` on the
//! fbgemm/x86 engine, which dequantizes, takes the float softmax along `dim` and quantizes
//! with the output qparams (`qsoftmax_naive`).
//!
//! Numerics: dequantize is PyTorch's per-tensor rule (`qtensor`), quantize is fbgemm's;
//! the float softmax is `exp(x − max) · (1 / Σ exp)` in f32. ATen evaluates `exp` with
//! SLEEF's vectorized 1-ulp approximation and sums in vector order, so the float results
//! can differ from ours in the last bits and an output can land one quantum away where the
//! value sits on a rounding boundary. Tested against torch 2.15 goldens: every output within
//! one quantum, and at most 1% of them off by one (`tests/quantized_softmax.rs`); on the
//! committed goldens (2703 outputs, dims 0..3, fixed and observed qparams) none differs.

use qtensor::{QDType, QParams, QTensor, Tensor, quantize_per_tensor};

use super::norm::check_loaded_output;
use super::norm::check_output_qparams;
use crate::error::{QnnError, Result};
use crate::float;
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef};
use crate::value::Value;

const NAME: &str = "quantized::Softmax";

/// `torch.ao.nn.quantized.Softmax(dim, scale, zero_point)`: softmax along `dim` of a
/// per-tensor quint8 or qint8 input, quantized with the output qparams (same dtype as the
/// input). The output keeps the input's layout.
#[derive(Clone, Debug)]
pub struct Softmax {
    dim: isize,
    scale: Vec<f64>,
    zero_point: Vec<i64>,
    training: bool,
}

impl Softmax {
    /// A layer along `dim` (negative counts from the end).
    ///
    /// Errors: an output scale that is not finite and positive, or a zero point outside
    /// quint8's range.
    pub fn new(dim: isize, output_scale: f64, output_zero_point: i64) -> Result<Self> {
        check_output_qparams(NAME, output_scale, output_zero_point)?;
        Ok(Self {
            dim,
            scale: vec![output_scale],
            zero_point: vec![output_zero_point],
            training: false,
        })
    }

    /// `nnq.Softmax.from_float`: the float layer's `dim` with the observed output qparams.
    pub fn from_float(
        float: &float::Softmax,
        output_scale: f64,
        output_zero_point: i64,
    ) -> Result<Self> {
        Self::new(float.dim(), output_scale, output_zero_point)
    }

    /// The dimension normalized over.
    pub fn dim(&self) -> isize {
        self.dim
    }

    /// Output scale.
    pub fn output_scale(&self) -> f64 {
        self.scale.first().copied().unwrap_or(1.0)
    }

    /// Output zero point.
    pub fn output_zero_point(&self) -> i64 {
        self.zero_point.first().copied().unwrap_or(0)
    }

    /// The softmax of a quantized tensor (what `forward` computes).
    pub fn apply(&self, x: &QTensor) -> Result<QTensor> {
        let QParams::PerTensor { .. } = x.qparams() else {
            return Err(QnnError::InvalidQParams {
                module: NAME,
                reason: format!("input must be per-tensor quantized, got {:?}", x.qscheme()),
            });
        };
        let dtype = x.dtype();
        if !matches!(dtype, QDType::QUInt8 | QDType::QInt8) {
            return Err(QnnError::InvalidQParams {
                module: NAME,
                reason: format!("input dtype must be quint8 or qint8, got {dtype}"),
            });
        }
        let layout = x.layout();
        let f = x.dequantize(); // logical shape, same layout
        let f = if layout == qtensor::Layout::RowMajor {
            f
        } else {
            f.to_row_major()?
        };
        let ndim = f.ndim().max(1);
        let d = if self.dim < 0 {
            self.dim + ndim as isize
        } else {
            self.dim
        };
        let d = usize::try_from(d)
            .ok()
            .filter(|&d| d < ndim)
            .ok_or(QnnError::DimOutOfRange {
                module: NAME,
                dim: self.dim,
                ndim: f.ndim(),
            })?;
        let mut data = f.into_data();
        let shape = x.shape().to_vec();
        softmax_lines(&mut data, &shape, d);
        let y = Tensor::new(&shape, data)?;
        let y = if layout == qtensor::Layout::ChannelsLast {
            y.to_channels_last()?
        } else {
            y
        };
        Ok(quantize_per_tensor(
            &y,
            self.output_scale(),
            self.output_zero_point(),
            dtype,
        )?)
    }
}

/// `exp(x − max) · (1 / Σ exp)` along `dim` of row-major data (a 0-d tensor is one line).
fn softmax_lines(x: &mut [f32], shape: &[usize], dim: usize) {
    let outer: usize = shape.iter().take(dim).product();
    let n = shape.get(dim).copied().unwrap_or(1);
    let inner: usize = shape.iter().skip(dim + 1).product();
    let mut e = vec![0.0f32; n];
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * n + k) * inner + i;
            let max = (0..n).map(|k| x[at(k)]).fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0f32;
            for (k, ek) in e.iter_mut().enumerate() {
                *ek = (x[at(k)] - max).exp();
                sum += *ek;
            }
            let r = 1.0 / sum;
            for (k, ek) in e.iter().enumerate() {
                x[at(k)] = ek * r;
            }
        }
    }
}

impl Module for Softmax {
    fn kind(&self) -> ModuleKind {
        ModuleKind::QuantizedSoftmax
    }

    fn extra_repr(&self) -> String {
        format!("dim={}", self.dim())
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        match input {
            Value::Quantized(q) => Ok(Value::Quantized(self.apply(q)?)),
            other => Err(QnnError::WrongValueKind {
                module: NAME,
                expected: "quantized",
                got: other.kind_name(),
            }),
        }
    }

    fn backward(&mut self, _grad_output: &Value) -> Result<Value> {
        Err(QnnError::NotTrainable { module: NAME })
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        f("scale", BufferRef::F64s(&self.scale));
        f("zero_point", BufferRef::I64s(&self.zero_point));
    }

    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        f("scale", BufferMut::F64s(&mut self.scale));
        f("zero_point", BufferMut::I64s(&mut self.zero_point));
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn after_load(&mut self) -> Result<()> {
        check_loaded_output(NAME, &self.scale, &self.zero_point)
    }

    fn param_bytes(&self) -> usize {
        16
    }
}
