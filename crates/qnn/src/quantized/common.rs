//! Helpers shared by the quantized modules: reading quint8 activations, checking qparams,
//! quantizing float weights as PyTorch's `from_float` does, and building output tensors.

use qkernels::eltwise::QParams as EltQParams;
use qkernels::eltwise::layout;
use qtensor::{IntRepr, Layout, QDType, QParams, QTensor, Tensor};

use crate::error::{QnnError, Result};
use crate::value::Value;

/// A per-tensor quint8 activation borrowed from a [`Value`]: bytes in memory order, the
/// logical shape, layout and qparams.
pub(crate) struct Act<'a> {
    /// The tensor.
    pub q: &'a QTensor,
    /// Its storage bytes in memory order.
    pub data: &'a [u8],
    /// Scale as PyTorch's kernels use it (`(float)q_scale`).
    pub scale: f32,
    /// Zero point.
    pub zero_point: i32,
}

impl Act<'_> {
    /// The qparams in the eltwise kernels' form.
    pub fn qparams(&self) -> EltQParams {
        EltQParams {
            scale: self.scale,
            zero_point: self.zero_point,
        }
    }

    /// The logical shape.
    pub fn shape(&self) -> &[usize] {
        self.q.shape()
    }
}

/// The per-tensor quint8 tensor inside `v`, or a typed error naming `module`.
pub(crate) fn quint8_input<'a>(module: &'static str, v: &'a Value) -> Result<Act<'a>> {
    let Value::Quantized(q) = v else {
        return Err(QnnError::WrongValueKind {
            module,
            expected: "quantized",
            got: v.kind_name(),
        });
    };
    quint8_tensor(module, q)
}

/// Views a per-tensor quint8 [`QTensor`], or a typed error naming `module`.
pub(crate) fn quint8_tensor<'a>(module: &'static str, q: &'a QTensor) -> Result<Act<'a>> {
    let (IntRepr::U8(t), QDType::QUInt8) = (q.storage(), q.dtype()) else {
        return Err(QnnError::InvalidQParams {
            module,
            reason: format!("expected a quint8 input, got {}", q.dtype()),
        });
    };
    let QParams::PerTensor { scale, zero_point } = *q.qparams() else {
        return Err(QnnError::InvalidQParams {
            module,
            reason: "expected a per-tensor quantized input".into(),
        });
    };
    Ok(Act {
        q,
        data: t.data(),
        scale: scale as f32,
        zero_point: zero_point as i32,
    })
}

/// Checks an output scale and quint8 zero point (PyTorch's `scale`, `zero_point` attributes).
pub(crate) fn check_output_qparams(
    module: &'static str,
    scale: f64,
    zero_point: i64,
) -> Result<()> {
    check_qparams(module, "output", scale, zero_point, QDType::QUInt8)
}

/// Checks one scale and zero point for `dtype`.
pub(crate) fn check_qparams(
    module: &'static str,
    what: &str,
    scale: f64,
    zero_point: i64,
    dtype: QDType,
) -> Result<()> {
    // (float)scale must also be a usable f32 scale.
    let s32 = scale as f32;
    if !(scale.is_finite() && scale > 0.0 && s32.is_finite() && s32 > 0.0) {
        return Err(QnnError::InvalidQParams {
            module,
            reason: format!("{what} scale {scale} must be finite and positive"),
        });
    }
    if !(dtype.qmin()..=dtype.qmax()).contains(&zero_point) {
        return Err(QnnError::InvalidQParams {
            module,
            reason: format!(
                "{what} zero point {zero_point} is outside {}..={} of {dtype}",
                dtype.qmin(),
                dtype.qmax()
            ),
        });
    }
    Ok(())
}

/// The NHWC bytes of a 4-d quint8 activation: borrowed when it is channels-last or has one
/// channel (both layouts are then the same bytes), transposed otherwise.
pub(crate) fn nhwc_bytes<'a>(
    module: &'static str,
    a: &Act<'a>,
) -> Result<std::borrow::Cow<'a, [u8]>> {
    let s = a.shape();
    if s.len() != 4 {
        return Err(QnnError::WrongRank {
            module,
            expected: "4-d (N, C, H, W)",
            got: s.to_vec(),
        });
    }
    if a.q.layout() == Layout::ChannelsLast || s[1] == 1 {
        return Ok(std::borrow::Cow::Borrowed(a.data));
    }
    let mut out = vec![0u8; a.data.len()];
    layout::nchw_to_nhwc(a.data, s[0], s[1], s[2] * s[3], &mut out)?;
    Ok(std::borrow::Cow::Owned(out))
}

/// The row-major (logical order) bytes of a quint8 activation: borrowed when row-major or
/// when it has one channel (both layouts are then the same bytes), transposed from
/// channels-last otherwise.
pub(crate) fn row_major_bytes<'a>(a: &Act<'a>) -> Result<std::borrow::Cow<'a, [u8]>> {
    let s = a.shape();
    if a.q.layout() == Layout::RowMajor || s.get(1) == Some(&1) {
        return Ok(std::borrow::Cow::Borrowed(a.data));
    }
    let mut out = vec![0u8; a.data.len()];
    layout::nhwc_to_nchw(a.data, s[0], s[1], s[2] * s[3], &mut out)?;
    Ok(std::borrow::Cow::Owned(out))
}

/// A per-tensor quint8 tensor from bytes in the memory order of `layout`.
pub(crate) fn quint8_output(
    bytes: Vec<u8>,
    shape: &[usize],
    layout: Layout,
    scale: f64,
    zero_point: i64,
) -> Result<QTensor> {
    Ok(QTensor::from_u8_storage(
        bytes,
        shape,
        layout,
        QDType::QUInt8,
        QParams::PerTensor { scale, zero_point },
    )?)
}

/// A float weight quantized to qint8 as `from_float` does, with its stored qparams.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct QWeight {
    /// The integer weight, PyTorch's weight shape.
    pub weight: Tensor<i8>,
    /// Scales (length 1 per-tensor, O per-channel).
    pub scales: Vec<f64>,
    /// Zero points (same length as `scales`).
    pub zero_points: Vec<i64>,
    /// Channel axis (0) or -1 for per-tensor.
    pub axis: i64,
}

impl QWeight {
    /// Quantizes `w` (first axis = output channels) with `qparams`: per-tensor or per-channel
    /// along axis 0, qint8, as `torch.quantize_per_tensor` / `torch.quantize_per_channel`.
    pub fn quantize(module: &'static str, w: &Tensor<f32>, qparams: &QParams) -> Result<Self> {
        let q = match qparams {
            QParams::PerTensor { scale, zero_point } => {
                check_qparams(module, "weight", *scale, *zero_point, QDType::QInt8)?;
                qtensor::quantize_per_tensor(w, *scale, *zero_point, QDType::QInt8)?
            }
            QParams::PerChannel {
                scales,
                zero_points,
                axis,
            } => {
                if *axis != 0 {
                    return Err(QnnError::InvalidQParams {
                        module,
                        reason: format!("per-channel weight qparams must use axis 0, got {axis}"),
                    });
                }
                qtensor::quantize_per_channel(w, scales, zero_points, 0, QDType::QInt8)?
            }
            QParams::PerChannelFloat { .. } => {
                return Err(QnnError::InvalidQParams {
                    module,
                    reason: "float-qparams weights are for embeddings only".into(),
                });
            }
        };
        let IntRepr::I8(weight) = q.int_repr() else {
            return Err(QnnError::InvalidQParams {
                module,
                reason: "weight did not quantize to qint8".into(),
            });
        };
        let (scales, zero_points, axis) = match qparams {
            QParams::PerTensor { scale, zero_point } => (vec![*scale], vec![*zero_point], -1),
            QParams::PerChannel {
                scales,
                zero_points,
                ..
            } => (scales.clone(), zero_points.clone(), 0),
            QParams::PerChannelFloat { .. } => unreachable!("rejected above"),
        };
        let qw = Self {
            weight,
            scales,
            zero_points,
            axis,
        };
        qw.validate(module)?;
        Ok(qw)
    }

    /// Checks the stored qparams against the weight (after construction or loading).
    pub fn validate(&self, module: &'static str) -> Result<()> {
        let out = self.weight.shape().first().copied().unwrap_or(0);
        let n = match self.axis {
            -1 => 1,
            0 => out,
            a => {
                return Err(QnnError::InvalidQParams {
                    module,
                    reason: format!("weight_axis must be -1 (per-tensor) or 0, got {a}"),
                });
            }
        };
        if self.scales.len() != n || self.zero_points.len() != n {
            return Err(QnnError::InvalidQParams {
                module,
                reason: format!(
                    "expected {n} weight scales and zero points, got {} and {}",
                    self.scales.len(),
                    self.zero_points.len()
                ),
            });
        }
        for (&s, &z) in self.scales.iter().zip(&self.zero_points) {
            check_qparams(module, "weight", s, z, QDType::QInt8)?;
        }
        Ok(())
    }

    /// Whether the weight is per-channel.
    pub fn is_per_channel(&self) -> bool {
        self.axis == 0
    }

    /// `(f32 scales, i32 zero points)` as the kernels take them.
    pub fn kernel_qparams(&self) -> (Vec<f32>, Vec<i32>) {
        (
            self.scales.iter().map(|&s| s as f32).collect(),
            self.zero_points.iter().map(|&z| z as i32).collect(),
        )
    }

    /// The weight as a [`QTensor`] (qint8 with its qparams).
    pub fn to_qtensor(&self) -> Result<QTensor> {
        let qparams = if self.is_per_channel() {
            QParams::PerChannel {
                scales: self.scales.clone(),
                zero_points: self.zero_points.clone(),
                axis: 0,
            }
        } else {
            QParams::PerTensor {
                scale: self.scales[0],
                zero_point: self.zero_points[0],
            }
        };
        let bytes: Vec<u8> = self.weight.data().iter().map(|&v| v as u8).collect();
        Ok(QTensor::from_u8_storage(
            bytes,
            self.weight.shape(),
            Layout::RowMajor,
            QDType::QInt8,
            qparams,
        )?)
    }

    /// Bytes of storage: 1 per weight, 8 + 8 per scale/zero point, 8 for the axis.
    pub fn bytes(&self) -> usize {
        self.weight.numel() + 16 * self.scales.len() + 8
    }
}

/// Checks an optional float bias against the output channel count.
pub(crate) fn check_bias(
    module: &'static str,
    bias: Option<&Tensor<f32>>,
    out: usize,
) -> Result<()> {
    if let Some(b) = bias
        && b.shape() != [out]
    {
        return Err(QnnError::ShapeMismatch {
            what: format!("{module} bias vs output channels"),
            expected: vec![out],
            got: b.shape().to_vec(),
        });
    }
    Ok(())
}

/// The error every quantized module's `backward` returns.
pub(crate) fn not_trainable<T>(module: &'static str) -> Result<T> {
    Err(QnnError::NotTrainable { module })
}

/// Output qparams held by a module (PyTorch's `scale` / `zero_point` attributes), stored as
/// the length-1 vectors the state dict names `scale` and `zero_point`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OutQ {
    /// `[scale]`.
    pub scale: Vec<f64>,
    /// `[zero_point]`.
    pub zero_point: Vec<i64>,
}

impl OutQ {
    /// Checked quint8 output qparams.
    pub fn new(module: &'static str, scale: f64, zero_point: i64) -> Result<Self> {
        check_output_qparams(module, scale, zero_point)?;
        Ok(Self {
            scale: vec![scale],
            zero_point: vec![zero_point],
        })
    }

    /// Re-checks after loading (lengths and values).
    pub fn validate(&self, module: &'static str) -> Result<()> {
        if self.scale.len() != 1 || self.zero_point.len() != 1 {
            return Err(QnnError::InvalidQParams {
                module,
                reason: format!(
                    "output scale and zero point must have one value each, got {} and {}",
                    self.scale.len(),
                    self.zero_point.len()
                ),
            });
        }
        check_output_qparams(module, self.scale[0], self.zero_point[0])
    }

    /// The output scale.
    pub fn scale(&self) -> f64 {
        self.scale.first().copied().unwrap_or(f64::NAN)
    }

    /// The output zero point.
    pub fn zero_point(&self) -> i64 {
        self.zero_point.first().copied().unwrap_or(-1)
    }

    /// In the eltwise kernels' form.
    pub fn elt(&self) -> EltQParams {
        EltQParams {
            scale: self.scale() as f32,
            zero_point: self.zero_point() as i32,
        }
    }

    /// Visits `scale` and `zero_point`.
    pub fn visit(&self, f: &mut dyn FnMut(&str, crate::param::BufferRef<'_>)) {
        f("scale", crate::param::BufferRef::F64s(&self.scale));
        f(
            "zero_point",
            crate::param::BufferRef::I64s(&self.zero_point),
        );
    }

    /// Visits `scale` and `zero_point` mutably.
    pub fn visit_mut(&mut self, f: &mut dyn FnMut(&str, crate::param::BufferMut<'_>)) {
        f("scale", crate::param::BufferMut::F64s(&mut self.scale));
        f(
            "zero_point",
            crate::param::BufferMut::I64s(&mut self.zero_point),
        );
    }

    /// Bytes of storage.
    pub fn bytes(&self) -> usize {
        16
    }
}

impl QWeight {
    /// Visits `weight`, `weight_scale`, `weight_zero_point`, `weight_axis`.
    pub fn visit(&self, f: &mut dyn FnMut(&str, crate::param::BufferRef<'_>)) {
        f("weight", crate::param::BufferRef::I8(&self.weight));
        f("weight_scale", crate::param::BufferRef::F64s(&self.scales));
        f(
            "weight_zero_point",
            crate::param::BufferRef::I64s(&self.zero_points),
        );
        f("weight_axis", crate::param::BufferRef::I64(&self.axis));
    }

    /// Visits the same buffers mutably.
    pub fn visit_mut(&mut self, f: &mut dyn FnMut(&str, crate::param::BufferMut<'_>)) {
        f("weight", crate::param::BufferMut::I8(&mut self.weight));
        f(
            "weight_scale",
            crate::param::BufferMut::F64s(&mut self.scales),
        );
        f(
            "weight_zero_point",
            crate::param::BufferMut::I64s(&mut self.zero_points),
        );
        f("weight_axis", crate::param::BufferMut::I64(&mut self.axis));
    }
}
