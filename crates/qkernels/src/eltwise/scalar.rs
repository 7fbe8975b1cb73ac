//! Ops with a float scalar that change the qparams: `add_scalar`, `mul_scalar`
//! (numerics §2.11, both verified against torch 2.15).

use super::{QParams, check_len};
use crate::error::Result;

/// `quantized::add_scalar(x, c)` (and `add_scalar_relu` with `relu`): writes the output
/// integers and returns the output qparams. With `c_q = rne(c / s)`: if
/// `0 ≤ z − c_q ≤ 255` the integers are kept and the zero point becomes `z − c_q`;
/// otherwise the scale grows so the range still covers the shifted values.
pub fn add_scalar(x: &[u8], q: QParams, c: f32, relu: bool, out: &mut [u8]) -> Result<QParams> {
    q.check("input qparams")?;
    check_len("output", x.len(), out.len())?;
    let (s, z) = (q.scale, q.zero_point);
    let c_q = (c / s).round_ties_even() as i64;
    let shifted = i64::from(z) - c_q;
    let (qmin, qmax) = (0i64, 255i64);
    let qout = if (qmin..=qmax).contains(&shifted) {
        out.copy_from_slice(x);
        QParams {
            scale: s,
            zero_point: shifted as i32,
        }
    } else {
        let (scale, zero_point) = if shifted > qmax {
            // all values are below zero after the shift: zero point at qmax
            (
                (shifted - qmin) as f32 / (qmax - qmin) as f32 * s,
                qmax as i32,
            )
        } else {
            (
                (qmax - shifted) as f32 / (qmax - qmin) as f32 * s,
                qmin as i32,
            )
        };
        let mult = s / scale;
        for (o, &v) in out.iter_mut().zip(x) {
            let src = i64::from(v) - i64::from(z) + c_q;
            *o = qtensor::requantize_from_int(src, mult, zero_point, 0, 255) as u8;
        }
        QParams { scale, zero_point }
    };
    if relu {
        for o in out.iter_mut() {
            *o = (*o).max(qout.zero_point as u8);
        }
    }
    Ok(qout)
}

/// `quantized::mul_scalar(x, c)`: `c > 0` keeps the integers with scale `s·c`; `c < 0` maps
/// `q → 255 − q` with scale `s·|c|` and zero point `255 − z`; `c = 0` gives zeros with
/// scale 1 and zero point 0. Returns the output qparams.
pub fn mul_scalar(x: &[u8], q: QParams, c: f32, out: &mut [u8]) -> Result<QParams> {
    q.check("input qparams")?;
    check_len("output", x.len(), out.len())?;
    if c == 0.0 {
        out.fill(0);
        return Ok(QParams {
            scale: 1.0,
            zero_point: 0,
        });
    }
    if c > 0.0 {
        out.copy_from_slice(x);
        Ok(QParams {
            scale: q.scale * c,
            zero_point: q.zero_point,
        })
    } else {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = 255 - v;
        }
        Ok(QParams {
            scale: q.scale * -c,
            zero_point: 255 - q.zero_point,
        })
    }
}
