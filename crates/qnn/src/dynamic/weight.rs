//! The weight (and bias) of one dynamic linear map — a `dynamic::Linear` layer or one gate
//! matrix of a recurrent layer: qint8 values with their qparams and the packed GEMM panels, or
//! f16 values, plus the call that computes `x Wᵀ + b` with PyTorch's dynamic numerics.

use qkernels::GemmError;
use qkernels::fp16::{self, Fp16Epilogue, PackedF16};
use qkernels::gemm::{
    self, Activations, Dequantize, KernelKind, Output, PackedWeights, VecOutput, WeightQParams,
};
use qtensor::{
    IntRepr, QDType, QParams, QTensor, Tensor, f32_to_f16_saturating, quantize_per_channel,
    quantize_per_tensor,
};

use super::input_quant::quantize_dynamic;
use crate::error::{QnnError, Result};
use crate::int8_panels::Int8Panels;
use crate::param::{BufferMut, BufferRef};

/// How a dynamic module stores its weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightDType {
    /// qint8 values with per-tensor or per-channel (axis 0) qparams; activations are quantized
    /// to quint8 on every call.
    QInt8,
    /// f16 values; activations stay f32 (fbgemm's fp16 GEMM order, f32 FMA accumulation:
    /// [`qkernels::fp16`]).
    Float16,
}

/// qint8 weight state: what is saved, and the packed panels rebuilt from it.
#[derive(Clone, Debug)]
struct QInt8Weight {
    values: Tensor<i8>,
    scales: Vec<f64>,
    zero_points: Vec<i64>,
    /// `-1` per-tensor, `0` per-channel.
    axis: i64,
    packed: Int8Panels,
}

impl QInt8Weight {
    /// Quantizes `x` (`m × K`) into `scratch` with the per-call dynamic qparams and hands `gemm`
    /// the activations, the dequantizing pipeline and the panels chosen for them.
    fn run(
        &self,
        x: &[f32],
        m: usize,
        bias: Option<&[f32]>,
        relu: bool,
        scratch: &mut Vec<u8>,
        gemm: impl FnOnce(
            Activations<'_>,
            Dequantize<'_>,
            &PackedWeights,
        ) -> std::result::Result<KernelKind, GemmError>,
    ) -> Result<()> {
        let (scale, zp) = quantize_dynamic(x, scratch)?;
        let acts = Activations {
            data: scratch,
            rows: m,
            row_stride: self.values.shape()[1],
            zero_point: zp,
        };
        let params = Dequantize {
            act_scale: scale,
            bias,
            relu,
        };
        gemm(acts, params, self.packed.for_data(scratch))?;
        Ok(())
    }
}

#[derive(Clone, Debug)]
enum Stored {
    QInt8(Box<QInt8Weight>),
    /// f16-exact values widened to f32 (saved as f32, rounded again on load).
    Fp16 {
        values: Tensor<f32>,
        packed: PackedF16,
    },
}

/// One weight matrix `[N, K]` with its optional f32 bias `[N]`.
#[derive(Clone, Debug)]
pub(crate) struct DynWeight {
    module: &'static str,
    stored: Stored,
    bias: Option<Tensor<f32>>,
}

fn bad(module: &'static str, reason: String) -> QnnError {
    QnnError::InvalidQParams { module, reason }
}

/// Checks saved qparams and converts them to the packer's `f32`/`i32` form.
fn checked_qparams(
    module: &'static str,
    n: usize,
    scales: &[f64],
    zero_points: &[i64],
    axis: i64,
) -> Result<(Vec<f32>, Vec<i32>)> {
    let want = match axis {
        -1 => 1,
        0 => n,
        other => {
            return Err(bad(
                module,
                format!("weight axis {other}: expected -1 (per-tensor) or 0 (per-channel)"),
            ));
        }
    };
    if scales.len() != want || zero_points.len() != want {
        return Err(bad(
            module,
            format!(
                "axis {axis} needs {want} scales and zero points, got {} and {}",
                scales.len(),
                zero_points.len()
            ),
        ));
    }
    let mut s32 = Vec::with_capacity(want);
    for &s in scales {
        let f = s as f32;
        if !(s.is_finite() && s > 0.0 && f > 0.0 && f.is_finite()) {
            return Err(bad(
                module,
                format!("weight scale {s} must be finite and > 0"),
            ));
        }
        s32.push(f);
    }
    let mut z32 = Vec::with_capacity(want);
    for &z in zero_points {
        if !(-128..=127).contains(&z) {
            return Err(bad(
                module,
                format!("weight zero point {z} is outside the qint8 range -128..=127"),
            ));
        }
        z32.push(z as i32);
    }
    Ok((s32, z32))
}

fn pack_qint8(
    module: &'static str,
    values: &Tensor<i8>,
    scales: &[f64],
    zero_points: &[i64],
    axis: i64,
) -> Result<Int8Panels> {
    let (n, k) = matrix_dims(module, values.shape())?;
    let (s, z) = checked_qparams(module, n, scales, zero_points, axis)?;
    let q = if axis < 0 {
        WeightQParams::PerTensor {
            scale: s[0],
            zero_point: z[0],
        }
    } else {
        WeightQParams::PerChannel {
            scales: &s,
            zero_points: &z,
        }
    };
    Int8Panels::pack(values.data(), n, k, q)
}

fn matrix_dims(module: &'static str, shape: &[usize]) -> Result<(usize, usize)> {
    match *shape {
        [n, k] if n > 0 && k > 0 => Ok((n, k)),
        _ => Err(QnnError::InvalidConfig {
            module,
            reason: format!("weight must be a non-empty 2-d [out, in] matrix, got shape {shape:?}"),
        }),
    }
}

fn check_bias(module: &'static str, bias: Option<&Tensor<f32>>, n: usize) -> Result<()> {
    match bias {
        Some(b) if b.shape() != [n] => Err(QnnError::ShapeMismatch {
            what: format!("{module} bias vs weight rows"),
            expected: vec![n],
            got: b.shape().to_vec(),
        }),
        _ => Ok(()),
    }
}

/// Rounds to f16 as `linear_prepack_fp16` does (saturating to ±65504), widened back to f32.
fn round_f16(t: &Tensor<f32>) -> Result<Tensor<f32>> {
    let data = t
        .data()
        .iter()
        .map(|&v| f32_to_f16_saturating(v).to_f32())
        .collect();
    Ok(Tensor::new(t.shape(), data)?)
}

impl DynWeight {
    /// Quantizes a float weight `[N, K]` to qint8 with `qparams` exactly as PyTorch's
    /// `_quantize_weight` does (per-tensor: `quantize_per_tensor(w, float(scale), int(zp))`;
    /// per-channel along axis 0: `quantize_per_channel`), and packs it.
    pub(crate) fn qint8(
        module: &'static str,
        weight: &Tensor<f32>,
        bias: Option<&Tensor<f32>>,
        qparams: &QParams,
    ) -> Result<Self> {
        let (n, _) = matrix_dims(module, weight.shape())?;
        check_bias(module, bias, n)?;
        let (q, scales, zero_points, axis) = match qparams {
            QParams::PerTensor { scale, zero_point } => {
                checked_qparams(module, n, &[*scale], &[*zero_point], -1)?;
                let q = quantize_per_tensor(weight, *scale, *zero_point, QDType::QInt8)?;
                (q, vec![*scale], vec![*zero_point], -1)
            }
            QParams::PerChannel {
                scales,
                zero_points,
                axis: 0,
            } => {
                checked_qparams(module, n, scales, zero_points, 0)?;
                let q = quantize_per_channel(weight, scales, zero_points, 0, QDType::QInt8)?;
                (q, scales.clone(), zero_points.clone(), 0)
            }
            other => {
                return Err(bad(
                    module,
                    format!(
                        "dynamic weights need per-tensor or per-channel (axis 0) affine qparams, got {:?}",
                        other.qscheme()
                    ),
                ));
            }
        };
        let values = match q.storage() {
            IntRepr::I8(t) => t.clone(),
            _ => return Err(bad(module, "qint8 quantization gave another dtype".into())),
        };
        let packed = pack_qint8(module, &values, &scales, &zero_points, axis)?;
        Ok(Self {
            module,
            stored: Stored::QInt8(Box::new(QInt8Weight {
                values,
                scales,
                zero_points,
                axis,
                packed,
            })),
            bias: bias.cloned(),
        })
    }

    /// Rounds a float weight `[N, K]` to f16 (saturating) and packs it.
    pub(crate) fn fp16(
        module: &'static str,
        weight: &Tensor<f32>,
        bias: Option<&Tensor<f32>>,
    ) -> Result<Self> {
        let (n, k) = matrix_dims(module, weight.shape())?;
        check_bias(module, bias, n)?;
        let values = round_f16(weight)?;
        let packed = PackedF16::from_f32(values.data(), n, k)?;
        Ok(Self {
            module,
            stored: Stored::Fp16 { values, packed },
            bias: bias.cloned(),
        })
    }

    /// Output features `N`.
    pub(crate) fn n(&self) -> usize {
        self.shape()[0]
    }

    /// Input features `K`.
    pub(crate) fn k(&self) -> usize {
        self.shape()[1]
    }

    fn shape(&self) -> &[usize] {
        match &self.stored {
            Stored::QInt8(q) => q.values.shape(),
            Stored::Fp16 { values, .. } => values.shape(),
        }
    }

    /// qint8 or f16.
    pub(crate) fn dtype(&self) -> WeightDType {
        match self.stored {
            Stored::QInt8(_) => WeightDType::QInt8,
            Stored::Fp16 { .. } => WeightDType::Float16,
        }
    }

    /// The bias, if any.
    pub(crate) fn bias(&self) -> Option<&Tensor<f32>> {
        self.bias.as_ref()
    }

    /// The qint8 weight as a quantized tensor (`None` for f16 weights).
    pub(crate) fn qweight(&self) -> Option<QTensor> {
        let Stored::QInt8(q) = &self.stored else {
            return None;
        };
        let values: Vec<i32> = q.values.data().iter().map(|&v| i32::from(v)).collect();
        let qparams = if q.axis < 0 {
            QParams::PerTensor {
                scale: q.scales[0],
                zero_point: q.zero_points[0],
            }
        } else {
            QParams::PerChannel {
                scales: q.scales.clone(),
                zero_points: q.zero_points.clone(),
                axis: 0,
            }
        };
        QTensor::from_int_values(q.values.shape(), &values, QDType::QInt8, qparams).ok()
    }

    /// The f16 weight values widened to f32 (`None` for qint8 weights).
    pub(crate) fn fp16_values(&self) -> Option<&Tensor<f32>> {
        match &self.stored {
            Stored::Fp16 { values, .. } => Some(values),
            Stored::QInt8(_) => None,
        }
    }

    /// `out = x Wᵀ + b` (then ReLU if asked) for `x` of `m × K`, `out` of `m × N`, with
    /// PyTorch's numerics: qint8 quantizes `x` with per-call qparams and runs the int8 GEMM
    /// with the dequantizing epilogue; f16 runs the fp16 GEMM and adds the bias.
    pub(crate) fn apply(
        &self,
        x: &[f32],
        m: usize,
        relu: bool,
        out: &mut [f32],
        scratch: &mut Vec<u8>,
    ) -> Result<()> {
        let (n, k) = (self.n(), self.k());
        debug_assert!(x.len() >= m * k && out.len() >= m * n);
        if m == 0 {
            return Ok(());
        }
        let x = &x[..m * k];
        let bias = self.bias.as_ref().map(Tensor::data);
        match &self.stored {
            Stored::QInt8(q) => {
                q.run(x, m, bias, relu, scratch, |acts, params, weights| {
                    let out = Output::F32 {
                        params,
                        out: &mut out[..m * n],
                        ldc: n,
                    };
                    gemm::gemm_u8s8(acts, weights, out)
                })?;
            }
            Stored::Fp16 { packed, .. } => {
                let epilogue = Fp16Epilogue { bias, relu };
                fp16::gemm_f32_f16(x, m, k, packed, &mut out[..m * n], n, epilogue)?;
            }
        }
        Ok(())
    }

    /// [`Self::apply`] into a new `m × N` buffer. The qint8 GEMM writes it straight into the
    /// `Vec`'s capacity (no zeroing pass; each thread first touches the part it computes:
    /// [`gemm::gemm_u8s8_into_vec`]); f16 weights fill a zeroed buffer.
    pub(crate) fn apply_new(
        &self,
        x: &[f32],
        m: usize,
        relu: bool,
        scratch: &mut Vec<u8>,
    ) -> Result<Vec<f32>> {
        let (n, k) = (self.n(), self.k());
        let Stored::QInt8(q) = &self.stored else {
            let mut out = vec![0.0f32; m * n];
            self.apply(x, m, relu, &mut out, scratch)?;
            return Ok(out);
        };
        let mut out = Vec::new();
        if m == 0 {
            return Ok(out);
        }
        let bias = self.bias.as_ref().map(Tensor::data);
        q.run(
            &x[..m * k],
            m,
            bias,
            relu,
            scratch,
            |acts, params, weights| {
                let out = VecOutput::F32 {
                    params,
                    out: &mut out,
                };
                gemm::gemm_u8s8_into_vec(acts, weights, out)
            },
        )?;
        Ok(out)
    }

    /// Visits the saved state: `<w>` (i8 values or f16 values widened to f32), for qint8
    /// `<w>_scale`, `<w>_zero_point`, `<w>_axis`; and `<b>` when there is a bias.
    pub(crate) fn visit(&self, w: &str, b: &str, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        match &self.stored {
            Stored::QInt8(q) => {
                f(w, BufferRef::I8(&q.values));
                f(&format!("{w}_scale"), BufferRef::F64s(&q.scales));
                f(&format!("{w}_zero_point"), BufferRef::I64s(&q.zero_points));
                f(&format!("{w}_axis"), BufferRef::I64(&q.axis));
            }
            Stored::Fp16 { values, .. } => f(w, BufferRef::F32(values)),
        }
        if let Some(bias) = &self.bias {
            f(b, BufferRef::F32(bias));
        }
    }

    /// Mutable [`DynWeight::visit`] (loading); call [`DynWeight::rebuild`] afterwards.
    pub(crate) fn visit_mut(&mut self, w: &str, b: &str, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        match &mut self.stored {
            Stored::QInt8(q) => {
                f(w, BufferMut::I8(&mut q.values));
                f(&format!("{w}_scale"), BufferMut::F64s(&mut q.scales));
                f(
                    &format!("{w}_zero_point"),
                    BufferMut::I64s(&mut q.zero_points),
                );
                f(&format!("{w}_axis"), BufferMut::I64(&mut q.axis));
            }
            Stored::Fp16 { values, .. } => f(w, BufferMut::F32(values)),
        }
        if let Some(bias) = &mut self.bias {
            f(b, BufferMut::F32(bias));
        }
    }

    /// Validates loaded state (qparams, shapes) and rebuilds the packed weights for this CPU.
    pub(crate) fn rebuild(&mut self) -> Result<()> {
        let module = self.module;
        let (n, k) = matrix_dims(module, self.shape())?;
        check_bias(module, self.bias.as_ref(), n)?;
        match &mut self.stored {
            Stored::QInt8(q) => {
                q.packed = pack_qint8(module, &q.values, &q.scales, &q.zero_points, q.axis)?;
            }
            Stored::Fp16 { values, packed } => {
                *values = round_f16(values)?;
                *packed = PackedF16::from_f32(values.data(), n, k)?;
            }
        }
        Ok(())
    }

    /// Stored bytes: 1 per qint8 weight (+ 8 per scale and zero point) or 2 per f16 weight,
    /// plus 4 per bias value.
    pub(crate) fn param_bytes(&self) -> usize {
        let w = match &self.stored {
            Stored::QInt8(q) => q.values.numel() + 8 * (q.scales.len() + q.zero_points.len()) + 8,
            Stored::Fp16 { values, .. } => 2 * values.numel(),
        };
        w + self.bias.as_ref().map_or(0, |b| 4 * b.numel())
    }
}
