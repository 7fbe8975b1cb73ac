//! # Pooling on NHWC quint8 tensors, with PyTorch's (x86) numerics
//!
//! * [`max_pool2d`]: the integer maximum over the window (padding never wins); qparams
//!   unchanged.
//! * [`avg_pool2d`]: `acc = Σ q − zp·size` over the in-bounds window, `multiplier =
//!   f32(f32(s_in / s_out) / divisor)`; channels `c < C − C mod 16` take torch's AVX-512
//!   vector path `zp_out + rne(f32(acc · multiplier))`, the remaining channels its scalar
//!   path `zp_out + rne(f32(acc · f32(1 / f32(1 / multiplier))))` (`_qavg_pool_nhwc_kernel`).
//! * Both take PyTorch's `ceil_mode` ([`Pool2d::ceil_mode`]): the output size rounds up (one
//!   more, partial window at the end of an axis, unless it would start in the right padding);
//!   windows are clipped to the input as at the edges, and an average's divisor counts the
//!   clipped window's cells inside `input + padding` (`count_include_pad`) or inside the input.
//! * [`adaptive_avg_pool2d`]: windows `⌊o·I/O⌋ .. ⌈(o+1)·I/O⌉`, every channel quantized with
//!   the scalar form above (`_qadaptive_avg_pool_kernel`).
//!
//! Errors are [`crate::GemmError`] values.

use crate::eltwise::QParams;
use crate::error::{GemmError, Result};

/// Channels per AVX-512 step of torch's quantized average pooling (16 int32 lanes); the
/// channels after the last full step use its scalar formula.
pub const TORCH_AVG_POOL_VEC_WIDTH: usize = 16;

/// Shape of a 2-d pooling window on `N × H × W × C` data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2d {
    /// `[N, H, W, C]` of the input.
    pub input: [usize; 4],
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[sh, sw]` (PyTorch's default is the kernel size).
    pub stride: [usize; 2],
    /// `[ph, pw]`, at most half the kernel.
    pub padding: [usize; 2],
    /// `[dh, dw]` (max pooling only; 1 for average pooling).
    pub dilation: [usize; 2],
    /// PyTorch's `ceil_mode`: round the output size up instead of down.
    pub ceil_mode: bool,
}

impl Pool2d {
    /// Output `[OH, OW]`, checking the values: ATen's `pooling_output_shape`, i.e.
    /// `⌊(I + 2p − d(k − 1) − 1) / s⌋ + 1` in floor mode; in ceil mode rounded up, minus one
    /// when the last window would start at or after `I + p` (in the right padding).
    pub fn output(&self) -> Result<[usize; 2]> {
        let mut out = [0; 2];
        #[allow(clippy::needless_range_loop)] // d indexes five arrays
        for d in 0..2 {
            let (k, s, p, dl) = (
                self.kernel[d],
                self.stride[d],
                self.padding[d],
                self.dilation[d],
            );
            if k == 0 || s == 0 || dl == 0 || self.input[1 + d] == 0 {
                return Err(GemmError::EmptyDimension {
                    what: "pool kernel, stride, dilation or input size",
                });
            }
            if 2 * p > k {
                return Err(GemmError::StrideTooSmall {
                    what: "pool kernel (must be at least twice the padding)",
                    stride: k,
                    row_len: 2 * p,
                });
            }
            let extent = dl * (k - 1) + 1;
            let padded = self.input[1 + d] + 2 * p;
            if extent > padded {
                return Err(GemmError::StrideTooSmall {
                    what: "padded pool input (smaller than the window)",
                    stride: padded,
                    row_len: extent,
                });
            }
            let span = padded - extent;
            out[d] = if self.ceil_mode {
                let o = span.div_ceil(s) + 1;
                if (o - 1) * s >= self.input[1 + d] + p {
                    o - 1
                } else {
                    o
                }
            } else {
                span / s + 1
            };
        }
        Ok(out)
    }

    /// True when every window lies inside the input (no padding, no dilation, and no partial
    /// ceil-mode window at the end of an axis).
    fn windows_inside(&self, [oh, ow]: [usize; 2]) -> bool {
        self.padding == [0, 0]
            && self.dilation == [1, 1]
            && (oh - 1) * self.stride[0] + self.kernel[0] <= self.input[1]
            && (ow - 1) * self.stride[1] + self.kernel[1] <= self.input[2]
    }
}

fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    crate::eltwise::check_len(what, expected, got)
}

/// `quantized::max_pool2d` on NHWC data (qparams unchanged).
pub fn max_pool2d(x: &[u8], p: &Pool2d, out: &mut [u8]) -> Result<()> {
    let [oh, ow] = p.output()?;
    let [n, ih, iw, c] = p.input;
    check_len("input", n * ih * iw * c, x.len())?;
    check_len("output", n * oh * ow * c, out.len())?;
    if c == 0 || out.is_empty() {
        return Ok(());
    }
    if p.windows_inside([oh, ow]) {
        max_pool2d_inside(x, p, [oh, ow], out);
        return Ok(());
    }
    for b in 0..n {
        for y in 0..oh {
            for xx in 0..ow {
                let dst = &mut out[((b * oh + y) * ow + xx) * c..][..c];
                dst.fill(0);
                for ky in 0..p.kernel[0] {
                    let Some(iy) = (y * p.stride[0] + ky * p.dilation[0])
                        .checked_sub(p.padding[0])
                        .filter(|&v| v < ih)
                    else {
                        continue;
                    };
                    for kx in 0..p.kernel[1] {
                        let Some(ix) = (xx * p.stride[1] + kx * p.dilation[1])
                            .checked_sub(p.padding[1])
                            .filter(|&v| v < iw)
                        else {
                            continue;
                        };
                        let src = &x[((b * ih + iy) * iw + ix) * c..][..c];
                        for (d, &v) in dst.iter_mut().zip(src) {
                            *d = (*d).max(v);
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// [`max_pool2d`] without padding or dilation (every window inside the input; e.g. LeNet's
/// 2×2 pools): per output row, the element-wise maximum of the window's `kh` input rows
/// (whole rows at a time, which vectorizes), then of the `kw` columns for every window start
/// (again whole rows: `cols[i] = max_kx rows[i + kx·C]`), then one short copy of `C` bytes
/// per output pixel. Callers checked the lengths and `c > 0`.
fn max_pool2d_inside(x: &[u8], p: &Pool2d, [oh, ow]: [usize; 2], out: &mut [u8]) {
    let [n, ih, iw, c] = p.input;
    let ([kh, kw], [sh, sw]) = (p.kernel, p.stride);
    let row_len = iw * c;
    // window starts 0..=iw − kw; 16 spare bytes let `copy_short` move fixed-size blocks
    let cols_len = (iw + 1 - kw) * c;
    let mut rows_max = vec![0u8; row_len];
    let mut cols_max = vec![0u8; cols_len + 16];
    for b in 0..n {
        for (y, dst_row) in out[b * oh * ow * c..(b + 1) * oh * ow * c]
            .chunks_exact_mut(ow * c)
            .enumerate()
        {
            // the first maximum is taken of two rows (or columns) at once, not by a copy:
            // short copies are library calls
            let first = (b * ih + y * sh) * row_len;
            let row0 = &x[first..first + row_len];
            if kh >= 2 {
                let row1 = &x[first + row_len..first + 2 * row_len];
                for ((m, &a), &v) in rows_max.iter_mut().zip(row0).zip(row1) {
                    *m = a.max(v);
                }
            } else {
                rows_max.copy_from_slice(row0);
            }
            for ky in 2..kh {
                let row = &x[first + ky * row_len..first + (ky + 1) * row_len];
                for (m, &v) in rows_max.iter_mut().zip(row) {
                    *m = (*m).max(v);
                }
            }
            let cols = &mut cols_max[..cols_len];
            if kw >= 2 {
                for ((m, &a), &v) in cols.iter_mut().zip(&rows_max).zip(&rows_max[c..]) {
                    *m = a.max(v);
                }
            } else {
                cols.copy_from_slice(&rows_max[..cols_len]);
            }
            for kx in 2..kw {
                for (m, &v) in cols.iter_mut().zip(&rows_max[kx * c..]) {
                    *m = (*m).max(v);
                }
            }
            if sw == 1 {
                dst_row.copy_from_slice(&cols_max[..ow * c]);
                continue;
            }
            for xx in 0..ow {
                copy_short(dst_row, xx * c, &cols_max, xx * sw * c, c);
            }
        }
    }
}

/// `dst[at..at + c] = src[from..from + c]` for a short run `c`: one fixed 8- or 16-byte
/// move when both sides have room (the bytes after `c` in `dst` are rewritten later by the
/// caller's next run), else an exact copy.
#[inline(always)]
fn copy_short(dst: &mut [u8], at: usize, src: &[u8], from: usize, c: usize) {
    if c <= 8 && at + 8 <= dst.len() && from + 8 <= src.len() {
        dst[at..at + 8].copy_from_slice(&src[from..from + 8]);
    } else if c <= 16 && at + 16 <= dst.len() && from + 16 <= src.len() {
        dst[at..at + 16].copy_from_slice(&src[from..from + 16]);
    } else {
        dst[at..at + c].copy_from_slice(&src[from..from + c]);
    }
}

/// Torch's scalar quantization of an average: `quantize_val(1/multiplier, zp, acc)`.
fn quantize_scalar_path(acc: i32, multiplier: f32, zp: i32) -> u8 {
    let scale = 1.0f32 / multiplier;
    qtensor::quantize_val(acc as f32, 1.0f32 / scale, zp, 0, 255) as u8
}

/// Torch's AVX-512 quantization of an average: `zp + rne(acc · multiplier)`, clamped.
fn quantize_vector_path(acc: i32, multiplier: f32, zp: i32) -> u8 {
    qtensor::quantize_val(acc as f32, multiplier, zp, 0, 255) as u8
}

/// `quantized::avg_pool2d` on NHWC data (either `ceil_mode`), dilation must be 1.
pub fn avg_pool2d(
    x: &[u8],
    qin: QParams,
    p: &Pool2d,
    count_include_pad: bool,
    divisor_override: Option<usize>,
    qout: QParams,
    out: &mut [u8],
) -> Result<()> {
    qin.check("input qparams")?;
    qout.check("output qparams")?;
    if p.dilation != [1, 1] {
        return Err(GemmError::StrideTooSmall {
            what: "avg_pool2d dilation (must be 1)",
            stride: p.dilation[0].max(p.dilation[1]),
            row_len: 1,
        });
    }
    if divisor_override == Some(0) {
        return Err(GemmError::EmptyDimension {
            what: "divisor_override",
        });
    }
    let [oh, ow] = p.output()?;
    let [n, ih, iw, c] = p.input;
    check_len("input", n * ih * iw * c, x.len())?;
    check_len("output", n * oh * ow * c, out.len())?;
    let c_vec = c / TORCH_AVG_POOL_VEC_WIDTH * TORCH_AVG_POOL_VEC_WIDTH;
    let mut acc = vec![0i32; c];
    for b in 0..n {
        for y in 0..oh {
            for xx in 0..ow {
                let h0 = (y * p.stride[0]) as isize - p.padding[0] as isize;
                let w0 = (xx * p.stride[1]) as isize - p.padding[1] as isize;
                let h1 = (h0 + p.kernel[0] as isize).min((ih + p.padding[0]) as isize);
                let w1 = (w0 + p.kernel[1] as isize).min((iw + p.padding[1]) as isize);
                let pool_size = (h1 - h0) * (w1 - w0);
                let (hs, ws) = (h0.max(0) as usize, w0.max(0) as usize);
                let (he, we) = (h1.min(ih as isize) as usize, w1.min(iw as isize) as usize);
                let size = ((he - hs) * (we - ws)) as i32;
                let divisor = divisor_override.unwrap_or(if count_include_pad {
                    pool_size as usize
                } else {
                    size as usize
                });
                let multiplier = qin.scale / qout.scale / divisor as f32;
                acc.fill(-qin.zero_point * size);
                for iy in hs..he {
                    for ix in ws..we {
                        let src = &x[((b * ih + iy) * iw + ix) * c..][..c];
                        for (a, &v) in acc.iter_mut().zip(src) {
                            *a += i32::from(v);
                        }
                    }
                }
                let dst = &mut out[((b * oh + y) * ow + xx) * c..][..c];
                for (ch, (d, &a)) in dst.iter_mut().zip(&acc).enumerate() {
                    *d = if ch < c_vec {
                        quantize_vector_path(a, multiplier, qout.zero_point)
                    } else {
                        quantize_scalar_path(a, multiplier, qout.zero_point)
                    };
                }
            }
        }
    }
    Ok(())
}

/// `quantized::adaptive_avg_pool2d` on NHWC data `[N, H, W, C]` to `[OH, OW]`.
pub fn adaptive_avg_pool2d(
    x: &[u8],
    qin: QParams,
    [n, ih, iw, c]: [usize; 4],
    [oh, ow]: [usize; 2],
    qout: QParams,
    out: &mut [u8],
) -> Result<()> {
    qin.check("input qparams")?;
    qout.check("output qparams")?;
    if oh == 0 || ow == 0 || ih == 0 || iw == 0 {
        return Err(GemmError::EmptyDimension {
            what: "adaptive pool input or output size",
        });
    }
    check_len("input", n * ih * iw * c, x.len())?;
    check_len("output", n * oh * ow * c, out.len())?;
    let start = |o: usize, i: usize, os: usize| ((o * i) as f32 / os as f32).floor() as usize;
    let end = |o: usize, i: usize, os: usize| (((o + 1) * i) as f32 / os as f32).ceil() as usize;
    let mut acc = vec![0i32; c];
    for b in 0..n {
        for y in 0..oh {
            let (hs, he) = (start(y, ih, oh), end(y, ih, oh));
            for xx in 0..ow {
                let (ws, we) = (start(xx, iw, ow), end(xx, iw, ow));
                let size = ((he - hs) * (we - ws)) as i32;
                let multiplier = qin.scale / qout.scale / size as f32;
                acc.fill(-qin.zero_point * size);
                for iy in hs..he {
                    for ix in ws..we {
                        let src = &x[((b * ih + iy) * iw + ix) * c..][..c];
                        for (a, &v) in acc.iter_mut().zip(src) {
                            *a += i32::from(v);
                        }
                    }
                }
                let dst = &mut out[((b * oh + y) * ow + xx) * c..][..c];
                for (d, &a) in dst.iter_mut().zip(&acc) {
                    *d = quantize_scalar_path(a, multiplier, qout.zero_point);
                }
            }
        }
    }
    Ok(())
}
