//! Layout ops: `cat`, NCHW↔NHWC, nearest-neighbour upsampling.

use super::{QParams, check_len};
use crate::error::{GemmError, Result};

/// One input of [`cat`]: `outer × inner` row-major values with their qparams.
#[derive(Clone, Copy, Debug)]
pub struct CatInput<'a> {
    /// The data, `outer · inner` values.
    pub data: &'a [u8],
    /// Values per outer index (the size of the concatenated dim times everything after it).
    pub inner: usize,
    /// Quantization parameters.
    pub qparams: QParams,
}

/// `quantized::cat`: concatenates along a dim that splits the tensors into `outer` blocks
/// (e.g. NHWC channels: `outer = N·H·W`, `inner = C_i`). Inputs with the output qparams are
/// copied; the others are dequantized (`s·(q − z)`) and quantized with `qout`.
pub fn cat(inputs: &[CatInput<'_>], outer: usize, qout: QParams, out: &mut [u8]) -> Result<()> {
    qout.check("output qparams")?;
    let total: usize = inputs.iter().map(|i| i.inner).sum();
    check_len("output", outer * total, out.len())?;
    for i in inputs {
        i.qparams.check("input qparams")?;
        check_len("cat input", outer * i.inner, i.data.len())?;
    }
    let mut off = 0;
    for i in inputs {
        let same = i.qparams == qout;
        let (s, z) = (i.qparams.scale, i.qparams.zero_point);
        for o in 0..outer {
            let src = &i.data[o * i.inner..(o + 1) * i.inner];
            let dst = &mut out[o * total + off..o * total + off + i.inner];
            if same {
                dst.copy_from_slice(src);
            } else {
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = qout.quantize(qtensor::dequantize_val(i32::from(v), s, z));
                }
            }
        }
        off += i.inner;
    }
    Ok(())
}

/// Transposes `n × c × hw` (NCHW, `hw = H·W`) into `n × hw × c` (NHWC).
pub fn nchw_to_nhwc<T: Copy>(x: &[T], n: usize, c: usize, hw: usize, out: &mut [T]) -> Result<()> {
    check_len("input", n * c * hw, x.len())?;
    check_len("output", n * c * hw, out.len())?;
    for b in 0..n {
        let src = &x[b * c * hw..(b + 1) * c * hw];
        let dst = &mut out[b * c * hw..(b + 1) * c * hw];
        for ch in 0..c {
            for p in 0..hw {
                dst[p * c + ch] = src[ch * hw + p];
            }
        }
    }
    Ok(())
}

/// Transposes `n × hw × c` (NHWC) into `n × c × hw` (NCHW).
pub fn nhwc_to_nchw<T: Copy>(x: &[T], n: usize, c: usize, hw: usize, out: &mut [T]) -> Result<()> {
    check_len("input", n * c * hw, x.len())?;
    check_len("output", n * c * hw, out.len())?;
    for b in 0..n {
        let src = &x[b * c * hw..(b + 1) * c * hw];
        let dst = &mut out[b * c * hw..(b + 1) * c * hw];
        if c == 0 || hw == 0 {
            break;
        }
        // one output plane at a time: sequential writes, strided reads, no bounds checks
        for (ch, plane) in dst.chunks_exact_mut(hw).enumerate() {
            for (d, s) in plane.iter_mut().zip(src[ch..].iter().step_by(c)) {
                *d = *s;
            }
        }
    }
    Ok(())
}

/// `upsample_nearest2d` on NHWC data (qparams unchanged): output pixel `(y, x)` reads input
/// `(⌊y·f32(ih/oh)⌋, ⌊x·f32(iw/ow)⌋)` clamped, PyTorch's `nearest` index with the scale
/// computed from the sizes.
pub fn upsample_nearest2d(
    x: &[u8],
    [n, ih, iw, c]: [usize; 4],
    [oh, ow]: [usize; 2],
    out: &mut [u8],
) -> Result<()> {
    if oh == 0 || ow == 0 {
        return Err(GemmError::EmptyDimension {
            what: "output size",
        });
    }
    check_len("input", n * ih * iw * c, x.len())?;
    check_len("output", n * oh * ow * c, out.len())?;
    let sh = ih as f32 / oh as f32;
    let sw = iw as f32 / ow as f32;
    let src_of = |o: usize, s: f32, len: usize| ((o as f32 * s).floor() as usize).min(len - 1);
    for b in 0..n {
        for y in 0..oh {
            let sy = src_of(y, sh, ih);
            for xx in 0..ow {
                let sx = src_of(xx, sw, iw);
                let src = ((b * ih + sy) * iw + sx) * c;
                let dst = ((b * oh + y) * ow + xx) * c;
                out[dst..dst + c].copy_from_slice(&x[src..src + c]);
            }
        }
    }
    Ok(())
}
