//! The numeric definitions of quantize, dequantize and requantize (the oracle every faster
//! path is tested against), and the slice loops built on them.
//!
//! PyTorch (fbgemm engine, x86) uses several code paths whose results differ at the edges
//! (NaN, ±inf, products beyond ±2^31). Each path has its own scalar function here:
//!
//! | torch path | function |
//! |---|---|
//! | per-tensor quint8/qint8 (`QuantizeAvx2`) | [`quantize_val`] |
//! | per-channel 8-bit and all qint32 (scalar `fbgemm::Quantize`, double clamp) | [`quantize_val_scalar_path`] |
//! | per-tensor quint4x2 | [`quantize_val_sub_byte`] |
//! | per-channel float qparams | [`quantize_val_float_qparams`] |

mod scalar;
mod slices;

pub use scalar::{
    dequantize_val, dequantize_val_float_qparams, dequantize_val_per_channel, quantize_val,
    quantize_val_float_qparams, quantize_val_scalar_path, quantize_val_sub_byte,
    requantize_from_int,
};
pub(crate) use slices::{PerTensor8, par_map_to_vec};
pub use slices::{dequantize_slice_i8, dequantize_slice_u8, quantize_slice_i8, quantize_slice_u8};
