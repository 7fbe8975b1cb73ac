//! State dicts under PyTorch's names: in memory, and as safetensors files that
//! `safetensors.torch.save_file(model.state_dict(), path)` writes and reads.

mod atomic;
mod safetensors_io;

pub use atomic::write_atomic;

pub use safetensors_io::{from_safetensors, load_safetensors, save_safetensors, to_safetensors};

use std::collections::BTreeMap;

use qtensor::Tensor;

use crate::error::{QnnError, Result};
use crate::module::Module;
use crate::param::{BufferMut, BufferRef};

/// One state-dict entry: an f32 tensor (parameters, running statistics), a 0-d int64 counter,
/// or the integer tensors and 1-d scale / zero-point vectors of quantized modules.
#[derive(Clone, Debug, PartialEq)]
pub enum StateEntry {
    /// An f32 tensor.
    F32(Tensor<f32>),
    /// A 0-d int64 value such as `num_batches_tracked`.
    I64(i64),
    /// An int8 tensor (quantized weights).
    I8(Tensor<i8>),
    /// A uint8 tensor.
    U8(Tensor<u8>),
    /// An int32 tensor.
    I32(Tensor<i32>),
    /// 1-d f64 values (scales).
    F64s(Vec<f64>),
    /// 1-d i64 values (zero points).
    I64s(Vec<i64>),
}

impl StateEntry {
    /// The entry's shape (`[]` for a counter, `[len]` for the 1-d vectors).
    pub fn shape(&self) -> Vec<usize> {
        match self {
            StateEntry::F32(t) => t.shape().to_vec(),
            StateEntry::I64(_) => Vec::new(),
            StateEntry::I8(t) => t.shape().to_vec(),
            StateEntry::U8(t) => t.shape().to_vec(),
            StateEntry::I32(t) => t.shape().to_vec(),
            StateEntry::F64s(v) => vec![v.len()],
            StateEntry::I64s(v) => vec![v.len()],
        }
    }

    /// The dtype name used in error messages.
    pub fn dtype_name(&self) -> &'static str {
        match self {
            StateEntry::F32(_) => "f32",
            StateEntry::I64(_) => "i64 scalar",
            StateEntry::I8(_) => "i8",
            StateEntry::U8(_) => "u8",
            StateEntry::I32(_) => "i32",
            StateEntry::F64s(_) => "f64",
            StateEntry::I64s(_) => "i64",
        }
    }

    /// The entry as the f32 values of a parameter: F32 as is, 1-d F64 narrowed (as PyTorch's
    /// `load_state_dict` copies a double tensor into a float parameter).
    fn as_f32_tensor(&self) -> Option<Tensor<f32>> {
        match self {
            StateEntry::F32(t) => Some(t.clone()),
            StateEntry::F64s(v) => {
                Tensor::new(&[v.len()], v.iter().map(|&x| x as f32).collect()).ok()
            }
            _ => None,
        }
    }
}

impl From<BufferRef<'_>> for StateEntry {
    fn from(b: BufferRef<'_>) -> Self {
        match b {
            BufferRef::F32(t) => StateEntry::F32(t.clone()),
            BufferRef::I64(v) => StateEntry::I64(*v),
            BufferRef::I8(t) => StateEntry::I8(t.clone()),
            BufferRef::U8(t) => StateEntry::U8(t.clone()),
            BufferRef::I32(t) => StateEntry::I32(t.clone()),
            BufferRef::F64s(v) => StateEntry::F64s(v.to_vec()),
            BufferRef::I64s(v) => StateEntry::I64s(v.to_vec()),
        }
    }
}

/// Writes `entry` into `dst` when kind and shape agree; `false` otherwise.
fn store(dst: BufferMut<'_>, entry: &StateEntry) -> bool {
    let same = dst.shape() == entry.shape();
    match (dst, entry) {
        (BufferMut::F32(d), e) if same => match e.as_f32_tensor() {
            Some(t) => {
                *d = t;
                true
            }
            None => false,
        },
        (BufferMut::I64(d), StateEntry::I64(v)) => {
            *d = *v;
            true
        }
        (BufferMut::I8(d), StateEntry::I8(t)) if same => {
            *d = t.clone();
            true
        }
        (BufferMut::U8(d), StateEntry::U8(t)) if same => {
            *d = t.clone();
            true
        }
        (BufferMut::I32(d), StateEntry::I32(t)) if same => {
            *d = t.clone();
            true
        }
        (BufferMut::F64s(d), StateEntry::F64s(v)) if same => {
            d.clone_from(v);
            true
        }
        (BufferMut::I64s(d), StateEntry::I64s(v)) if same => {
            d.clone_from(v);
            true
        }
        _ => false,
    }
}

/// Every parameter and buffer of `model`, by state-dict name (`0.weight`, `1.running_mean`, …).
pub fn state_dict(model: &dyn Module) -> BTreeMap<String, StateEntry> {
    let mut out = BTreeMap::new();
    model.visit_params(&mut |name, p| {
        out.insert(name.to_string(), StateEntry::F32(p.value.clone()));
    });
    model.visit_buffers(&mut |name, b| {
        out.insert(name.to_string(), StateEntry::from(b));
    });
    out
}

/// Copies `dict` into `model`. Every key of the model must be present with the model's shape
/// ([`QnnError::MissingKey`], [`QnnError::KeyShapeMismatch`]); with `strict`, a key the model does
/// not have is [`QnnError::UnexpectedKey`]. On error the model may be partially updated.
pub fn load_state_dict(
    model: &mut dyn Module,
    dict: &BTreeMap<String, StateEntry>,
    strict: bool,
) -> Result<()> {
    let mut first_err: Option<QnnError> = None;
    let mut seen = Vec::new();
    let mut record = |e: QnnError| {
        if first_err.is_none() {
            first_err = Some(e);
        }
    };
    model.visit_params_mut(&mut |name, p| {
        seen.push(name.to_string());
        match dict.get(name) {
            None => record(QnnError::MissingKey {
                key: name.into(),
                expected: p.shape().to_vec(),
            }),
            Some(e) if e.shape() == p.shape() && e.as_f32_tensor().is_some() => {
                if let Some(t) = e.as_f32_tensor() {
                    p.value = t;
                }
            }
            Some(e) => record(QnnError::KeyShapeMismatch {
                key: name.into(),
                expected: p.shape().to_vec(),
                got: e.shape(),
            }),
        }
    });
    model.visit_buffers_mut(&mut |name, b| {
        seen.push(name.to_string());
        let expected = b.shape();
        let expected_dtype = b.dtype_name();
        match dict.get(name) {
            None => record(QnnError::MissingKey {
                key: name.into(),
                expected,
            }),
            Some(e) => {
                if !store(b, e) {
                    if e.shape() == expected {
                        record(QnnError::KeyDtypeMismatch {
                            key: name.into(),
                            expected: expected_dtype,
                            got: e.dtype_name(),
                        });
                    } else {
                        record(QnnError::KeyShapeMismatch {
                            key: name.into(),
                            expected,
                            got: e.shape(),
                        });
                    }
                }
            }
        }
    });
    if let Some(e) = first_err {
        return Err(e);
    }
    if strict && let Some((key, e)) = dict.iter().find(|(k, _)| !seen.contains(k)) {
        return Err(QnnError::UnexpectedKey {
            key: key.clone(),
            shape: e.shape(),
        });
    }
    model.after_load()
}
