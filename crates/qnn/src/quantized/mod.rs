//! Static quantized modules: quint8 activations in and out, on [`qkernels`], built with
//! `from_float` as PyTorch builds `torch.ao.nn.quantized` modules.
//!
//! - [`Quantize`] / [`DeQuantize`]: the float ↔ quint8 boundaries (4-d outputs of
//!   `Quantize` are channels-last).
//! - [`Linear`], [`LinearReLU`]: int8 GEMM on weights packed once, fbgemm-exact requantization.
//! - [`Conv1d`], [`Conv2d`], [`Conv3d`] and [`ConvReLU1d`], [`ConvReLU2d`], [`ConvReLU3d`]:
//!   int8 convolution (stride, zero padding, dilation, groups); `Conv2d` reads either layout
//!   and writes channels-last.
//! - [`BatchNorm2d`], [`BNReLU2d`]: PyTorch's fused per-channel batch norm on the integers.
//! - [`ReLU`], [`ReLU6`], [`Hardswish`], [`LeakyReLU`], [`ELU`], [`Sigmoid`], [`Tanh`].
//! - [`MaxPool2d`], [`AvgPool2d`], [`AdaptiveAvgPool2d`] (channels-last out), [`Flatten`]
//!   (logical NCHW order), [`Dropout`] (identity).
//! - [`QFunctional`]: add, add_relu, mul, cat, add_scalar, mul_scalar, matmul.
//! - [`LayerNorm`], [`GroupNorm`], [`InstanceNorm2d`] (bit-exact with PyTorch's quantized
//!   norms), [`Softmax`] (within one quantum), [`ConvTranspose2d`] (per-tensor weights,
//!   bit-exact), [`Embedding`] / [`EmbeddingBag`] (8-bit or 4-bit rows with float qparams,
//!   f32 out, bit-exact lookups and sums).
//!
//! Every module is inference-only (`backward` is [`crate::QnnError::NotTrainable`]) and keeps
//! its state (int8 weights, weight scales/zero points/axis, f32 bias, output scale/zero point)
//! as state-dict buffers; [`crate::Module::after_load`] validates them and repacks the weights.
//!
//! ```
//! use qnn::float::Linear as FloatLinear;
//! use qnn::quantized::{DeQuantize, Linear, Quantize};
//! use qnn::qtensor::{QDType, QParams, Tensor};
//! use qnn::{Module, Value};
//!
//! let float = FloatLinear::from_tensors(
//!     Tensor::new(&[2, 3], vec![0.5, -0.25, 1.0, 0.0, 0.75, -1.0])?,
//!     Some(Tensor::new(&[2], vec![0.1, -0.2])?),
//! )?;
//! let wq = QParams::PerTensor { scale: 1.0 / 128.0, zero_point: 0 };
//! let mut linear = Linear::from_float(&float, &wq, 0.02, 128)?;
//! let mut quant = Quantize::new(0.01, 100, QDType::QUInt8)?;
//! let x = Tensor::new(&[1, 3], vec![0.3, -0.2, 0.5])?;
//! let y = linear.forward(&quant.forward(&Value::F32(x))?)?;
//! let y = DeQuantize::new().forward(&y)?.into_f32("example")?;
//! assert_eq!(y.shape(), &[1, 2]);
//! assert!((y.data()[0] - (0.15 + 0.05 + 0.5 + 0.1)).abs() < 0.03);
//! # Ok::<(), qnn::QnnError>(())
//! ```

mod activation;
mod batchnorm;
mod common;
mod conv;
mod functional;
mod linear;
mod pool;
mod requant_cache;
mod shape;
mod stubs;

pub use activation::{ELU, Hardswish, LeakyReLU, ReLU, ReLU6, Sigmoid, Tanh};
pub use batchnorm::{BNReLU2d, BatchNorm2d};
pub use conv::{Conv1d, Conv2d, Conv3d, ConvOptions, ConvReLU1d, ConvReLU2d, ConvReLU3d};
pub use functional::{FunctionalOp, QFunctional};
pub use linear::{Linear, LinearReLU};
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
pub use shape::{Dropout, Flatten};
pub use stubs::{DeQuantize, Quantize};

pub mod norm;
pub use norm::{GroupNorm, InstanceNorm2d, LayerNorm};
pub mod softmax;
pub use softmax::Softmax;
pub mod conv_transpose;
pub use conv_transpose::ConvTranspose2d;
pub mod embedding;
pub use embedding::{Embedding, EmbeddingBag};
