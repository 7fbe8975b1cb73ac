//! # qtensor — quantized tensors with PyTorch-exact numerics
//!
//! The bottom layer of qstack: dense [`Tensor`]s, affine-quantized [`QTensor`]s (quint8,
//! qint8, qint32 and packed quint4x2; per-tensor, per-channel and float-qparams), and the
//! numerics that define them, bit for bit as torch 2.15 computes them with the fbgemm engine:
//!
//! * quantize / dequantize / requantize, one scalar function per torch code path in [`quant`]
//!   (these are the oracle every faster kernel in the upper crates is tested against), plus
//!   auto-vectorized slice loops that go parallel (rayon) on large inputs;
//! * fake quantization with straight-through gradient masks ([`fake_quant`]);
//! * qparam choice: ATen's and FBGEMM's `ChooseQuantizationParams` and the Python observers'
//!   `_calculate_qparams` ([`choose_qparams`]), and [`calculate_qmin_qmax`];
//! * the stateful observers of `torch.ao.quantization.observer` (MinMax, moving average,
//!   per-channel, histogram, fixed, placeholder, recording) behind one [`observer::Observer`]
//!   trait, built from an [`observer::ObserverSpec`];
//! * saturating `f32` <-> `f16` conversion ([`half_conv`]).
//!
//! Every fallible function returns [`Result`]; bad scales, zero points, axes, channel counts
//! or shapes are [`QTensorError`]s whose messages name the offending value. The crate has no
//! `unsafe` code.
//!
//! ```
//! use qtensor::{quantize_per_tensor, QDType, Tensor};
//!
//! let x = Tensor::new(&[2, 2], vec![-1.0, 0.0, 0.5, 2.0])?;
//! let q = quantize_per_tensor(&x, 0.5, 2, QDType::QUInt8)?;
//! assert_eq!(q.int_values(), vec![0, 2, 3, 6]); // zp + round_half_even(x / scale)
//! assert_eq!(q.dequantize().data(), &[-1.0, 0.0, 0.5, 2.0]);
//! # Ok::<(), qtensor::QTensorError>(())
//! ```
#![forbid(unsafe_code)]

pub mod choose_qparams;
pub mod dtype;
pub mod element;
pub mod error;
pub mod fake_quant;
pub mod half_conv;
pub mod observer;
pub mod qscheme;
pub mod qtensor;
pub mod quant;
pub mod tensor;

pub use choose_qparams::{
    ObserverQParams, calculate_qparams, choose_qparams_fbgemm, choose_qparams_quant_utils,
};
pub use dtype::{QDType, calculate_qmin_qmax};
pub use element::Element;
pub use error::{QTensorError, Result};
pub use fake_quant::{
    fake_quantize_backward, fake_quantize_per_channel_affine,
    fake_quantize_per_channel_affine_float_zp, fake_quantize_per_tensor_affine,
};
pub use half_conv::{f16_slice_to_f32, f32_slice_to_f16, f32_to_f16_saturating};
pub use qscheme::{QParams, QScheme};
pub use qtensor::{
    IntRepr, QTensor, choose_qparams_per_tensor, quantize_per_channel,
    quantize_per_channel_float_qparams, quantize_per_tensor, quantize_per_tensor_dynamic,
};
pub use quant::{
    dequantize_slice_i8, dequantize_slice_u8, dequantize_val, dequantize_val_float_qparams,
    dequantize_val_per_channel, quantize_slice_i8, quantize_slice_u8, quantize_val,
    quantize_val_float_qparams, quantize_val_scalar_path, quantize_val_sub_byte,
    requantize_from_int,
};
pub use tensor::{Layout, Tensor, channel_blocks};
