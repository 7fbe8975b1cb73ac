//! safetensors files: PyTorch's state-dict names, row-major little-endian data.
//!
//! Loading accepts F32, and widens F16, BF16 and F64 tensors to f32 (as `load_state_dict`
//! copies across dtypes); a 0-d I64 is a counter such as `num_batches_tracked`. Any other dtype
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

/// Serializes a state dict (F32 tensors and 0-d I64 counters) to safetensors bytes.
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
            Dtype::F64 => widen::<8>(data, |b| f64::from_le_bytes(b) as f32),
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

/// Writes `model`'s state dict to a safetensors file.
pub fn save_safetensors(model: &dyn Module, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let bytes = to_safetensors(&state_dict(model))?;
    std::fs::write(path, bytes).map_err(|e| QnnError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
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
