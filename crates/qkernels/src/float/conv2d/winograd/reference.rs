//! The scalar oracle of the Winograd convolution: one tile at a time, in the order every
//! family computes.

use super::super::{Conv2dGeom, check};
use super::applies;
use super::transform::{at, bt, g3};
use crate::float::error::Result;
use crate::float::window::conv_error;

/// [`super::winograd_conv2d_with`] computed naively: for every image, output channel and
/// 2 × 2 output tile, `M_ξ = fma chain over c of U_ξ(o, c) · V_ξ(c)` from `0` (the transforms
/// as in the module doc, each a 1-d transform down the columns, then along the rows), then
/// `Aᵀ M A + bias` (`+ 0.0` without one) for the outputs inside the plane. Errors as
/// [`super::winograd_conv2d_with`].
// (index loops: the tile's rows and columns as in the formulas)
#[allow(clippy::needless_range_loop)]
pub fn reference_winograd_conv2d(
    x: &[f32],
    n: usize,
    g: &Conv2dGeom,
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) -> Result<()> {
    let [oh, ow] = check(x, n, g, weight, bias, out)?;
    if !applies(g) {
        return Err(conv_error(format!(
            "Winograd F(2x2, 3x3) needs a 3 x 3 kernel, stride 1 and dilation 1, not {:?}",
            g.window
        )));
    }
    let ([h, w], [ph, pw]) = (g.window.input, g.window.padding);
    let (cin, cout) = (g.in_channels, g.out_channels);
    let padded = |img: usize, c: usize, y: usize, xx: usize| -> f32 {
        match (y.checked_sub(ph), xx.checked_sub(pw)) {
            (Some(y), Some(xi)) if y < h && xi < w => x[((img * cin + c) * h + y) * w + xi],
            _ => 0.0,
        }
    };
    let u: Vec<[[f32; 4]; 4]> = weight
        .chunks_exact(9)
        .map(|k| {
            let cols: [[f32; 4]; 3] = std::array::from_fn(|j| g3([k[j], k[3 + j], k[6 + j]]));
            std::array::from_fn(|i| g3([cols[0][i], cols[1][i], cols[2][i]]))
        })
        .collect();
    for img in 0..n {
        for ty in 0..oh.div_ceil(2) {
            for tx in 0..ow.div_ceil(2) {
                let v: Vec<[[f32; 4]; 4]> = (0..cin)
                    .map(|c| {
                        let d = |i: usize, j: usize| padded(img, c, 2 * ty + i, 2 * tx + j);
                        let cols: [[f32; 4]; 4] =
                            std::array::from_fn(|j| bt([d(0, j), d(1, j), d(2, j), d(3, j)]));
                        std::array::from_fn(|i| {
                            bt([cols[0][i], cols[1][i], cols[2][i], cols[3][i]])
                        })
                    })
                    .collect();
                for o in 0..cout {
                    let mut m = [[0.0f32; 4]; 4];
                    for (c, vc) in v.iter().enumerate() {
                        let uc = &u[o * cin + c];
                        for i in 0..4 {
                            for j in 0..4 {
                                m[i][j] = uc[i][j].mul_add(vc[i][j], m[i][j]);
                            }
                        }
                    }
                    let cols: [[f32; 2]; 4] =
                        std::array::from_fn(|j| at([m[0][j], m[1][j], m[2][j], m[3][j]]));
                    let b = bias.map_or(0.0, |b| b[o]);
                    for a in 0..2 {
                        let y = at([cols[0][a], cols[1][a], cols[2][a], cols[3][a]]);
                        for (bcol, &v) in y.iter().enumerate() {
                            let (oy, ox) = (2 * ty + a, 2 * tx + bcol);
                            if oy < oh && ox < ow {
                                out[((img * cout + o) * oh + oy) * ow + ox] = v + b;
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}
