//! The portable level: `qtensor`'s scalar definitions, one element at a time.

use std::mem::MaybeUninit;

use qtensor::{dequantize_val, quantize_val};

/// Quantizes with [`quantize_val`]; bytes are two's complement when `SIGNED` (qint8).
pub(crate) fn quantize<const SIGNED: bool>(
    src: &[f32],
    inv_scale: f32,
    zero_point: i32,
    dst: &mut [MaybeUninit<u8>],
) {
    let (qmin, qmax) = if SIGNED { (-128, 127) } else { (0, 255) };
    for (d, &x) in dst.iter_mut().zip(src) {
        // in [qmin, qmax], so the low byte is the value (two's complement for qint8)
        d.write(quantize_val(x, inv_scale, zero_point, qmin, qmax) as u8);
    }
}

/// Dequantizes with [`dequantize_val`]; `src` bytes are read as `i8` when `SIGNED`.
pub(crate) fn dequantize<const SIGNED: bool>(
    src: &[u8],
    scale: f32,
    zero_point: i32,
    dst: &mut [MaybeUninit<f32>],
) {
    for (d, &q) in dst.iter_mut().zip(src) {
        let q = if SIGNED {
            i32::from(q as i8)
        } else {
            i32::from(q)
        };
        d.write(dequantize_val(q, scale, zero_point));
    }
}
