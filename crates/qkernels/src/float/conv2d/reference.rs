//! The scalar oracle of the direct convolution: the definition, one output at a time.

use super::{Conv2dGeom, check};
use crate::float::error::Result;

/// [`super::conv2d`] computed naively: for every output, `acc = 0`, then for
/// `k = (c, i, j)` in increasing order `acc = fma(w[co, c, i, j], x_in, acc)` (with `x_in = 0`
/// in the padding), then `acc + bias[co]`. Errors as [`super::conv2d`].
pub fn reference_conv2d(
    x: &[f32],
    n: usize,
    g: &Conv2dGeom,
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) -> Result<()> {
    let [oh, ow] = check(x, n, g, weight, bias, out)?;
    let win = &g.window;
    let ([h, w], [kh, kw], cin) = (win.input, win.kernel, g.in_channels);
    let at = |img: usize, c: usize, y: usize, x_: usize| -> f32 {
        match (
            y.checked_sub(win.padding[0]),
            x_.checked_sub(win.padding[1]),
        ) {
            (Some(y), Some(xi)) if y < h && xi < w => x[((img * cin + c) * h + y) * w + xi],
            _ => 0.0,
        }
    };
    for img in 0..n {
        for co in 0..g.out_channels {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0.0f32;
                    for c in 0..cin {
                        for i in 0..kh {
                            for j in 0..kw {
                                let v = at(
                                    img,
                                    c,
                                    oy * win.stride[0] + i * win.dilation[0],
                                    ox * win.stride[1] + j * win.dilation[1],
                                );
                                let wv = weight[((co * cin + c) * kh + i) * kw + j];
                                acc = wv.mul_add(v, acc);
                            }
                        }
                    }
                    let b = bias.map_or(0.0, |b| b[co]);
                    out[((img * g.out_channels + co) * oh + oy) * ow + ox] = acc + b;
                }
            }
        }
    }
    Ok(())
}
