//! The quantized tensor type, its accessors and layout conversions.

mod channels;
mod dequantize;
mod nibbles;
mod quantize;
pub(crate) mod validate;

pub(crate) use channels::for_each_channel_block;
pub use quantize::{
    choose_qparams_per_tensor, quantize_per_channel, quantize_per_channel_float_qparams,
    quantize_per_tensor, quantize_per_tensor_dynamic,
};

use crate::dtype::QDType;
use crate::error::{QTensorError, Result};
use crate::qscheme::{QParams, QScheme};
use crate::tensor::{Layout, Tensor, checked_numel};

/// The raw integer storage of a [`QTensor`], as `int_repr()` returns it.
#[derive(Clone, Debug, PartialEq)]
pub enum IntRepr {
    /// quint8 values (logical shape), or quint4x2 packed bytes (shape `[ceil(numel / 2)]`).
    U8(Tensor<u8>),
    /// qint8 values.
    I8(Tensor<i8>),
    /// qint32 values.
    I32(Tensor<i32>),
}

/// A quantized tensor: integer storage, dtype, logical shape, layout and qparams.
#[derive(Clone, Debug, PartialEq)]
pub struct QTensor {
    repr: IntRepr,
    dtype: QDType,
    shape: Vec<usize>,
    layout: Layout,
    qparams: QParams,
}

/// Builds the storage of `dtype` from in-range integer values in memory order.
fn repr_from_values(shape: &[usize], layout: Layout, values: &[i32], dtype: QDType) -> IntRepr {
    match dtype {
        QDType::QUInt8 => IntRepr::U8(Tensor::from_parts(
            shape,
            values.iter().map(|&v| v as u8).collect(),
            layout,
        )),
        QDType::QInt8 => IntRepr::I8(Tensor::from_parts(
            shape,
            values.iter().map(|&v| v as i8).collect(),
            layout,
        )),
        QDType::QInt32 => IntRepr::I32(Tensor::from_parts(shape, values.to_vec(), layout)),
        QDType::QUInt4x2 => {
            let packed = nibbles::pack(values);
            IntRepr::U8(Tensor::from_parts(
                &[packed.len()],
                packed,
                Layout::RowMajor,
            ))
        }
    }
}

impl QTensor {
    /// Assembles a quantized tensor from parts the caller has already validated.
    pub(crate) fn from_parts(
        repr: IntRepr,
        dtype: QDType,
        shape: &[usize],
        layout: Layout,
        qparams: QParams,
    ) -> Self {
        Self {
            repr,
            dtype,
            shape: shape.to_vec(),
            layout,
            qparams,
        }
    }

    /// Wraps raw integers (row-major) like `torch._make_per_tensor_quantized_tensor` /
    /// `_make_per_channel_quantized_tensor`. Values outside the dtype range, bad qparams or a
    /// length that does not match `shape` are errors.
    pub fn from_int_values(
        shape: &[usize],
        values: &[i32],
        dtype: QDType,
        qparams: QParams,
    ) -> Result<Self> {
        if checked_numel(shape) != Some(values.len()) {
            return Err(QTensorError::ShapeMismatch {
                expected: shape.to_vec(),
                got: vec![values.len()],
            });
        }
        validate::check_qparams(shape, dtype, &qparams)?;
        let (qmin, qmax) = dtype.range_i32();
        if let Some((index, &value)) = values
            .iter()
            .enumerate()
            .find(|(_, v)| !(qmin..=qmax).contains(*v))
        {
            return Err(QTensorError::ValueOutOfRange {
                value: i64::from(value),
                index,
                qmin: i64::from(qmin),
                qmax: i64::from(qmax),
            });
        }
        let repr = repr_from_values(shape, Layout::RowMajor, values, dtype);
        Ok(Self::from_parts(
            repr,
            dtype,
            shape,
            Layout::RowMajor,
            qparams,
        ))
    }

    /// Wraps 8-bit storage without copying it: `bytes` are the quint8 values, or the qint8
    /// values as two's-complement bytes, in the memory order of `layout` (every byte is a
    /// valid value of both dtypes). For producers of storage outside this crate, such as the
    /// SIMD quantize kernels of `qkernels`.
    ///
    /// Errors: a dtype other than quint8/qint8 (`Unsupported`), a byte count that differs from
    /// the element count of `shape` (`ShapeMismatch`), channels-last on a shape that is not
    /// 4-D (`Unsupported`), or qparams that [`QTensor::from_int_values`] would reject.
    ///
    /// ```
    /// use qtensor::{Layout, QDType, QParams, QTensor};
    /// let qparams = QParams::PerTensor { scale: 0.5, zero_point: -1 };
    /// let q = QTensor::from_u8_storage(vec![0xff, 3], &[2], Layout::RowMajor, QDType::QInt8, qparams)?;
    /// assert_eq!(q.int_values(), vec![-1, 3]);
    /// assert!(QTensor::from_u8_storage(vec![0; 3], &[2], Layout::RowMajor, QDType::QUInt8,
    ///     QParams::PerTensor { scale: 1.0, zero_point: 0 }).is_err());
    /// # Ok::<(), qtensor::QTensorError>(())
    /// ```
    pub fn from_u8_storage(
        bytes: Vec<u8>,
        shape: &[usize],
        layout: Layout,
        dtype: QDType,
        qparams: QParams,
    ) -> Result<Self> {
        if !matches!(dtype, QDType::QUInt8 | QDType::QInt8) {
            return Err(QTensorError::Unsupported(format!(
                "from_u8_storage needs quint8 or qint8, got {dtype}"
            )));
        }
        if checked_numel(shape) != Some(bytes.len()) {
            return Err(QTensorError::ShapeMismatch {
                expected: shape.to_vec(),
                got: vec![bytes.len()],
            });
        }
        if layout == Layout::ChannelsLast && shape.len() != 4 {
            return Err(QTensorError::Unsupported(format!(
                "channels-last needs a 4-D tensor, got shape {shape:?}"
            )));
        }
        validate::check_qparams(shape, dtype, &qparams)?;
        let repr = if dtype == QDType::QUInt8 {
            IntRepr::U8(Tensor::from_parts(shape, bytes, layout))
        } else {
            let values: Vec<i8> = bytemuck::allocation::cast_vec(bytes);
            IntRepr::I8(Tensor::from_parts(shape, values, layout))
        };
        Ok(Self::from_parts(repr, dtype, shape, layout, qparams))
    }

    /// The quantized dtype.
    pub fn dtype(&self) -> QDType {
        self.dtype
    }

    /// The logical shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of logical elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The memory-order tag.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The stored quantization parameters.
    pub fn qparams(&self) -> &QParams {
        &self.qparams
    }

    /// The scheme of the stored parameters (always an affine one, as in torch).
    pub fn qscheme(&self) -> QScheme {
        self.qparams.qscheme()
    }

    /// The raw storage, borrowed (see [`QTensor::int_repr`]).
    pub fn storage(&self) -> &IntRepr {
        &self.repr
    }

    /// A copy of the raw storage; quint4x2 gives the packed bytes, shape `[ceil(numel / 2)]`.
    pub fn int_repr(&self) -> IntRepr {
        self.repr.clone()
    }

    /// One integer per element, in memory order (quint4x2 unpacked).
    pub fn int_values(&self) -> Vec<i32> {
        match &self.repr {
            IntRepr::U8(t) if self.dtype == QDType::QUInt4x2 => {
                nibbles::unpack(t.data(), self.numel())
            }
            IntRepr::U8(t) => t.data().iter().map(|&v| i32::from(v)).collect(),
            IntRepr::I8(t) => t.data().iter().map(|&v| i32::from(v)).collect(),
            IntRepr::I32(t) => t.data().to_vec(),
        }
    }

    /// The per-tensor scale; `Unsupported` for per-channel tensors.
    pub fn q_scale(&self) -> Result<f64> {
        match self.qparams {
            QParams::PerTensor { scale, .. } => Ok(scale),
            _ => Err(self.not_per_tensor("q_scale")),
        }
    }

    /// The per-tensor zero point; `Unsupported` for per-channel tensors.
    pub fn q_zero_point(&self) -> Result<i64> {
        match self.qparams {
            QParams::PerTensor { zero_point, .. } => Ok(zero_point),
            _ => Err(self.not_per_tensor("q_zero_point")),
        }
    }

    /// The per-channel scales (float qparams widened to `f64`); `Unsupported` if per-tensor.
    pub fn q_per_channel_scales(&self) -> Result<Vec<f64>> {
        match &self.qparams {
            QParams::PerChannel { scales, .. } => Ok(scales.clone()),
            QParams::PerChannelFloat { scales, .. } => {
                Ok(scales.iter().map(|&s| f64::from(s)).collect())
            }
            QParams::PerTensor { .. } => Err(self.not_per_channel("q_per_channel_scales")),
        }
    }

    /// The per-channel zero points as `f64` (integers exactly, float zero points widened).
    pub fn q_per_channel_zero_points(&self) -> Result<Vec<f64>> {
        match &self.qparams {
            QParams::PerChannel { zero_points, .. } => {
                Ok(zero_points.iter().map(|&z| z as f64).collect())
            }
            QParams::PerChannelFloat { zero_points, .. } => {
                Ok(zero_points.iter().map(|&z| f64::from(z)).collect())
            }
            QParams::PerTensor { .. } => Err(self.not_per_channel("q_per_channel_zero_points")),
        }
    }

    /// The channel axis; `Unsupported` if per-tensor.
    pub fn q_per_channel_axis(&self) -> Result<usize> {
        match &self.qparams {
            QParams::PerChannel { axis, .. } | QParams::PerChannelFloat { axis, .. } => Ok(*axis),
            QParams::PerTensor { .. } => Err(self.not_per_channel("q_per_channel_axis")),
        }
    }

    /// Dequantizes, then quantizes per-tensor with new parameters
    /// (what `torch.quantize_per_tensor(q.dequantize(), ..)` gives).
    pub fn requantize(&self, scale: f64, zero_point: i64, dtype: QDType) -> Result<QTensor> {
        quantize_per_tensor(&self.dequantize(), scale, zero_point, dtype)
    }

    /// Reorders a 4-D tensor into NHWC memory (see [`Tensor::to_channels_last`]).
    pub fn to_channels_last(&self) -> Result<QTensor> {
        self.relayout(
            Tensor::to_channels_last,
            Tensor::to_channels_last,
            Tensor::to_channels_last,
        )
    }

    /// Reorders a channels-last tensor back into row-major memory.
    pub fn to_row_major(&self) -> Result<QTensor> {
        self.relayout(
            Tensor::to_row_major,
            Tensor::to_row_major,
            Tensor::to_row_major,
        )
    }

    fn relayout(
        &self,
        u8_op: fn(&Tensor<u8>) -> Result<Tensor<u8>>,
        i8_op: fn(&Tensor<i8>) -> Result<Tensor<i8>>,
        i32_op: fn(&Tensor<i32>) -> Result<Tensor<i32>>,
    ) -> Result<QTensor> {
        if self.dtype == QDType::QUInt4x2 {
            return Err(QTensorError::Unsupported(
                "layout changes are not supported for packed quint4x2 tensors".into(),
            ));
        }
        let repr = match &self.repr {
            IntRepr::U8(t) => IntRepr::U8(u8_op(t)?),
            IntRepr::I8(t) => IntRepr::I8(i8_op(t)?),
            IntRepr::I32(t) => IntRepr::I32(i32_op(t)?),
        };
        let layout = match &repr {
            IntRepr::U8(t) => t.layout(),
            IntRepr::I8(t) => t.layout(),
            IntRepr::I32(t) => t.layout(),
        };
        Ok(Self::from_parts(
            repr,
            self.dtype,
            &self.shape,
            layout,
            self.qparams.clone(),
        ))
    }

    fn not_per_tensor(&self, what: &str) -> QTensorError {
        QTensorError::Unsupported(format!(
            "{what} needs a per-tensor quantized tensor, this one is {:?}",
            self.qscheme()
        ))
    }

    fn not_per_channel(&self, what: &str) -> QTensorError {
        QTensorError::Unsupported(format!(
            "{what} needs a per-channel quantized tensor, this one is {:?}",
            self.qscheme()
        ))
    }
}
