//! [`Model`]: what the commands evaluate, benchmark and save, whatever its numeric format.
//! [`FloatModel`] wraps a qnn module in fp32 or fp16; the int8 modes of
//! [`crate::quantize`] will return their own implementations.

use std::collections::BTreeMap;
use std::path::Path;

use half::f16;
use qnn::state_dict::{
    StateEntry, from_safetensors, load_state_dict, state_dict, to_safetensors,
    to_safetensors_compact,
};
use qnn::{Module, Value};
use qtensor::Tensor;
use safetensors::tensor::{Dtype, TensorView};

use crate::data::InputLayout;
use crate::error::{CliError, Result};
use crate::fsio::write_atomic;
use crate::zoo::Arch;

/// An inference model: logits from a normalized batch, and a file form.
pub trait Model {
    /// Short label for tables (`fp32`, `fp16`, `static int8`, …).
    fn label(&self) -> &str;
    /// The input layout it expects.
    fn input_layout(&self) -> InputLayout;
    /// Logits `[B, 10]` for a batch in [`Model::input_layout`].
    fn predict(&mut self, x: &Tensor<f32>) -> Result<Tensor<f32>>;
    /// Writes the model to `path` (whole or not at all); returns the file size in bytes.
    fn save(&self, path: &Path) -> Result<u64>;
}

/// Numeric format of a [`FloatModel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatFormat {
    /// f32 weights.
    Fp32,
    /// f16 weights (`Module::half()`), f32 activations and accumulation.
    Fp16,
}

/// A qnn float module in eval mode, fp32 or fp16.
pub struct FloatModel {
    module: Box<dyn Module>,
    arch: Arch,
    format: FloatFormat,
}

impl FloatModel {
    /// Wraps a trained fp32 module of architecture `arch` (switched to eval mode).
    pub fn fp32(mut module: Box<dyn Module>, arch: Arch) -> Self {
        module.eval();
        Self {
            module,
            arch,
            format: FloatFormat::Fp32,
        }
    }

    /// The architecture.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// Converts to fp16 weights (PyTorch's `model.half()` for inference).
    pub fn into_fp16(mut self) -> Result<Self> {
        self.module.half()?;
        self.format = FloatFormat::Fp16;
        Ok(self)
    }

    /// The numeric format.
    pub fn format(&self) -> FloatFormat {
        self.format
    }

    /// The wrapped module.
    pub fn module(&self) -> &dyn Module {
        self.module.as_ref()
    }
}

impl Model for FloatModel {
    fn label(&self) -> &str {
        match self.format {
            FloatFormat::Fp32 => "fp32",
            FloatFormat::Fp16 => "fp16",
        }
    }

    fn input_layout(&self) -> InputLayout {
        self.arch.input_layout()
    }

    fn predict(&mut self, x: &Tensor<f32>) -> Result<Tensor<f32>> {
        Ok(self
            .module
            .forward(&Value::F32(x.clone()))?
            .into_f32("model output")?)
    }

    fn save(&self, path: &Path) -> Result<u64> {
        let f16_weights = self.format == FloatFormat::Fp16;
        save_state_dict(&state_dict(self.module.as_ref()), f16_weights, path)
    }
}

/// A quantized qnn module or graph (what the int8 flows build), in eval mode.
pub struct QuantizedModel {
    module: Box<dyn Module>,
    arch: Arch,
    label: &'static str,
}

impl QuantizedModel {
    /// Wraps a converted module of architecture `arch` under the table label `label`.
    pub fn new(mut module: Box<dyn Module>, arch: Arch, label: &'static str) -> Self {
        module.eval();
        Self {
            module,
            arch,
            label,
        }
    }
}

impl Model for QuantizedModel {
    fn label(&self) -> &str {
        self.label
    }

    fn input_layout(&self) -> InputLayout {
        self.arch.input_layout()
    }

    fn predict(&mut self, x: &Tensor<f32>) -> Result<Tensor<f32>> {
        Ok(self
            .module
            .forward(&Value::F32(x.clone()))?
            .into_f32("model output")?)
    }

    /// Scales and zero points are stored in their narrowest lossless dtype
    /// ([`to_safetensors_compact`]: f32 scales, i8 zero points), which loading widens back.
    fn save(&self, path: &Path) -> Result<u64> {
        write_atomic(
            path,
            &to_safetensors_compact(&state_dict(self.module.as_ref()))?,
        )
    }
}

/// Serializes `dict` as safetensors (PyTorch names). With `f16_weights`, tensors of rank ≥ 2
/// whose values are all exact f16 numbers (the weights `Module::half()` stored in f16) are
/// written as F16, everything else as F32: lossless, and loading widens F16 back to f32.
pub fn save_state_dict(
    dict: &BTreeMap<String, StateEntry>,
    f16_weights: bool,
    path: &Path,
) -> Result<u64> {
    if !f16_weights {
        return write_atomic(path, &to_safetensors(dict)?);
    }
    let st_err = |e: safetensors::SafeTensorError| CliError::Weights {
        path: path.to_path_buf(),
        reason: format!("cannot serialize: {e}"),
    };
    let mut owned: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (k, e) in dict {
        match e {
            StateEntry::F32(t) => {
                let t = t.to_row_major().map_err(qnn::QnnError::from)?;
                let exact_f16 = t.data().iter().all(|v| f16::from_f32(*v).to_f32() == *v);
                let (dtype, bytes) = if t.ndim() >= 2 && exact_f16 {
                    let b = t
                        .data()
                        .iter()
                        .flat_map(|v| f16::from_f32(*v).to_le_bytes())
                        .collect();
                    (Dtype::F16, b)
                } else {
                    let b = t.data().iter().flat_map(|v| v.to_le_bytes()).collect();
                    (Dtype::F32, b)
                };
                owned.push((k, dtype, t.shape().to_vec(), bytes));
            }
            StateEntry::I64(v) => owned.push((k, Dtype::I64, Vec::new(), v.to_le_bytes().to_vec())),
            other => {
                return Err(CliError::Weights {
                    path: path.to_path_buf(),
                    reason: format!(
                        "`{k}` is a {} tensor; fp16 files hold float models only",
                        other.dtype_name()
                    ),
                });
            }
        }
    }
    let views = owned
        .iter()
        .map(|(k, d, s, b)| TensorView::new(*d, s.clone(), b).map(|v| (*k, v)))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(st_err)?;
    let bytes = safetensors::serialize(views, None).map_err(st_err)?;
    write_atomic(path, &bytes)
}

/// Builds `arch` and loads the safetensors state dict at `path` into it (strict: every key
/// present with the right shape, no extra keys). Errors name the file and the offending key.
pub fn load_weights(arch: Arch, path: &Path) -> Result<Box<dyn Module>> {
    let bytes = std::fs::read(path).map_err(|e| CliError::io(path, &e))?;
    let dict = from_safetensors(&bytes).map_err(|e| CliError::Weights {
        path: path.to_path_buf(),
        reason: format!("not a valid safetensors file: {e}"),
    })?;
    let mut model = arch.build(0)?;
    load_state_dict(model.as_mut(), &dict, true).map_err(|e| CliError::Weights {
        path: path.to_path_buf(),
        reason: format!("does not fit the {} architecture: {e}", arch.name()),
    })?;
    Ok(model)
}
