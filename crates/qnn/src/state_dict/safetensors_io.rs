//! safetensors files: PyTorch's state-dict names, row-major little-endian data.
//!
//! Loading accepts F32, and widens F16 and BF16 tensors to f32 (as `load_state_dict` copies
//! across dtypes); F64 tensors are kept as 1-d f64 vectors (scales) when 1-d and narrowed to f32
//! otherwise; a 0-d I64 is a counter such as `num_batches_tracked`, a 1-d I64 a zero-point
//! vector; I8, U8 and I32 tensors are the integer storage of quantized modules. Any other dtype
//! is [`QnnError::UnsupportedDtype`], naming the key.

use std::collections::BTreeMap;
use std::path::Path;

use half::{bf16, f16};
use qtensor::Tensor;
use safetensors::tensor::{Dtype, TensorView};
use safetensors::{SafeTensors, serialize};

use super::{StateEntry, load_state_dict, state_dict};
use crate::error::{QnnError, Result};
use crate::module::Module;

fn st_err(e: impl std::fmt::Display) -> QnnError {
    QnnError::SafeTensors(e.to_string())
}

/// Serializes a state dict to safetensors bytes (little-endian, row-major).
pub fn to_safetensors(dict: &BTreeMap<String, StateEntry>) -> Result<Vec<u8>> {
    let owned: Vec<(&String, Dtype, Vec<usize>, Vec<u8>)> = dict
        .iter()
        .map(|(k, e)| match e {
            StateEntry::F32(t) => {
                let t = t.to_row_major()?;
                let bytes = t.data().iter().flat_map(|v| v.to_le_bytes()).collect();
                Ok((k, Dtype::F32, t.shape().to_vec(), bytes))
            }
            StateEntry::I64(v) => Ok((k, Dtype::I64, Vec::new(), v.to_le_bytes().to_vec())),
            StateEntry::I8(t) => {
                let t = t.to_row_major()?;
                let bytes = t.data().iter().flat_map(|v| v.to_le_bytes()).collect();
                Ok((k, Dtype::I8, t.shape().to_vec(), bytes))
            }
            StateEntry::U8(t) => {
                let t = t.to_row_major()?;
                Ok((k, Dtype::U8, t.shape().to_vec(), t.data().to_vec()))
            }
            StateEntry::I32(t) => {
                let t = t.to_row_major()?;
                let bytes = t.data().iter().flat_map(|v| v.to_le_bytes()).collect();
                Ok((k, Dtype::I32, t.shape().to_vec(), bytes))
            }
            StateEntry::F64s(v) => {
                let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                Ok((k, Dtype::F64, vec![v.len()], bytes))
            }
            StateEntry::I64s(v) => {
                let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                Ok((k, Dtype::I64, vec![v.len()], bytes))
            }
        })
        .collect::<Result<_>>()?;
    let views = owned
        .iter()
        .map(|(k, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (k.as_str(), v))
                .map_err(st_err)
        })
        .collect::<Result<Vec<_>>>()?;
    serialize(views, None).map_err(st_err)
}

/// Widens little-endian elements of `N` bytes to f32.
fn widen<const N: usize>(data: &[u8], f: impl Fn([u8; N]) -> f32) -> Vec<f32> {
    data.chunks_exact(N)
        .map(|c| f(c.try_into().unwrap_or([0; N])))
        .collect()
}

/// Decodes little-endian elements of `N` bytes.
fn decode<const N: usize, T>(data: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    data.chunks_exact(N)
        .map(|c| f(c.try_into().unwrap_or([0; N])))
        .collect()
}

/// Parses safetensors bytes into a state dict.
pub fn from_safetensors(bytes: &[u8]) -> Result<BTreeMap<String, StateEntry>> {
    let st = SafeTensors::deserialize(bytes).map_err(st_err)?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let data = view.data();
        let values = match view.dtype() {
            Dtype::F32 => widen::<4>(data, f32::from_le_bytes),
            Dtype::F16 => widen::<2>(data, |b| f16::from_le_bytes(b).to_f32()),
            Dtype::BF16 => widen::<2>(data, |b| bf16::from_le_bytes(b).to_f32()),
            Dtype::F64 if shape.len() == 1 => {
                out.insert(
                    name,
                    StateEntry::F64s(decode::<8, f64>(data, f64::from_le_bytes)),
                );
                continue;
            }
            Dtype::F64 => widen::<8>(data, |b| f64::from_le_bytes(b) as f32),
            Dtype::I64 if shape.len() == 1 => {
                out.insert(
                    name,
                    StateEntry::I64s(decode::<8, i64>(data, i64::from_le_bytes)),
                );
                continue;
            }
            Dtype::I8 => {
                let v = decode::<1, i8>(data, i8::from_le_bytes);
                out.insert(name, StateEntry::I8(Tensor::new(&shape, v)?));
                continue;
            }
            Dtype::U8 => {
                out.insert(name, StateEntry::U8(Tensor::new(&shape, data.to_vec())?));
                continue;
            }
            Dtype::I32 => {
                let v = decode::<4, i32>(data, i32::from_le_bytes);
                out.insert(name, StateEntry::I32(Tensor::new(&shape, v)?));
                continue;
            }
            Dtype::I64 if shape.is_empty() => {
                let v = data
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map(i64::from_le_bytes)
                    .ok_or_else(|| {
                        st_err(format!(
                            "`{name}`: 0-d I64 needs 8 bytes, has {}",
                            data.len()
                        ))
                    })?;
                out.insert(name, StateEntry::I64(v));
                continue;
            }
            other => {
                return Err(QnnError::UnsupportedDtype {
                    key: name,
                    dtype: format!("{other:?} with shape {shape:?}"),
                });
            }
        };
        out.insert(name, StateEntry::F32(Tensor::new(&shape, values)?));
    }
    Ok(out)
}

/// Writes `model`'s state dict to a safetensors file, atomically ([`super::write_atomic`]:
/// a failed save leaves any previous file intact and no partial file behind).
pub fn save_safetensors(model: &dyn Module, path: impl AsRef<Path>) -> Result<()> {
    let bytes = to_safetensors(&state_dict(model))?;
    super::write_atomic(path, &bytes)
}

/// Loads a safetensors file into `model` (see [`load_state_dict`] for the key and shape checks).
pub fn load_safetensors(
    model: &mut dyn Module,
    path: impl AsRef<Path>,
    strict: bool,
) -> Result<()> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| QnnError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    load_state_dict(model, &from_safetensors(&bytes)?, strict)
}
