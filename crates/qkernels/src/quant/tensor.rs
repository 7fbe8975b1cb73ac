//! [`QTensor`]-level conveniences: the same tensors as `qtensor`'s functions, built with the
//! SIMD kernels where they apply (per-tensor quint8/qint8) and by `qtensor` otherwise.

use std::mem::MaybeUninit;

use qtensor::{IntRepr, Layout, QDType, QParams, QTensor, Tensor};

use super::huge_pages;
use super::level::Level;
use super::{QuantError, Result, as_uninit, run_dequantize, run_quantize, stream_into};

/// A vector of `n` elements, every one written by `fill`, which is told whether to use
/// streaming stores: for outputs of at least [`super::STREAM_MIN_BYTES`] that the allocator
/// handed back already backed by memory (`huge_pages::spare_is_resident`), as for a caller's
/// reused buffer (a 16M-element quantize into reused heap memory: 5.8–6.5 → 5.1–5.8 ms on
/// the session-21 Xeon, three alternated rounds).
///
/// `fill` must write every element of the slice it is given; the callers below pass this
/// module's `run_quantize` / `run_dequantize`, which do.
fn filled<T>(n: usize, fill: impl FnOnce(&mut [MaybeUninit<T>], bool)) -> Vec<T> {
    let mut out = Vec::with_capacity(n);
    let stream = stream_into::<T>(n)
        && huge_pages::spare_is_resident(&out, n.saturating_mul(std::mem::size_of::<T>()));
    huge_pages::advise_spare(&mut out);
    fill(&mut out.spare_capacity_mut()[..n], stream);
    // SAFETY: capacity is at least `n`, and `fill` (a kernel run, see above) initialized all
    // `n` elements.
    unsafe { out.set_len(n) };
    out
}

/// `qtensor::quantize_per_tensor(x, scale, zero_point, dtype)`, equal to it in every field
/// (storage, dtype, shape, layout, qparams) and in every error. quint8 and qint8 run on the
/// dispatched SIMD kernels; qint32 and quint4x2 (and the scalar level) go to `qtensor`.
pub fn quantize_per_tensor_fast(
    x: &Tensor<f32>,
    scale: f64,
    zero_point: i64,
    dtype: QDType,
) -> Result<QTensor> {
    let level = Level::detected();
    let valid =
        scale.is_finite() && scale > 0.0 && (dtype.qmin()..=dtype.qmax()).contains(&zero_point);
    let signed = match dtype {
        QDType::QUInt8 => false,
        QDType::QInt8 => true,
        _ => return Ok(qtensor::quantize_per_tensor(x, scale, zero_point, dtype)?),
    };
    if !valid || level.is_portable() {
        // qtensor reports the error (or is the portable path itself).
        return Ok(qtensor::quantize_per_tensor(x, scale, zero_point, dtype)?);
    }
    // qtensor's per-tensor path: the f32 scale, its f32 reciprocal, an i32 zero point.
    let (inv, zp) = (1.0 / scale as f32, zero_point as i32);
    let src = x.data();
    let bytes = filled(src.len(), |dst, stream| {
        if signed {
            run_quantize::<true>(level, src, inv, zp, dst, stream)
        } else {
            run_quantize::<false>(level, src, inv, zp, dst, stream)
        }
    });
    let qparams = QParams::PerTensor { scale, zero_point };
    Ok(QTensor::from_u8_storage(
        bytes,
        x.shape(),
        x.layout(),
        dtype,
        qparams,
    )?)
}

/// The per-tensor 8-bit storage of `q` as bytes with its `f32` scale and `i32` zero point and
/// whether the bytes are signed; `None` for every other tensor.
fn per_tensor_8bit(q: &QTensor) -> Option<(&[u8], f32, i32, bool)> {
    let QParams::PerTensor { scale, zero_point } = *q.qparams() else {
        return None;
    };
    let (bytes, signed) = match (q.storage(), q.dtype()) {
        (IntRepr::U8(t), QDType::QUInt8) => (t.data(), false),
        (IntRepr::I8(t), QDType::QInt8) => (bytemuck::cast_slice(t.data()), true),
        _ => return None,
    };
    Some((bytes, scale as f32, zero_point as i32, signed))
}

fn dequantize_on(level: Level, src: &[u8], scale: f32, zp: i32, signed: bool) -> Vec<f32> {
    filled(src.len(), |dst, stream| {
        if signed {
            run_dequantize::<true>(level, src, scale, zp, dst, stream)
        } else {
            run_dequantize::<false>(level, src, scale, zp, dst, stream)
        }
    })
}

/// `q.dequantize()`, equal to it bit for bit. Per-tensor quint8/qint8 tensors in row-major
/// layout run on the dispatched SIMD kernels; every other tensor goes to `qtensor`.
pub fn dequantize_fast(q: &QTensor) -> Result<Tensor<f32>> {
    let level = Level::detected();
    match per_tensor_8bit(q) {
        Some((src, scale, zp, signed))
            if q.layout() == Layout::RowMajor && !level.is_portable() =>
        {
            let data = dequantize_on(level, src, scale, zp, signed);
            Ok(Tensor::new(q.shape(), data)?)
        }
        _ => Ok(q.dequantize()),
    }
}

/// `q.dequantize()` written into `dst` in memory order (the data of the tensor
/// [`QTensor::dequantize`] returns), so repeated calls reuse one buffer. Per-tensor
/// quint8/qint8 tensors run on the SIMD kernels without allocating; every other tensor is
/// dequantized by `qtensor` and copied. [`QuantError::LengthMismatch`] unless
/// `dst.len() == q.numel()`.
pub fn dequantize_into(q: &QTensor, dst: &mut [f32]) -> Result<()> {
    if dst.len() != q.numel() {
        return Err(QuantError::LengthMismatch {
            src: q.numel(),
            dst: dst.len(),
        });
    }
    let level = Level::detected();
    let stream = stream_into::<f32>(dst.len());
    match per_tensor_8bit(q) {
        Some((src, scale, zp, true)) => {
            run_dequantize::<true>(level, src, scale, zp, as_uninit(dst), stream)
        }
        Some((src, scale, zp, false)) => {
            run_dequantize::<false>(level, src, scale, zp, as_uninit(dst), stream)
        }
        None => dst.copy_from_slice(q.dequantize().data()),
    }
    Ok(())
}
