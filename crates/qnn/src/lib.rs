//! # qnn — layers
//!
//! Float modules that train (forward and backward, PyTorch state-dict names), their fp16
//! form, and the quantized and dynamic-quantized modules that run on [`qkernels`].
//! Each layer is a plain struct that a downstream crate can use on its own.
//!
//! - [`Module`]: `forward`, `backward` (returns the input gradient, accumulates parameter
//!   gradients), named parameters and buffers, train/eval, and a [`ModuleKind`] for passes.
//! - [`Value`]: what flows between modules (f32, f16, quantized tensor, or a tuple).
//! - [`float`]: Linear, Conv1d, Conv2d, ConvTranspose2d, BatchNorm1d/2d, LayerNorm, GroupNorm,
//!   InstanceNorm2d,
//!   activations, Softmax/LogSoftmax, pooling, Flatten, Dropout, Identity, Embedding,
//!   EmbeddingBag, RNN/LSTM/GRU cells and sequence modules, MultiheadAttention,
//!   TransformerEncoderLayer, Sequential — every one with forward and backward, checked against
//!   finite differences and PyTorch goldens.
//! - [`loss`], [`optim`]: CrossEntropyLoss, MSELoss; SGD and Adam/AdamW with PyTorch's formulas.
//! - [`init`]: a seedable PRNG and PyTorch's default initializations.
//! - [`state_dict`]: parameters and buffers by PyTorch name, loaded with key and shape checks, and
//!   safetensors files as `safetensors.torch.save_file(model.state_dict())` writes them.
//! - [`repr`]: printing as PyTorch prints modules ([`Module::type_name`] / [`Module::extra_repr`],
//!   [`repr::module_repr`]: `Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))`) and
//!   [`repr::named_parameters`] with each tensor's storage dtype ([`Module::param_dtype`]).
//!
//! - [`Module::half`]: f16 weights (half the bytes, see [`Module::param_bytes`]) for Linear,
//!   Conv1d, Conv2d, ConvTranspose2d, Embedding, EmbeddingBag, the RNN/LSTM/GRU cells and
//!   sequence modules, MultiheadAttention and TransformerEncoderLayer (norm parameters and
//!   biases stay f32), computed with f16 storage and f32 accumulation; inference only.
//!
//! - [`quantized`]: static quantized modules (quint8 in and out, on [`qkernels`]): Quantize,
//!   DeQuantize, Linear/LinearReLU, Conv1d/2d/3d and their ReLU fusions, BatchNorm2d/BNReLU2d,
//!   activations, pooling, Flatten, Dropout, QFunctional, ConvTranspose2d,
//!   LayerNorm/GroupNorm/InstanceNorm2d, Embedding and EmbeddingBag (8-bit and 4-bit rowwise),
//!   Softmax (within one quantum of PyTorch's) — built with `from_float` as PyTorch builds
//!   them, bit-exact with
//!   PyTorch's fbgemm goldens, weights packed once and saved as int8 + qparams.
//! - [`dynamic`]: dynamic quantized modules (`torch.ao.nn.quantized.dynamic`): f32 in and out,
//!   int8 (per-tensor or per-channel) or f16 weights packed once, activation qparams chosen on
//!   every call. [`dynamic::Linear`] and [`dynamic::LinearReLU`] are bit-exact with PyTorch's
//!   fbgemm `linear_dynamic`; build them with `from_float(&float::Linear, &weight_qparams)` or
//!   `from_float_fp16(&float::Linear)`. [`dynamic::Lstm`], [`dynamic::Gru`] and the three
//!   dynamic cells take `from_float(&float_module, &mut |name, weight| qparams)`.
//! - [`qat`]: quantization-aware training — the fake-quant modules (`FakeQuantize`,
//!   `FixedQParamsFakeQuantize`, `FusedMovingAvgObsFakeQuantize`, bit-exact with PyTorch) behind
//!   the [`qat::FakeQuant`] trait, and the QAT layers (Linear, LinearReLU, Conv1d, Conv2d,
//!   ConvReLU2d — one generic [`qat::QatLayer`] —, and ConvBn1d, ConvBnReLU1d, ConvBn2d,
//!   ConvBnReLU2d, LinearBn1d — one generic [`qat::QatBnFolded`], PyTorch's `_ConvBnNd`) with
//!   `from_float` / `from_fused` and `to_float`.
//!
//! Not yet here: attention masks.
//!
//! Float matmuls go through [`qkernels::float`] (the one wrapper around the float GEMM crate).
//!
//! ```
//! use qnn::float::{Flatten, Linear, ReLU, Sequential};
//! use qnn::init::Rng;
//! use qnn::loss::CrossEntropyLoss;
//! use qnn::optim::{Optimizer, Sgd, SgdConfig};
//! use qnn::qtensor::Tensor;
//! use qnn::{Module, Value};
//!
//! let mut rng = Rng::new(0);
//! let mut model = Sequential::new()
//!     .push(Flatten::default())
//!     .push(Linear::new(4, 8, true, &mut rng))
//!     .push(ReLU::new())
//!     .push(Linear::new(8, 3, true, &mut rng));
//! let x = Tensor::from_fn(&[2, 2, 2], |i| i as f32 / 8.0);
//! let targets = [0, 2];
//!
//! let mut loss_fn = CrossEntropyLoss::new();
//! let mut sgd = Sgd::new(SgdConfig { momentum: 0.9, ..SgdConfig::new(0.1) })?;
//!
//! let logits = model.forward(&Value::F32(x))?.into_f32("example")?;
//! let loss = loss_fn.forward(&logits, &targets)?;
//! model.zero_grad();
//! let grad_input = model.backward(&Value::F32(loss_fn.backward()?))?;
//! sgd.step(&mut model)?;
//!
//! assert!(loss.is_finite());
//! assert_eq!(grad_input.shape(), Some(&[2, 2, 2][..]));
//! let mut names = Vec::new();
//! model.visit_params(&mut |name, _| names.push(name.to_string()));
//! assert_eq!(names, ["1.weight", "1.bias", "3.weight", "3.bias"]);
//! # Ok::<(), qnn::QnnError>(())
//! ```

pub mod dynamic;
pub mod error;
pub mod float;
pub mod fused;
pub mod init;
mod int8_panels;
pub mod loss;
pub mod module;
pub mod optim;
pub mod param;
pub mod qat;
pub mod quantized;
pub mod repr;
pub mod state_dict;
pub mod value;

pub use error::{QnnError, Result};
pub use module::{Module, ModuleKind};
pub use param::{BufferMut, BufferRef, Param};
pub use qkernels;
pub use qtensor;
pub use value::Value;
