//! Output pipelines: what happens to the zero-point-corrected i32 sum
//! `raw[m,n] = Σ_k (A[m,k] − za)·(W[n,k] − zw[n])`.
//!
//! * [`Requantize`] → quint8 with fbgemm's rules (PyTorch numerics §2.8):
//!   `atw = f32(s_in·s_w[n])`, `mult = f32(atw / s_out)`;
//!   per-tensor bias `xf = fma(bias[n], f32(1.0 / f64(atw)), f32(raw))`,
//!   per-channel bias `xf = f32(raw) + f32(bias[n] / atw[n])`, no bias `xf = f32(raw)`;
//!   `q = cvt_rne(f32(xf·mult))` (x86 `cvtps2dq`: NaN and |x| ≥ 2³¹ give `i32::MIN`), then
//!   `clamp(q + z_out, lo, hi)` with `lo = z_out` for ReLU/ReLU6 and `hi` the quantized 6.0
//!   ([`quantized_six`]) for ReLU6.
//! * [`Dequantize`] → f32 for dynamic quantization (§2.10):
//!   `y = fma(f32(raw), f32(s_in·s_w[n]), bias[n])`, or `f32(raw)·f32(s_in·s_w[n])` without
//!   bias; optional ReLU `y < 0 → 0`.
//! * [`Output::I32`] → `raw` itself.
//!
//! Both requantization bias forms are folded into one `fma(bias_a[n], bias_b[n], f32(raw))`
//! (per-channel: `bias_a = 1`, which is exact; no bias: `0·0`), so scalar and vector
//! epilogues share one formula.

use std::borrow::Cow;

use super::pack::PackedWeights;
use crate::error::{GemmError, Result};

/// Fused activation of the quint8 requantization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Activation {
    /// Clamp to `[0, 255]` only.
    #[default]
    None,
    /// Clamp to `[z_out, 255]` (PyTorch `linear_relu`).
    Relu,
    /// Clamp to `[z_out, q(6.0)]`, `q(6.0)` being PyTorch's quantization of the ReLU6 bound
    /// ([`quantized_six`]).
    Relu6,
}

/// Parameters of the requantize-to-quint8 pipeline (the weight qparams come from the
/// packed weights; the activation zero point from the call).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Requantize<'a> {
    /// Activation scale, `(float)input_scale`.
    pub act_scale: f32,
    /// Output scale, `(float)output_scale`.
    pub out_scale: f32,
    /// Output zero point, `0..=255`.
    pub out_zero_point: i32,
    /// Float bias, length N (kept float like PyTorch's prepacked Linear).
    pub bias: Option<&'a [f32]>,
    /// Fused clamp.
    pub activation: Activation,
}

/// Parameters of the dequantize-to-f32 pipeline (dynamic Linear).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dequantize<'a> {
    /// Activation scale, `(float)q.scale` of the dynamic activation qparams.
    pub act_scale: f32,
    /// Float bias, length N.
    pub bias: Option<&'a [f32]>,
    /// Fused ReLU (`linear_relu_dynamic`).
    pub relu: bool,
}

/// Where the `M × N` result goes (row stride `ldc`) and through which pipeline.
#[derive(Debug)]
pub enum Output<'a> {
    /// Requantize to quint8.
    QUInt8 {
        /// Pipeline parameters.
        params: Requantize<'a>,
        /// Output buffer, at least `(M−1)·ldc + N` bytes.
        out: &'a mut [u8],
        /// Output row stride (≥ N).
        ldc: usize,
    },
    /// Requantize to quint8 through a pipeline built once ([`super::PreparedRequantize`]):
    /// the same bits as [`Output::QUInt8`] with the parameters it was built from.
    QUInt8Prepared {
        /// The prepared pipeline; built for these weights and the call's activation zero
        /// point (else [`GemmError::PreparedMismatch`]), and for the activations' scale (the
        /// caller's responsibility: [`Activations`](super::Activations) carry no scale).
        params: &'a super::PreparedRequantize,
        /// Output buffer, at least `(M−1)·ldc + N` bytes.
        out: &'a mut [u8],
        /// Output row stride (≥ N).
        ldc: usize,
    },
    /// Dequantize to f32.
    F32 {
        /// Pipeline parameters.
        params: Dequantize<'a>,
        /// Output buffer, at least `(M−1)·ldc + N` values.
        out: &'a mut [f32],
        /// Output row stride (≥ N).
        ldc: usize,
    },
    /// The zero-point-corrected i32 sums.
    I32 {
        /// Output buffer, at least `(M−1)·ldc + N` values.
        out: &'a mut [i32],
        /// Output row stride (≥ N).
        ldc: usize,
    },
}

/// The pipeline of [`super::gemm_u8s8_into_vec`] and the `Vec` that receives the result: it
/// is cleared and refilled with the `M × N` result (row stride N), its capacity reused.
#[derive(Debug)]
pub enum VecOutput<'a> {
    /// Requantize to quint8 ([`Output::QUInt8`]).
    QUInt8 {
        /// Pipeline parameters.
        params: Requantize<'a>,
        /// Receives the result.
        out: &'a mut Vec<u8>,
    },
    /// Requantize through a prepared pipeline ([`Output::QUInt8Prepared`]).
    QUInt8Prepared {
        /// The prepared pipeline (same conditions as [`Output::QUInt8Prepared`]).
        params: &'a super::PreparedRequantize,
        /// Receives the result.
        out: &'a mut Vec<u8>,
    },
    /// Dequantize to f32 ([`Output::F32`]).
    F32 {
        /// Pipeline parameters.
        params: Dequantize<'a>,
        /// Receives the result.
        out: &'a mut Vec<f32>,
    },
}

/// Per-output-channel vectors of the requantization, computed per call from [`Requantize`]
/// or once by [`super::PreparedRequantize`].
#[derive(Clone, Debug)]
pub(crate) struct RequantVecs {
    pub mult: Vec<f32>,
    pub bias_a: Vec<f32>,
    pub bias_b: Vec<f32>,
    pub zero_point: i32,
    pub lo: i32,
    pub hi: i32,
}

/// The dequantization's operands, borrowed (nothing is built per call): the epilogues form
/// each channel's `f32(s_in·s_w[n])` in registers, the same single rounding as a stored vector.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DequantVecs<'a> {
    pub act_scale: f32,
    pub w_scales: &'a [f32],
    pub bias: Option<&'a [f32]>,
    pub relu: bool,
}

impl DequantVecs<'_> {
    /// `f32(s_in·s_w[n])`.
    pub(crate) fn scale(&self, n: usize) -> f32 {
        self.act_scale * self.w_scales[n]
    }
}

/// The converting stage of a prepared pipeline (the requantization vectors owned when built
/// for one call, borrowed from a [`super::PreparedRequantize`]).
#[derive(Clone, Debug)]
pub(crate) enum Stage<'a> {
    Requant(Cow<'a, RequantVecs>),
    Dequant(DequantVecs<'a>),
    Raw,
}

impl Stage<'_> {
    /// The stage of requantization vectors built for one call.
    pub(crate) fn requant(vecs: RequantVecs) -> Stage<'static> {
        Stage::Requant(Cow::Owned(vecs))
    }
}

/// The zero-point correction of one row segment:
/// `raw[j] = acc[j] + corr[j] − row_sum·zw[j]` (wrapping), the `row` term only for
/// asymmetric weights.
#[derive(Clone, Copy)]
pub(crate) struct RowFix<'a> {
    pub corr: &'a [i32],
    pub row: Option<(i32, &'a [i32])>,
}

impl RowFix<'_> {
    /// Turns accumulators into corrected sums in place.
    pub(crate) fn apply(&self, acc: &mut [i32]) {
        match self.row {
            None => {
                for (x, &c) in acc.iter_mut().zip(self.corr) {
                    *x = x.wrapping_add(c);
                }
            }
            Some((rs, zw)) => {
                for ((x, &c), &z) in acc.iter_mut().zip(self.corr).zip(zw) {
                    *x = x.wrapping_add(c).wrapping_sub(rs.wrapping_mul(z));
                }
            }
        }
    }
}

/// One output row segment handed to an epilogue.
pub(crate) enum OutRow<'a> {
    U8(&'a mut [u8]),
    F32(&'a mut [f32]),
    I32(&'a mut [i32]),
}

/// x86 `cvtps2dq` under the default MXCSR: round half to even; NaN and values outside
/// `[−2³¹, 2³¹)` give `i32::MIN` ("integer indefinite"), which fbgemm then clamps to 0.
pub fn cvt_rne_x86(x: f32) -> i32 {
    if x.is_nan() || !(-2_147_483_648.0..2_147_483_648.0).contains(&x) {
        i32::MIN
    } else {
        x.round_ties_even() as i32
    }
}

/// Requantizes one raw sum (the scalar definition every vector epilogue must equal).
pub fn requantize_one(
    raw: i32,
    bias_a: f32,
    bias_b: f32,
    mult: f32,
    zp: i32,
    lo: i32,
    hi: i32,
) -> u8 {
    let xf = bias_a.mul_add(bias_b, raw as f32);
    let q = cvt_rne_x86(xf * mult);
    // max then min, as the vector epilogues and PyTorch's relu6 (`min(max(q, zp), six)`):
    // with a tiny output scale the quantized 6.0 can fall below the zero point
    (i64::from(q) + i64::from(zp))
        .max(i64::from(lo))
        .min(i64::from(hi)) as u8
}

/// Dequantizes one raw sum (§2.10).
pub fn dequantize_one(raw: i32, scale: f32, bias: Option<f32>, relu: bool) -> f32 {
    let y = match bias {
        Some(b) => (raw as f32).mul_add(scale, b),
        None => raw as f32 * scale,
    };
    if relu && y < 0.0 { 0.0 } else { y }
}

/// PyTorch's quantization of 6.0 with the output qparams (the ReLU6 upper bound):
/// `qtensor::quantize_val(6.0, 1/s_out, z_out, 0, 255)` (numerics §2.1, the fbgemm rule).
pub fn quantized_six(out_scale: f32, out_zero_point: i32) -> i32 {
    qtensor::quantize_val(6.0, 1.0f32 / out_scale, out_zero_point, 0, 255)
}

fn check_scale(what: &'static str, scale: f32) -> Result<()> {
    if scale.is_finite() && scale > 0.0 {
        Ok(())
    } else {
        Err(GemmError::InvalidScale { what, scale })
    }
}

fn check_bias(bias: Option<&[f32]>, n: usize) -> Result<()> {
    match bias {
        Some(b) if b.len() != n => Err(GemmError::QParamsLength {
            what: "bias",
            expected: n,
            got: b.len(),
        }),
        _ => Ok(()),
    }
}

impl Requantize<'_> {
    pub(crate) fn prepare(&self, w: &PackedWeights) -> Result<RequantVecs> {
        check_scale("activation scale", self.act_scale)?;
        check_scale("output scale", self.out_scale)?;
        if !(0..=255).contains(&self.out_zero_point) {
            return Err(GemmError::ZeroPointOutOfRange {
                what: "output zero point",
                zero_point: self.out_zero_point,
                min: 0,
                max: 255,
            });
        }
        check_bias(self.bias, w.n())?;
        // One pass per vector, no intermediate `atw` vector (this runs on every call).
        let (act_scale, out_scale) = (self.act_scale, self.out_scale);
        let atw = move |s: f32| act_scale * s;
        let mult = w.scales().iter().map(|&s| atw(s) / out_scale).collect();
        let (bias_a, bias_b) = match self.bias {
            None => (vec![0.0; w.n()], vec![0.0; w.n()]),
            Some(b) if w.is_per_channel() => (
                vec![1.0; w.n()],
                b.iter()
                    .zip(w.scales())
                    .map(|(&b, &s)| b / atw(s))
                    .collect(),
            ),
            Some(b) => (
                b.to_vec(),
                w.scales()
                    .iter()
                    .map(|&s| (1.0f64 / f64::from(atw(s))) as f32)
                    .collect(),
            ),
        };
        let zp = self.out_zero_point;
        let (lo, hi) = match self.activation {
            Activation::None => (0, 255),
            Activation::Relu => (zp, 255),
            Activation::Relu6 => (zp, quantized_six(self.out_scale, zp)),
        };
        Ok(RequantVecs {
            mult,
            bias_a,
            bias_b,
            zero_point: zp,
            lo,
            hi,
        })
    }
}

impl<'a> Dequantize<'a> {
    /// Checks the parameters; borrows the weight scales and the bias (no per-call vectors).
    pub(crate) fn prepare(&self, w: &'a PackedWeights) -> Result<DequantVecs<'a>> {
        check_scale("activation scale", self.act_scale)?;
        check_bias(self.bias, w.n())?;
        Ok(DequantVecs {
            act_scale: self.act_scale,
            w_scales: w.scales(),
            bias: self.bias,
            relu: self.relu,
        })
    }
}

impl Stage<'_> {
    /// Scalar epilogue: converts `raw` (the corrected sums of columns `n0..n0+raw.len()`).
    pub(crate) fn finish_scalar(&self, n0: usize, raw: &[i32], out: OutRow<'_>) {
        match (self, out) {
            (Stage::Requant(r), OutRow::U8(out)) => {
                for (j, (o, &v)) in out.iter_mut().zip(raw).enumerate() {
                    let n = n0 + j;
                    *o = requantize_one(
                        v,
                        r.bias_a[n],
                        r.bias_b[n],
                        r.mult[n],
                        r.zero_point,
                        r.lo,
                        r.hi,
                    );
                }
            }
            (Stage::Dequant(d), OutRow::F32(out)) => {
                for (j, (o, &v)) in out.iter_mut().zip(raw).enumerate() {
                    let n = n0 + j;
                    *o = dequantize_one(v, d.scale(n), d.bias.map(|b| b[n]), d.relu);
                }
            }
            (Stage::Raw, OutRow::I32(out)) => out.copy_from_slice(raw),
            _ => unreachable!("stage and output row are built together by the driver"),
        }
    }
}
