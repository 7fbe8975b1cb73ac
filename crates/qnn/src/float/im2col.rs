//! im2col / col2im for 2-d convolution on one NCHW image.

/// Geometry of one 2-d convolution or pooling window over an `h x w` plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geom {
    /// Input height and width.
    pub h: usize,
    pub w: usize,
    /// Kernel height and width.
    pub kh: usize,
    pub kw: usize,
    /// Strides.
    pub sh: usize,
    pub sw: usize,
    /// Zero padding on each side.
    pub ph: usize,
    pub pw: usize,
    /// Dilations.
    pub dh: usize,
    pub dw: usize,
    /// Output height and width.
    pub oh: usize,
    pub ow: usize,
}

impl Geom {
    /// Input row touched by output row `oy` and kernel row `i`, or `None` in the padding.
    #[inline]
    pub fn in_y(&self, oy: usize, i: usize) -> Option<usize> {
        (oy * self.sh + i * self.dh)
            .checked_sub(self.ph)
            .filter(|&y| y < self.h)
    }

    /// Input column touched by output column `ox` and kernel column `j`, or `None` in the padding
    /// (the per-element definition that [`valid_cols`] computes in closed form).
    #[cfg(test)]
    pub fn in_x(&self, ox: usize, j: usize) -> Option<usize> {
        (ox * self.sw + j * self.dw)
            .checked_sub(self.pw)
            .filter(|&x| x < self.w)
    }
}

/// The output columns `[lo, hi)` whose input column for kernel column `j` is inside the image
/// (outside it lies the zero padding), and the input column of `lo`.
#[inline]
fn valid_cols(g: &Geom, j: usize) -> (usize, usize, usize) {
    let off = j * g.dw;
    let lo = if off >= g.pw {
        0
    } else {
        (g.pw - off).div_ceil(g.sw)
    };
    let hi = if g.w + g.pw > off {
        ((g.w - 1 + g.pw - off) / g.sw + 1).min(g.ow)
    } else {
        0
    };
    let lo = lo.min(hi);
    (lo, hi, (lo * g.sw + off).saturating_sub(g.pw))
}

/// Writes the `[channels * kh * kw, oh * ow]` column matrix of `x` (`channels` planes of `h x w`).
pub(crate) fn im2col(x: &[f32], channels: usize, g: &Geom, cols: &mut [f32]) {
    im2col_ld(x, channels, g, cols, g.oh * g.ow);
}

/// [`im2col`] into a matrix whose rows are `ld >= oh * ow` apart (several images side by side:
/// image `b`'s columns start at `cols[b * oh * ow..]`).
pub(crate) fn im2col_ld(x: &[f32], channels: usize, g: &Geom, cols: &mut [f32], ld: usize) {
    let plane = g.h * g.w;
    let ncols = g.oh * g.ow;
    for c in 0..channels {
        let xc = &x[c * plane..(c + 1) * plane];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = (c * g.kh + i) * g.kw + j;
                let dst = &mut cols[row * ld..row * ld + ncols];
                let (lo, hi, x0) = valid_cols(g, j);
                for oy in 0..g.oh {
                    let drow = &mut dst[oy * g.ow..(oy + 1) * g.ow];
                    let Some(y) = g.in_y(oy, i) else {
                        drow.fill(0.0);
                        continue;
                    };
                    let src = &xc[y * g.w..(y + 1) * g.w];
                    drow[..lo].fill(0.0);
                    drow[hi..].fill(0.0);
                    if g.sw == 1 {
                        drow[lo..hi].copy_from_slice(&src[x0..x0 + (hi - lo)]);
                    } else {
                        for (k, d) in drow[lo..hi].iter_mut().enumerate() {
                            *d = src[x0 + k * g.sw];
                        }
                    }
                }
            }
        }
    }
}

/// Adds the column matrix `cols` back into the `channels` planes of `dx` (the adjoint of [`im2col`]).
pub(crate) fn col2im(cols: &[f32], channels: usize, g: &Geom, dx: &mut [f32]) {
    col2im_ld(cols, channels, g, dx, g.oh * g.ow);
}

/// [`col2im`] from a matrix whose rows are `ld >= oh * ow` apart (the layout of [`im2col_ld`]).
pub(crate) fn col2im_ld(cols: &[f32], channels: usize, g: &Geom, dx: &mut [f32], ld: usize) {
    let plane = g.h * g.w;
    let ncols = g.oh * g.ow;
    for c in 0..channels {
        let dxc = &mut dx[c * plane..(c + 1) * plane];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = (c * g.kh + i) * g.kw + j;
                let src = &cols[row * ld..row * ld + ncols];
                let (lo, hi, x0) = valid_cols(g, j);
                for oy in 0..g.oh {
                    let Some(y) = g.in_y(oy, i) else { continue };
                    let srow = &src[oy * g.ow + lo..oy * g.ow + hi];
                    let drow = &mut dxc[y * g.w..(y + 1) * g.w];
                    if g.sw == 1 {
                        drow[x0..x0 + srow.len()]
                            .iter_mut()
                            .zip(srow)
                            .for_each(|(d, v)| *d += v);
                    } else {
                        for (k, v) in srow.iter().enumerate() {
                            drow[x0 + k * g.sw] += v;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_column_ranges_match_the_per_element_definition() {
        let mut checked = 0;
        for w in 1usize..9 {
            for kw in 1..4 {
                for sw in 1..4 {
                    for pw in 0..3 {
                        for dw in 1..3 {
                            let span = dw * (kw - 1) + 1;
                            let Some(r) = (w + 2 * pw).checked_sub(span) else {
                                continue;
                            };
                            let ow = r / sw + 1;
                            let g = Geom {
                                h: 1,
                                w,
                                kh: 1,
                                kw,
                                sh: 1,
                                sw,
                                ph: 0,
                                pw,
                                dh: 1,
                                dw,
                                oh: 1,
                                ow,
                            };
                            for j in 0..kw {
                                let (lo, hi, x0) = valid_cols(&g, j);
                                for ox in 0..ow {
                                    let inside = (lo..hi).contains(&ox);
                                    assert_eq!(
                                        g.in_x(ox, j).is_some(),
                                        inside,
                                        "{g:?} j {j} ox {ox}: range {lo}..{hi}"
                                    );
                                    if inside {
                                        assert_eq!(g.in_x(ox, j), Some(x0 + (ox - lo) * sw));
                                    }
                                }
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 500, "{checked}");
    }
}
