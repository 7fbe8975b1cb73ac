//! The shared convolution arithmetic on raw NCHW slices. Forward: the kernels of
//! `qkernels::float` for depthwise convolutions and for ungrouped ones other than plain-GEMM
//! 1 × 1s (`conv2d`: direct, or Winograd F(2×2, 3×3) for 3 × 3 stride-1 layers with ≥ 16
//! channels, equal to the direct sum up to float rounding), otherwise im2col + GEMM per image
//! and group (several small images per GEMM). The forward runs on the current rayon pool (the
//! qkernels convolutions split over images or output channels, the GEMMs take
//! `Threads::Rayon(0)`; the bits do not depend on the pool's size). Backward: im2col + GEMM,
//! one thread (the GEMM crate's own threads made LeNet's batch-64 train step slower, 5.6 ->
//! 8.6 ms on a 2-thread pool, Zen 4).
//!
//! Used by Conv2d, Conv1d (as a 1 x L plane) and ConvTranspose2d (whose forward is a
//! convolution's input gradient and whose backward is a convolution's forward).

use half::f16;
use qkernels::float::{
    Conv2dGeom, ConvWindow, DepthwiseGeom, FloatMat, MatMut, MatRef, Threads, conv2d,
    depthwise_conv2d_vec, gemm_mixed, sgemm, widen_f16_slice,
};

use super::im2col::{Geom, col2im, col2im_ld, im2col, im2col_ld};
use crate::error::Result;

/// Channel counts of a grouped convolution from its "input" planes (`h x w` in [`Geom`]) to its
/// "output" planes (`oh x ow`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Channels {
    pub cin: usize,
    pub cout: usize,
    pub groups: usize,
}

impl Channels {
    fn per_group(&self) -> (usize, usize) {
        (self.cin / self.groups, self.cout / self.groups)
    }
}

/// A convolution weight, f32 or (after `half()`) f16, `[cout, cin/groups, kh, kw]` row-major.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ConvWeight<'a> {
    /// f32 storage.
    F32(&'a [f32]),
    /// f16 storage, widened inside the mixed GEMM.
    F16(&'a [f16]),
}

impl<'a> ConvWeight<'a> {
    /// Rows `rows` of the `[cout, k]` weight matrix, as a GEMM operand.
    fn block(&self, rows: std::ops::Range<usize>, k: usize) -> Result<FloatMat<'a>> {
        let (r0, r1) = (rows.start * k, rows.end * k);
        Ok(match *self {
            ConvWeight::F32(w) => FloatMat::F32(MatRef::row_major(&w[r0..r1], rows.len(), k)?),
            ConvWeight::F16(w) => FloatMat::F16(MatRef::row_major(&w[r0..r1], rows.len(), k)?),
        })
    }
}

/// `y = conv(x, w) + b` for `n` images; `w` is `[cout, cin/groups, kh, kw]` row-major.
pub(crate) fn conv_forward(
    ch: Channels,
    g: &Geom,
    n: usize,
    x: &[f32],
    w: ConvWeight<'_>,
    bias: Option<&[f32]>,
) -> Result<Vec<f32>> {
    let (cin_g, cout_g) = ch.per_group();
    let k = cin_g * g.kh * g.kw;
    let (plane_in, ohw) = (g.h * g.w, g.oh * g.ow);
    let (in_img, out_img) = (ch.cin * plane_in, ch.cout * ohw);
    if ch.groups == ch.cin && ch.cin == ch.cout {
        return depthwise_forward(ch.cin, g, n, x, w, bias);
    }
    let mut out = vec![0.0f32; n * out_img];
    if ch.groups == 1 && !is_plain_gemm(g) {
        direct_forward(ch, g, n, x, w, bias, &mut out)?;
        return Ok(out);
    }
    let batch = images_per_gemm(k, ohw, n);
    if ch.groups == 1 && batch > 1 {
        conv_forward_batched(ch, g, n, batch, x, w, bias, &mut out)?;
        return Ok(out);
    }
    let mut cols = vec![0.0f32; k * ohw];
    for b in 0..n {
        let ximg = &x[b * in_img..(b + 1) * in_img];
        let yimg = &mut out[b * out_img..(b + 1) * out_img];
        if let Some(bias) = bias {
            for (plane, &bv) in yimg.chunks_exact_mut(ohw.max(1)).zip(bias) {
                plane.fill(bv);
            }
        }
        let beta = if bias.is_some() { 1.0 } else { 0.0 };
        for grp in 0..ch.groups {
            im2col(
                &ximg[grp * cin_g * plane_in..(grp + 1) * cin_g * plane_in],
                cin_g,
                g,
                &mut cols,
            );
            let wg = w.block(grp * cout_g..(grp + 1) * cout_g, k)?;
            let yg = &mut yimg[grp * cout_g * ohw..(grp + 1) * cout_g * ohw];
            gemm_mixed(
                1.0,
                wg,
                FloatMat::F32(MatRef::row_major(&cols, k, ohw)?),
                beta,
                MatMut::row_major(yg, cout_g, ohw)?,
                Threads::Rayon(0),
            )?;
        }
    }
    Ok(out)
}

/// Whether the convolution is a plain GEMM (1 x 1 kernel, stride 1, no padding): then the
/// column matrix is the input itself and the GEMM crate runs it as is, faster than the direct
/// kernel's panel copies (measured on 1 x 256 x 14 x 14 -> 1024: 1.15-1.20 ms vs 1.5 ms,
/// best of 30, Zen 2). Every other ungrouped convolution takes the direct kernel: LeNet's
/// conv2 (6 -> 16, 5 x 5 on 14 x 14, batch 64) went from about 2.0 to 1.2 ms.
fn is_plain_gemm(g: &Geom) -> bool {
    (g.kh, g.kw, g.sh, g.sw, g.ph, g.pw) == (1, 1, 1, 1, 0, 0)
}

/// The direct kernels' window of a convolution geometry.
fn window(g: &Geom) -> ConvWindow {
    ConvWindow::new([g.h, g.w], [g.kh, g.kw])
        .stride([g.sh, g.sw])
        .padding([g.ph, g.pw])
        .dilation([g.dh, g.dw])
}

/// The f32 weight: as stored, or widened from f16 into `wide` (exact).
fn f32_weight<'a>(w: ConvWeight<'a>, wide: &'a mut Vec<f32>) -> &'a [f32] {
    match w {
        ConvWeight::F32(w) => w,
        ConvWeight::F16(h) => {
            wide.resize(h.len(), 0.0);
            widen_f16_slice(h, wide);
            wide
        }
    }
}

/// Ungrouped [`conv_forward`] on the direct kernel.
fn direct_forward(
    ch: Channels,
    g: &Geom,
    n: usize,
    x: &[f32],
    w: ConvWeight<'_>,
    bias: Option<&[f32]>,
    out: &mut [f32],
) -> Result<()> {
    let cg = Conv2dGeom::new(ch.cin, ch.cout, window(g));
    let mut wide = Vec::new();
    conv2d(x, n, &cg, f32_weight(w, &mut wide), bias, out)?;
    Ok(())
}

/// [`conv_forward`] of a depthwise convolution (one filter per channel) on the direct kernel
/// (`qkernels::float::depthwise_conv2d`): no column matrix, the output rows accumulate tap by
/// tap, written once into a fresh output. f16 weights are widened first (exactly; they are
/// only `channels · kh · kw` values).
fn depthwise_forward(
    channels: usize,
    g: &Geom,
    n: usize,
    x: &[f32],
    w: ConvWeight<'_>,
    bias: Option<&[f32]>,
) -> Result<Vec<f32>> {
    let dg = DepthwiseGeom::new(channels, window(g));
    let mut wide = Vec::new();
    Ok(depthwise_conv2d_vec(
        x,
        n,
        &dg,
        f32_weight(w, &mut wide),
        bias,
    )?)
}

/// How many images [`conv_forward`] lays side by side in one column matrix: for small output
/// planes (LeNet's 10 x 10), as many as fit in about 1 MiB of columns, so that they make one
/// wide GEMM instead of many narrow ones. Measured single-threaded at batch 64: conv 6→16 k5 on
/// 14 x 14 went from 1.2 ms to 0.8 ms; conv 1→6 k5 on 32 x 32 (28 x 28 outputs) was 2x slower
/// batched, hence per image above 256 outputs per plane.
fn images_per_gemm(k: usize, ohw: usize, n: usize) -> usize {
    if ohw >= 256 {
        // wide planes already make wide GEMMs; the scatter would only add a copy
        return 1;
    }
    (262_144 / (k * ohw).max(1)).clamp(1, n.max(1))
}

/// Ungrouped [`conv_forward`] with `batch` images per GEMM: `W [cout, k] x cols [k, batch * ohw]`
/// into a `[cout, batch * ohw]` scratch, then scattered into each image's NCHW planes.
#[allow(clippy::too_many_arguments)]
fn conv_forward_batched(
    ch: Channels,
    g: &Geom,
    n: usize,
    batch: usize,
    x: &[f32],
    w: ConvWeight<'_>,
    bias: Option<&[f32]>,
    out: &mut [f32],
) -> Result<()> {
    let k = ch.cin * g.kh * g.kw;
    let (plane_in, ohw) = (g.h * g.w, g.oh * g.ow);
    let (in_img, out_img) = (ch.cin * plane_in, ch.cout * ohw);
    let mut cols = vec![0.0f32; k * batch * ohw];
    let mut y = vec![0.0f32; ch.cout * batch * ohw];
    let mut b0 = 0;
    while b0 < n {
        let nb = batch.min(n - b0);
        let ld = nb * ohw;
        for i in 0..nb {
            let ximg = &x[(b0 + i) * in_img..(b0 + i + 1) * in_img];
            im2col_ld(ximg, ch.cin, g, &mut cols[i * ohw..], ld);
        }
        gemm_mixed(
            1.0,
            w.block(0..ch.cout, k)?,
            FloatMat::F32(MatRef::row_major(&cols[..k * ld], k, ld)?),
            0.0,
            MatMut::row_major(&mut y[..ch.cout * ld], ch.cout, ld)?,
            Threads::Rayon(0),
        )?;
        for i in 0..nb {
            let yimg = &mut out[(b0 + i) * out_img..(b0 + i + 1) * out_img];
            for (co, plane) in yimg.chunks_exact_mut(ohw.max(1)).enumerate() {
                let src = &y[co * ld + i * ohw..co * ld + (i + 1) * ohw];
                match bias {
                    Some(bias) => {
                        let bv = bias[co];
                        plane.iter_mut().zip(src).for_each(|(d, &s)| *d = s + bv);
                    }
                    None => plane.copy_from_slice(src),
                }
            }
        }
        b0 += nb;
    }
    Ok(())
}

/// `db += ` the sum of `gy` over images and output positions.
fn bias_grad(db: &mut [f32], gy: &[f32], n: usize, out_img: usize, ohw: usize) {
    for b in 0..n {
        for (d, plane) in db
            .iter_mut()
            .zip(gy[b * out_img..(b + 1) * out_img].chunks_exact(ohw.max(1)))
        {
            *d += plane.iter().sum::<f32>();
        }
    }
}

/// Ungrouped weight and input gradients with `batch` images per GEMM (the layout of
/// [`conv_forward_batched`]): `dY` gathered into `[cout, batch * ohw]`, then
/// `dW += dY colsᵀ` and `dcols = Wᵀ dY`, scattered back per image.
#[allow(clippy::too_many_arguments)]
fn conv_backward_batched(
    ch: Channels,
    g: &Geom,
    n: usize,
    batch: usize,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    dw: &mut [f32],
    dx: &mut [f32],
) -> Result<()> {
    let k = ch.cin * g.kh * g.kw;
    let (plane_in, ohw) = (g.h * g.w, g.oh * g.ow);
    let (in_img, out_img) = (ch.cin * plane_in, ch.cout * ohw);
    let mut cols = vec![0.0f32; k * batch * ohw];
    let mut dcols = vec![0.0f32; k * batch * ohw];
    let mut gcat = vec![0.0f32; ch.cout * batch * ohw];
    let mut b0 = 0;
    while b0 < n {
        let nb = batch.min(n - b0);
        let ld = nb * ohw;
        for i in 0..nb {
            let ximg = &x[(b0 + i) * in_img..(b0 + i + 1) * in_img];
            im2col_ld(ximg, ch.cin, g, &mut cols[i * ohw..], ld);
            let gimg = &gy[(b0 + i) * out_img..(b0 + i + 1) * out_img];
            for (co, plane) in gimg.chunks_exact(ohw.max(1)).enumerate() {
                gcat[co * ld + i * ohw..co * ld + (i + 1) * ohw].copy_from_slice(plane);
            }
        }
        let gg = MatRef::row_major(&gcat[..ch.cout * ld], ch.cout, ld)?;
        // dW += dY colsᵀ
        sgemm(
            1.0,
            gg,
            MatRef::row_major(&cols[..k * ld], k, ld)?.t(),
            1.0,
            MatMut::row_major(dw, ch.cout, k)?,
            Threads::Single,
        )?;
        // dcols = Wᵀ dY
        sgemm(
            1.0,
            MatRef::row_major(w, ch.cout, k)?.t(),
            gg,
            0.0,
            MatMut::row_major(&mut dcols[..k * ld], k, ld)?,
            Threads::Single,
        )?;
        for i in 0..nb {
            let dimg = &mut dx[(b0 + i) * in_img..(b0 + i + 1) * in_img];
            col2im_ld(&dcols[i * ohw..], ch.cin, g, dimg, ld);
        }
        b0 += nb;
    }
    Ok(())
}

/// Returns `dx` and accumulates `dw` (and `db`) for the convolution of [`conv_forward`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_backward(
    ch: Channels,
    g: &Geom,
    n: usize,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
) -> Result<Vec<f32>> {
    let (cin_g, cout_g) = ch.per_group();
    let k = cin_g * g.kh * g.kw;
    let (plane_in, ohw) = (g.h * g.w, g.oh * g.ow);
    let (in_img, out_img) = (ch.cin * plane_in, ch.cout * ohw);
    let mut dx = vec![0.0f32; n * in_img];
    let batch = images_per_gemm(k, ohw, n);
    if ch.groups == 1 && batch > 1 {
        if let Some(db) = db {
            bias_grad(db, gy, n, out_img, ohw);
        }
        conv_backward_batched(ch, g, n, batch, x, w, gy, dw, &mut dx)?;
        return Ok(dx);
    }
    let mut cols = vec![0.0f32; k * ohw];
    let mut dcols = vec![0.0f32; k * ohw];
    if let Some(db) = db {
        for b in 0..n {
            for (d, plane) in db
                .iter_mut()
                .zip(gy[b * out_img..(b + 1) * out_img].chunks_exact(ohw.max(1)))
            {
                *d += plane.iter().sum::<f32>();
            }
        }
    }
    for b in 0..n {
        let ximg = &x[b * in_img..(b + 1) * in_img];
        let gimg = &gy[b * out_img..(b + 1) * out_img];
        for grp in 0..ch.groups {
            im2col(
                &ximg[grp * cin_g * plane_in..(grp + 1) * cin_g * plane_in],
                cin_g,
                g,
                &mut cols,
            );
            let gg = MatRef::row_major(
                &gimg[grp * cout_g * ohw..(grp + 1) * cout_g * ohw],
                cout_g,
                ohw,
            )?;
            // dW_g += dY_g colsᵀ
            let dwg = &mut dw[grp * cout_g * k..(grp + 1) * cout_g * k];
            sgemm(
                1.0,
                gg,
                MatRef::row_major(&cols, k, ohw)?.t(),
                1.0,
                MatMut::row_major(dwg, cout_g, k)?,
                Threads::Single,
            )?;
            // dcols = W_gᵀ dY_g, scattered back into dx
            let wg = &w[grp * cout_g * k..(grp + 1) * cout_g * k];
            sgemm(
                1.0,
                MatRef::row_major(wg, cout_g, k)?.t(),
                gg,
                0.0,
                MatMut::row_major(&mut dcols, k, ohw)?,
                Threads::Single,
            )?;
            col2im(
                &dcols,
                cin_g,
                g,
                &mut dx[b * in_img + grp * cin_g * plane_in
                    ..b * in_img + (grp + 1) * cin_g * plane_in],
            );
        }
    }
    Ok(dx)
}

/// Transposed convolution: `y = convᵀ(x, w) + b`, where the convolution maps `y`-shaped planes
/// (`h x w` in `g`) to `x`-shaped planes (`oh x ow`). `ch` describes that convolution
/// (`cin` = channels of `y`, `cout` = channels of `x`); `w` is `[cout, cin/groups, kh, kw]`,
/// which is PyTorch's ConvTranspose weight layout `[in, out/groups, kh, kw]`.
pub(crate) fn conv_transpose_forward(
    ch: Channels,
    g: &Geom,
    n: usize,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
) -> Result<Vec<f32>> {
    let (cy_g, cx_g) = ch.per_group();
    let k = cy_g * g.kh * g.kw;
    let (plane_y, plane_x) = (g.h * g.w, g.oh * g.ow);
    let (y_img, x_img) = (ch.cin * plane_y, ch.cout * plane_x);
    let mut out = vec![0.0f32; n * y_img];
    let mut cols = vec![0.0f32; k * plane_x];
    for b in 0..n {
        let yimg = &mut out[b * y_img..(b + 1) * y_img];
        for grp in 0..ch.groups {
            let xg = MatRef::row_major(
                &x[b * x_img + grp * cx_g * plane_x..b * x_img + (grp + 1) * cx_g * plane_x],
                cx_g,
                plane_x,
            )?;
            let wg = &w[grp * cx_g * k..(grp + 1) * cx_g * k];
            sgemm(
                1.0,
                MatRef::row_major(wg, cx_g, k)?.t(),
                xg,
                0.0,
                MatMut::row_major(&mut cols, k, plane_x)?,
                Threads::Rayon(0),
            )?;
            col2im(
                &cols,
                cy_g,
                g,
                &mut yimg[grp * cy_g * plane_y..(grp + 1) * cy_g * plane_y],
            );
        }
        if let Some(bias) = bias {
            for (plane, &bv) in yimg.chunks_exact_mut(plane_y.max(1)).zip(bias) {
                plane.iter_mut().for_each(|v| *v += bv);
            }
        }
    }
    Ok(out)
}

/// Returns `dx` and accumulates `dw` (and `db`) for [`conv_transpose_forward`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_transpose_backward(
    ch: Channels,
    g: &Geom,
    n: usize,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
) -> Result<Vec<f32>> {
    let (cy_g, cx_g) = ch.per_group();
    let k = cy_g * g.kh * g.kw;
    let (plane_y, plane_x) = (g.h * g.w, g.oh * g.ow);
    let (y_img, x_img) = (ch.cin * plane_y, ch.cout * plane_x);
    let mut dx = vec![0.0f32; n * x_img];
    let mut dcols = vec![0.0f32; k * plane_x];
    if let Some(db) = db {
        for b in 0..n {
            for (d, plane) in db
                .iter_mut()
                .zip(gy[b * y_img..(b + 1) * y_img].chunks_exact(plane_y.max(1)))
            {
                *d += plane.iter().sum::<f32>();
            }
        }
    }
    for b in 0..n {
        for grp in 0..ch.groups {
            im2col(
                &gy[b * y_img + grp * cy_g * plane_y..b * y_img + (grp + 1) * cy_g * plane_y],
                cy_g,
                g,
                &mut dcols,
            );
            let dc = MatRef::row_major(&dcols, k, plane_x)?;
            let wg = &w[grp * cx_g * k..(grp + 1) * cx_g * k];
            let dxg =
                &mut dx[b * x_img + grp * cx_g * plane_x..b * x_img + (grp + 1) * cx_g * plane_x];
            sgemm(
                1.0,
                MatRef::row_major(wg, cx_g, k)?,
                dc,
                0.0,
                MatMut::row_major(dxg, cx_g, plane_x)?,
                Threads::Single,
            )?;
            let xg = MatRef::row_major(
                &x[b * x_img + grp * cx_g * plane_x..b * x_img + (grp + 1) * cx_g * plane_x],
                cx_g,
                plane_x,
            )?;
            let dwg = &mut dw[grp * cx_g * k..(grp + 1) * cx_g * k];
            sgemm(
                1.0,
                xg,
                dc.t(),
                1.0,
                MatMut::row_major(dwg, cx_g, k)?,
                Threads::Single,
            )?;
        }
    }
    Ok(dx)
}
