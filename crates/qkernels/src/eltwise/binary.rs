//! Binary ops on two same-shaped quint8 tensors: `add`, `add_relu`, `mul`.
//!
//! PyTorch's `quantized::add` dequantizes its bulk with one FMA per element and its scalar
//! tail (elements beyond the last full vector step of `cpu_kernel_vec`) with the exact
//! product; qstack uses the FMA form for every element, so a tensor whose length is not a
//! multiple of torch's step (128 elements with AVX-512, 64 with AVX2) may differ from torch
//! by one quantum in rare tail elements (numerics §2.11).

use super::{QParams, check_len};
use crate::error::Result;

fn check3(a: &[u8], b: &[u8], out: &[u8], qs: [(&'static str, &QParams); 3]) -> Result<()> {
    for (what, q) in qs {
        q.check(what)?;
    }
    check_len("second operand", a.len(), b.len())?;
    check_len("output", a.len(), out.len())
}

/// `quantized::add(a, b, out.scale, out.zero_point)`, optionally with the fused ReLU of
/// `quantized::add_relu`.
pub fn add(
    a: &[u8],
    qa: QParams,
    b: &[u8],
    qb: QParams,
    qout: QParams,
    relu: bool,
    out: &mut [u8],
) -> Result<()> {
    check3(
        a,
        b,
        out,
        [
            ("a qparams", &qa),
            ("b qparams", &qb),
            ("output qparams", &qout),
        ],
    )?;
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        let mut c = qa.dequantize_fma(x) + qb.dequantize_fma(y);
        if relu {
            c = c.max(0.0);
        }
        *o = qout.quantize(c);
    }
    Ok(())
}

/// `quantized::mul(a, b, out.scale, out.zero_point)`:
/// `clamp(zo + rne(f32((a−za)(b−zb)) · f32(f32(sa·sb)·f32(1/so))), 0, 255)`.
pub fn mul(
    a: &[u8],
    qa: QParams,
    b: &[u8],
    qb: QParams,
    qout: QParams,
    out: &mut [u8],
) -> Result<()> {
    check3(
        a,
        b,
        out,
        [
            ("a qparams", &qa),
            ("b qparams", &qb),
            ("output qparams", &qout),
        ],
    )?;
    let mult = (qa.scale * qb.scale) * (1.0f32 / qout.scale);
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        let c = i64::from((i32::from(x) - qa.zero_point) * (i32::from(y) - qb.zero_point));
        *o = qtensor::requantize_from_int(c, mult, qout.zero_point, 0, 255) as u8;
    }
    Ok(())
}
