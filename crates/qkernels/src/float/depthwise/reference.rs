//! The scalar oracle of the depthwise convolution: the definition, one output at a time.

use super::{DepthwiseGeom, check};
use crate::float::error::Result;

/// [`super::depthwise_conv2d`] computed naively: for every output, `acc = bias` (or `0`),
/// then for each tap `(i, j)` in row-major order `acc = fma(w[i, j], x_in, acc)`, with
/// `x_in = 0` in the padding. Errors as [`super::depthwise_conv2d`].
pub fn reference_depthwise_conv2d(
    x: &[f32],
    n: usize,
    g: &DepthwiseGeom,
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) -> Result<()> {
    let [oh, ow] = check(x, n, g, weight, bias, out.len())?;
    let win = &g.window;
    let ([h, w], [kh, kw]) = (win.input, win.kernel);
    let at = |p: usize, y: usize, x_: usize| -> f32 {
        // padded coordinates -> input value or 0
        match (
            y.checked_sub(win.padding[0]),
            x_.checked_sub(win.padding[1]),
        ) {
            (Some(y), Some(xi)) if y < h && xi < w => x[(p * h + y) * w + xi],
            _ => 0.0,
        }
    };
    for p in 0..n * g.channels {
        let c = p % g.channels;
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = bias.map_or(0.0, |b| b[c]);
                for i in 0..kh {
                    for j in 0..kw {
                        let v = at(
                            p,
                            oy * win.stride[0] + i * win.dilation[0],
                            ox * win.stride[1] + j * win.dilation[1],
                        );
                        acc = weight[(c * kh + i) * kw + j].mul_add(v, acc);
                    }
                }
                out[(p * oh + oy) * ow + ox] = acc;
            }
        }
    }
    Ok(())
}
