//! # Elementwise ops on quint8 tensors, with PyTorch's (fbgemm/x86 engine) numerics
//!
//! Every op works on flat `u8` slices (or NHWC/NCHW shaped ones for the layout ops) with
//! per-tensor [`QParams`], following `pytorch-numerics.md` §2.11:
//! * [`binary`]: `add`, `add_relu` (dequantize with torch's vector FMA form
//!   `fma(s, q, f32(s·−zp))`, add in f32, quantize §2.1), `mul`
//!   (`requantize_from_int(f32(f32(sa·sb)·f32(1/so)), zo, (a−za)(b−zb))`);
//! * [`scalar`]: `add_scalar`, `mul_scalar` (new qparams, integers kept where torch keeps them);
//! * [`activation`]: `relu`, `relu6` on the integers; `sigmoid`, `tanh` (fixed output
//!   qparams), `hardsigmoid`, `hardswish`, `leaky_relu`, `elu` through a 256-entry table of
//!   "dequantize → f32 function → quantize";
//! * [`layout`]: `cat` (requantizes to the output qparams unless they match), NCHW↔NHWC,
//!   nearest-neighbour upsampling.
//!
//! Errors are [`crate::GemmError`] values (invalid scale, zero point, buffer length).

pub mod activation;
pub mod batch_norm;
pub mod binary;
pub mod layout;
pub mod scalar;

use crate::error::{GemmError, Result};

/// Per-tensor quantization parameters of a quint8 tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QParams {
    /// Scale (finite, > 0).
    pub scale: f32,
    /// Zero point, `0..=255`.
    pub zero_point: i32,
}

impl QParams {
    /// Checks the scale and zero point.
    pub fn check(&self, what: &'static str) -> Result<()> {
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(GemmError::InvalidScale {
                what,
                scale: self.scale,
            });
        }
        if !(0..=255).contains(&self.zero_point) {
            return Err(GemmError::ZeroPointOutOfRange {
                what,
                zero_point: self.zero_point,
                min: 0,
                max: 255,
            });
        }
        Ok(())
    }

    /// Dequantizes with torch's vectorized form: `fma(scale, q, f32(scale·−zp))`.
    #[inline]
    pub fn dequantize_fma(&self, q: u8) -> f32 {
        let premul = self.scale * -(self.zero_point as f32);
        self.scale.mul_add(f32::from(q), premul)
    }

    /// Quantizes with §2.1: `clamp(zp + rne(f32(x · f32(1/scale))), 0, 255)`.
    #[inline]
    pub fn quantize(&self, x: f32) -> u8 {
        qtensor::quantize_val(x, 1.0 / self.scale, self.zero_point, 0, 255) as u8
    }
}

/// Errors unless `got == expected`.
pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(GemmError::BufferTooSmall {
            what,
            needed: expected,
            got,
        })
    }
}
