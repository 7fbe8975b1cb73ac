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

    /// Input column touched by output column `ox` and kernel column `j`, or `None` in the padding.
    #[inline]
    pub fn in_x(&self, ox: usize, j: usize) -> Option<usize> {
        (ox * self.sw + j * self.dw)
            .checked_sub(self.pw)
            .filter(|&x| x < self.w)
    }
}

/// Writes the `[channels * kh * kw, oh * ow]` column matrix of `x` (`channels` planes of `h x w`).
pub(crate) fn im2col(x: &[f32], channels: usize, g: &Geom, cols: &mut [f32]) {
    let plane = g.h * g.w;
    let ncols = g.oh * g.ow;
    for c in 0..channels {
        let xc = &x[c * plane..(c + 1) * plane];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = (c * g.kh + i) * g.kw + j;
                let dst = &mut cols[row * ncols..(row + 1) * ncols];
                for oy in 0..g.oh {
                    let drow = &mut dst[oy * g.ow..(oy + 1) * g.ow];
                    match g.in_y(oy, i) {
                        None => drow.fill(0.0),
                        Some(y) => {
                            let src = &xc[y * g.w..(y + 1) * g.w];
                            if g.sw == 1 && g.pw == 0 && g.dw == 1 {
                                drow.copy_from_slice(&src[j..j + g.ow]);
                            } else {
                                for (ox, d) in drow.iter_mut().enumerate() {
                                    *d = g.in_x(ox, j).map_or(0.0, |xx| src[xx]);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Adds the column matrix `cols` back into the `channels` planes of `dx` (the adjoint of [`im2col`]).
pub(crate) fn col2im(cols: &[f32], channels: usize, g: &Geom, dx: &mut [f32]) {
    let plane = g.h * g.w;
    let ncols = g.oh * g.ow;
    for c in 0..channels {
        let dxc = &mut dx[c * plane..(c + 1) * plane];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = (c * g.kh + i) * g.kw + j;
                let src = &cols[row * ncols..(row + 1) * ncols];
                for oy in 0..g.oh {
                    if let Some(y) = g.in_y(oy, i) {
                        let srow = &src[oy * g.ow..(oy + 1) * g.ow];
                        let drow = &mut dxc[y * g.w..(y + 1) * g.w];
                        for (ox, v) in srow.iter().enumerate() {
                            if let Some(xx) = g.in_x(ox, j) {
                                drow[xx] += v;
                            }
                        }
                    }
                }
            }
        }
    }
}
