//! Activations on quint8 tensors.
//!
//! `relu` and `relu6` work on the integers with unchanged qparams. The float activations
//! are "dequantize → f32 function → quantize with the output qparams" (numerics §2.11); as
//! the input has only 256 values they run through a [`Lut`] built once per (input qparams,
//! output qparams, function). `sigmoid`, `tanh` and `hardsigmoid` have PyTorch's fixed output
//! qparams ([`SIGMOID_QPARAMS`], [`TANH_QPARAMS`]).

use super::{QParams, check_len};
use crate::error::Result;

/// Output qparams of quint8 `sigmoid` and `hardsigmoid`: scale 1/256, zero point 0.
pub const SIGMOID_QPARAMS: QParams = QParams {
    scale: 1.0 / 256.0,
    zero_point: 0,
};

/// Output qparams of quint8 `tanh`: scale 2/256, zero point 128.
pub const TANH_QPARAMS: QParams = QParams {
    scale: 2.0 / 256.0,
    zero_point: 128,
};

/// `torch.relu` on a quint8 tensor: `max(q, zp)` in place.
pub fn relu(x: &mut [u8], q: QParams) -> Result<()> {
    q.check("qparams")?;
    let zp = q.zero_point as u8;
    for v in x.iter_mut() {
        *v = (*v).max(zp);
    }
    Ok(())
}

/// `relu6` on a quint8 tensor: `min(max(q, zp), quantize(6.0))` in place.
pub fn relu6(x: &mut [u8], q: QParams) -> Result<()> {
    q.check("qparams")?;
    let zp = q.zero_point as u8;
    let six = q.quantize(6.0);
    for v in x.iter_mut() {
        *v = (*v).max(zp).min(six);
    }
    Ok(())
}

/// A 256-entry table `q → quantize_out(f(dequantize_in(q)))`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lut([u8; 256]);

impl Lut {
    /// Builds the table of `f` between the given qparams (dequantize with torch's vector FMA
    /// form, quantize with §2.1).
    pub fn new(input: QParams, output: QParams, f: impl Fn(f32) -> f32) -> Result<Self> {
        input.check("input qparams")?;
        output.check("output qparams")?;
        let mut t = [0u8; 256];
        for (q, e) in t.iter_mut().enumerate() {
            *e = output.quantize(f(input.dequantize_fma(q as u8)));
        }
        Ok(Lut(t))
    }

    /// The table entry of `q`.
    pub fn get(&self, q: u8) -> u8 {
        self.0[usize::from(q)]
    }

    /// Maps `x` through the table into `out` (same length).
    pub fn apply(&self, x: &[u8], out: &mut [u8]) -> Result<()> {
        check_len("output", x.len(), out.len())?;
        for (o, &v) in out.iter_mut().zip(x) {
            *o = self.0[usize::from(v)];
        }
        Ok(())
    }

    /// Maps `x` through the table in place.
    pub fn apply_in_place(&self, x: &mut [u8]) {
        for v in x.iter_mut() {
            *v = self.0[usize::from(*v)];
        }
    }

    /// `torch.sigmoid` on quint8: `1 / (1 + exp(−x))`, output [`SIGMOID_QPARAMS`].
    pub fn sigmoid(input: QParams) -> Result<Self> {
        Self::new(input, SIGMOID_QPARAMS, |x| 1.0 / (1.0 + (-x).exp()))
    }

    /// `torch.tanh` on quint8, output [`TANH_QPARAMS`].
    pub fn tanh(input: QParams) -> Result<Self> {
        Self::new(input, TANH_QPARAMS, f32::tanh)
    }

    /// `hardsigmoid`: `min(max(x + 3, 0), 6) / 6`, output [`SIGMOID_QPARAMS`].
    pub fn hardsigmoid(input: QParams) -> Result<Self> {
        Self::new(input, SIGMOID_QPARAMS, |x| (x + 3.0).clamp(0.0, 6.0) / 6.0)
    }

    /// `quantized::hardswish(x, s, zp)`: `x · min(max(x + 3, 0), 6) / 6`, quantized with
    /// torch's `o_inv_scale = f32(1.0 / f64(s))` (exact for f32-representable scales).
    pub fn hardswish(input: QParams, output: QParams) -> Result<Self> {
        input.check("input qparams")?;
        output.check("output qparams")?;
        let inv = (1.0f64 / f64::from(output.scale)) as f32;
        let mut t = [0u8; 256];
        for (q, e) in t.iter_mut().enumerate() {
            let x = input.dequantize_fma(q as u8);
            let y = x * (x + 3.0).clamp(0.0, 6.0) / 6.0;
            *e = qtensor::quantize_val(y, inv, output.zero_point, 0, 255) as u8;
        }
        Ok(Lut(t))
    }

    /// `quantized::leaky_relu(x, negative_slope)`: `x > 0 ? x : x · slope`.
    pub fn leaky_relu(input: QParams, output: QParams, slope: f32) -> Result<Self> {
        Self::new(input, output, move |x| if x > 0.0 { x } else { x * slope })
    }

    /// `quantized::elu(x, s, zp, alpha)`: `x > 0 ? x : alpha · (exp(x) − 1)`.
    pub fn elu(input: QParams, output: QParams, alpha: f32) -> Result<Self> {
        Self::new(input, output, move |x| {
            if x > 0.0 { x } else { alpha * (x.exp() - 1.0) }
        })
    }
}
