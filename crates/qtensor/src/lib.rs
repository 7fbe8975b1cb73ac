//! # qtensor — quantized tensor types and PyTorch-exact numerics
//!
//! (Being written; see ARCHITECTURE.md.)
#![forbid(unsafe_code)]

pub mod choose_qparams;
pub mod dtype;
pub mod element;
pub mod error;
pub mod fake_quant;
pub mod half_conv;
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
