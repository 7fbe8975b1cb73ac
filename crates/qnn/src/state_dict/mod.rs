//! State dicts under PyTorch's names: in memory, and as safetensors files that
//! `safetensors.torch.save_file(model.state_dict(), path)` writes and reads.

mod safetensors_io;

pub use safetensors_io::{from_safetensors, load_safetensors, save_safetensors, to_safetensors};

use std::collections::BTreeMap;

use qtensor::Tensor;

use crate::error::{QnnError, Result};
use crate::module::Module;
use crate::param::{BufferMut, BufferRef};

/// One state-dict entry: an f32 tensor (parameters, running statistics) or a 0-d int64 counter.
#[derive(Clone, Debug, PartialEq)]
pub enum StateEntry {
    /// An f32 tensor.
    F32(Tensor<f32>),
    /// A 0-d int64 value such as `num_batches_tracked`.
    I64(i64),
}

impl StateEntry {
    /// The entry's shape (`[]` for a counter).
    pub fn shape(&self) -> Vec<usize> {
        match self {
            StateEntry::F32(t) => t.shape().to_vec(),
            StateEntry::I64(_) => Vec::new(),
        }
    }
}

/// Every parameter and buffer of `model`, by state-dict name (`0.weight`, `1.running_mean`, …).
pub fn state_dict(model: &dyn Module) -> BTreeMap<String, StateEntry> {
    let mut out = BTreeMap::new();
    model.visit_params(&mut |name, p| {
        out.insert(name.to_string(), StateEntry::F32(p.value.clone()));
    });
    model.visit_buffers(&mut |name, b| {
        let e = match b {
            BufferRef::F32(t) => StateEntry::F32(t.clone()),
            BufferRef::I64(v) => StateEntry::I64(*v),
        };
        out.insert(name.to_string(), e);
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
            Some(StateEntry::F32(t)) if t.shape() == p.shape() => p.value = t.clone(),
            Some(e) => record(QnnError::KeyShapeMismatch {
                key: name.into(),
                expected: p.shape().to_vec(),
                got: e.shape(),
            }),
        }
    });
    model.visit_buffers_mut(&mut |name, b| {
        seen.push(name.to_string());
        match (b, dict.get(name)) {
            (b, None) => {
                let expected = match b {
                    BufferMut::F32(t) => t.shape().to_vec(),
                    BufferMut::I64(_) => Vec::new(),
                };
                record(QnnError::MissingKey {
                    key: name.into(),
                    expected,
                });
            }
            (BufferMut::F32(dst), Some(StateEntry::F32(t))) if t.shape() == dst.shape() => {
                *dst = t.clone()
            }
            (BufferMut::I64(dst), Some(StateEntry::I64(v))) => *dst = *v,
            (b, Some(e)) => {
                let expected = match b {
                    BufferMut::F32(t) => t.shape().to_vec(),
                    BufferMut::I64(_) => Vec::new(),
                };
                record(QnnError::KeyShapeMismatch {
                    key: name.into(),
                    expected,
                    got: e.shape(),
                });
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
    Ok(())
}
