//! Quantized tensor -> float tensor.

use super::{IntRepr, QTensor, for_each_channel_block};
use crate::qscheme::QParams;
use crate::quant::{
    dequantize_val, dequantize_val_float_qparams, dequantize_val_per_channel, par_map_to_vec,
};
use crate::tensor::Tensor;

/// `scale * (q - zero_point)` over a slice of 8-bit values, in parallel for large inputs.
fn dequantize_8bit<Q: Copy + Into<i32> + Sync>(src: &[Q], scale: f32, zp: i32) -> Vec<f32> {
    par_map_to_vec(src, |q| scale * (q.into() - zp) as f32)
}

impl QTensor {
    /// `Tensor.dequantize()`: per-tensor `f32(f32 scale * f32(q - zp))`; per-channel uses the
    /// **double** scale (see [`dequantize_val_per_channel`]); float qparams
    /// `(f32(q) - zp) * scale`. Shape and layout are kept.
    pub fn dequantize(&self) -> Tensor<f32> {
        let data = match &self.qparams {
            QParams::PerTensor { scale, zero_point } => {
                let (s, zp) = (*scale as f32, *zero_point as i32);
                match &self.repr {
                    IntRepr::U8(t) if self.dtype != crate::QDType::QUInt4x2 => {
                        dequantize_8bit(t.data(), s, zp)
                    }
                    IntRepr::I8(t) => dequantize_8bit(t.data(), s, zp),
                    _ => self
                        .int_values()
                        .into_iter()
                        .map(|q| dequantize_val(q, s, zp))
                        .collect(),
                }
            }
            QParams::PerChannel {
                scales,
                zero_points,
                axis,
            } => self.per_channel(*axis, |c, q| {
                dequantize_val_per_channel(q, scales[c], zero_points[c])
            }),
            QParams::PerChannelFloat {
                scales,
                zero_points,
                axis,
            } => self.per_channel(*axis, |c, q| {
                dequantize_val_float_qparams(q, scales[c], zero_points[c])
            }),
        };
        Tensor::from_parts(&self.shape, data, self.layout)
    }

    fn per_channel(&self, axis: usize, f: impl Fn(usize, i32) -> f32) -> Vec<f32> {
        let values = self.int_values();
        let mut out = vec![0.0f32; values.len()];
        for_each_channel_block(
            &self.shape,
            self.layout,
            axis,
            &values,
            &mut out,
            |c, s, d| {
                for (o, &q) in d.iter_mut().zip(s) {
                    *o = f(c, q);
                }
            },
        );
        out
    }
}
