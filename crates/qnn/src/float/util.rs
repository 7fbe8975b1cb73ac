//! Small helpers shared by the float layers.

use qtensor::{Layout, Tensor};

use crate::error::{QnnError, Result};
use crate::value::Value;

/// The f32 tensor of `value` in row-major memory order (channels-last inputs are reordered).
pub(crate) fn f32_input(value: &Value, module: &'static str) -> Result<Tensor<f32>> {
    let t = value.as_f32(module)?;
    if t.layout() == Layout::RowMajor {
        Ok(t.clone())
    } else {
        Ok(t.to_row_major()?)
    }
}

/// Like [`f32_input`], borrowing the tensor when it is already row-major (no copy).
pub(crate) fn f32_input_ref<'a>(
    value: &'a Value,
    module: &'static str,
) -> Result<std::borrow::Cow<'a, Tensor<f32>>> {
    let t = value.as_f32(module)?;
    if t.layout() == Layout::RowMajor {
        Ok(std::borrow::Cow::Borrowed(t))
    } else {
        Ok(std::borrow::Cow::Owned(t.to_row_major()?))
    }
}

/// Keeps `x` in `slot` for a later backward. When `slot` already holds a row-major tensor of
/// the same shape (the previous call's input), its buffer is overwritten in place: for large
/// convolution inputs a fresh allocation per call costs more in page faults than the copy.
pub(crate) fn save_input(slot: &mut Option<Tensor<f32>>, x: std::borrow::Cow<'_, Tensor<f32>>) {
    match slot {
        Some(saved) if saved.shape() == x.shape() && saved.layout() == x.layout() => {
            saved.data_mut().copy_from_slice(x.data());
        }
        _ => *slot = Some(x.into_owned()),
    }
}

/// Like [`f32_input`], for a gradient that must have the shape of the saved output.
pub(crate) fn f32_grad(
    value: &Value,
    module: &'static str,
    expected: &[usize],
) -> Result<Tensor<f32>> {
    let g = f32_input(value, module)?;
    same_shape(
        &format!("{module} gradient vs forward output"),
        expected,
        g.shape(),
    )?;
    Ok(g)
}

/// `ShapeMismatch` unless `got == expected`.
pub(crate) fn same_shape(what: &str, expected: &[usize], got: &[usize]) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(QnnError::ShapeMismatch {
            what: what.to_string(),
            expected: expected.to_vec(),
            got: got.to_vec(),
        })
    }
}

/// Wraps row-major data known to have `shape`'s element count.
pub(crate) fn tensor(shape: &[usize], data: Vec<f32>) -> Result<Tensor<f32>> {
    Ok(Tensor::new(shape, data)?)
}

/// Resolves a PyTorch-style dimension index (negative counts from the end).
pub(crate) fn resolve_dim(module: &'static str, dim: isize, ndim: usize) -> Result<usize> {
    let n = ndim as isize;
    let d = if dim < 0 { dim + n } else { dim };
    if (0..n).contains(&d) {
        Ok(d as usize)
    } else {
        Err(QnnError::DimOutOfRange { module, dim, ndim })
    }
}

/// Splits a shape around `dim` into `(outer, size, inner)`.
pub(crate) fn split_at_dim(shape: &[usize], dim: usize) -> (usize, usize, usize) {
    let outer = shape[..dim].iter().product();
    let inner = shape[dim + 1..].iter().product();
    (outer, shape[dim], inner)
}

/// `BackwardBeforeForward` for a missing saved activation.
pub(crate) fn saved<'a, T>(slot: &'a Option<T>, module: &'static str) -> Result<&'a T> {
    slot.as_ref()
        .ok_or(QnnError::BackwardBeforeForward { module })
}
