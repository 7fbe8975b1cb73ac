//! # qtensor — quantized tensor types and PyTorch-exact numerics
//!
//! (Being written; see ARCHITECTURE.md.)
#![forbid(unsafe_code)]

pub mod dtype;
pub mod element;
pub mod error;
pub mod half_conv;
pub mod qscheme;
pub mod tensor;

pub use dtype::{QDType, calculate_qmin_qmax};
pub use element::Element;
pub use error::{QTensorError, Result};
pub use half_conv::{f16_slice_to_f32, f32_slice_to_f16, f32_to_f16_saturating};
pub use qscheme::{QParams, QScheme};
pub use tensor::{Layout, Tensor, channel_blocks};
