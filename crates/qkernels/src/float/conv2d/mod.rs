//! Direct (implicit-GEMM) f32 2-d convolution on NCHW data, one group.
//!
//! The product is the im2col GEMM `Y[cout, oh·ow] = W[cout, K] · cols[K, oh·ow]` with
//! `K = cin·kh·kw`, but the column matrix is never written: each input image is copied once
//! into zero-padded, column-phase-split planes (see `phases.rs`), in which the `K` rows of
//! `cols` for 8 consecutive outputs of one output row are 8 consecutive floats at a fixed
//! per-row offset. Two such runs (8-output groups taken in raster order, so a tile may span
//! two output rows and a 56-wide row leaves no tile half empty) are copied into one `[K][16]`
//! panel (a few percent of the work: the panel then serves every output channel), and a
//! register tile of up to 6 output channels × 16 outputs runs one fused multiply-add chain
//! per output over `k = (c, i, j)` in increasing order, streaming the panel and its weights
//! (packed once per call into `[K][rows]` per row tile) sequentially. Outputs are written
//! straight into NCHW planes, with the bias added after the chain.
//!
//! Each output is `fma` chain over `k` from `0`, then `+ bias`, on every family: the AVX2 +
//! FMA family and the portable one are bit for bit equal to the oracle
//! [`reference_conv2d`]. (The `gemm` crate path this replaces in `qnn` sums in another order;
//! results differ from it by float reassociation only.)
//!
//! ```
//! use qkernels::float::{Conv2dGeom, ConvWindow, conv2d};
//! // 2 -> 1 channels, 3 x 3 input, 2 x 2 kernel of ones, no padding: 2 x 2 output of window sums
//! let g = Conv2dGeom::new(2, 1, ConvWindow::new([3, 3], [2, 2]));
//! let x: Vec<f32> = (1..=18).map(|v| v as f32).collect();
//! let mut y = [0.0f32; 4];
//! conv2d(&x, 1, &g, &[1.0; 8], Some(&[0.5]), &mut y)?;
//! assert_eq!(y, [12.0 + 48.0 + 0.5, 16.0 + 52.0 + 0.5, 24.0 + 60.0 + 0.5, 28.0 + 64.0 + 0.5]);
//! # Ok::<(), qkernels::float::FloatGemmError>(())
//! ```

mod reference;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use reference::reference_conv2d;

use super::direct_kernel::DirectConvKernel;
use super::error::Result;
use super::phases::{Phases, with_zeroed};
use super::window::{ConvWindow, conv_error, expect_len};

/// Outputs per vector.
const LANES: usize = 8;
/// Most output columns of one tile (two vectors).
const NC: usize = 2 * LANES;
/// Most output channels of one tile.
const MR: usize = 6;

/// Geometry of a one-group 2-d convolution: `in_channels` planes per image through the
/// `window`, weight `[out_channels, in_channels, kh, kw]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeom {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Input and kernel sizes, stride, padding and dilation.
    pub window: ConvWindow,
}

impl Conv2dGeom {
    /// `in_channels -> out_channels` through `window`.
    pub fn new(in_channels: usize, out_channels: usize, window: ConvWindow) -> Self {
        Self {
            in_channels,
            out_channels,
            window,
        }
    }

    /// The output `[height, width]` ([`ConvWindow::output`]).
    ///
    /// Errors ([`super::FloatGemmError::Conv`]): a zero kernel, stride or dilation, or a
    /// dilated kernel larger than the padded input.
    pub fn output(&self) -> Result<[usize; 2]> {
        self.window.output()
    }

    /// `K = in_channels · kh · kw`, the length of each output's sum.
    pub fn depth(&self) -> usize {
        self.in_channels * self.window.taps()
    }
}

/// Checks the buffer lengths of an `n`-image call; returns the output `[height, width]`.
fn check(
    x: &[f32],
    n: usize,
    g: &Conv2dGeom,
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &[f32],
) -> Result<[usize; 2]> {
    let [oh, ow] = g.output()?;
    let len = |channels: usize, plane: usize| {
        n.checked_mul(channels)
            .and_then(|p| p.checked_mul(plane))
            .ok_or_else(|| conv_error(format!("{n} images of {g:?} overflow usize")))
    };
    expect_len(
        "input",
        x.len(),
        len(g.in_channels, g.window.input_plane())?,
    )?;
    expect_len("output", out.len(), len(g.out_channels, oh * ow)?)?;
    let wlen = g
        .out_channels
        .checked_mul(g.depth())
        .ok_or_else(|| conv_error(format!("weight of {g:?} overflows usize")))?;
    expect_len("weight", weight.len(), wlen)?;
    if let Some(b) = bias {
        expect_len("bias", b.len(), g.out_channels)?;
    }
    Ok([oh, ow])
}

/// `out = conv(x, weight) + bias` for `n` images on [`DirectConvKernel::best`]; returns the family
/// that ran.
///
/// `x` is `[n, in_channels, h, w]`, `weight` `[out_channels, in_channels, kh, kw]`
/// (PyTorch's layout, one group), `bias` `[out_channels]`, `out` `[n, out_channels, oh, ow]`,
/// all row-major. Errors ([`super::FloatGemmError::Conv`]): a geometry
/// [`Conv2dGeom::output`] rejects, or a buffer of the wrong length.
pub fn conv2d(
    x: &[f32],
    n: usize,
    g: &Conv2dGeom,
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) -> Result<DirectConvKernel> {
    conv2d_with(DirectConvKernel::best(), x, n, g, weight, bias, out)
}

/// The row tiles of `m` output channels: `⌈m / 6⌉` tiles of near-equal height.
fn row_tiles(m: usize) -> Vec<(usize, usize)> {
    let tiles = m.div_ceil(MR).max(1);
    let (base, extra) = (m / tiles, m % tiles);
    let mut r0 = 0;
    (0..tiles)
        .map(|t| {
            let rows = base + usize::from(t < extra);
            r0 += rows;
            (r0 - rows, rows)
        })
        .filter(|&(_, rows)| rows > 0)
        .collect()
}

/// [`conv2d`] on an explicitly requested family (tests and benches). Errors as [`conv2d`],
/// plus [`super::FloatGemmError::Conv`] for a family this process cannot run.
pub fn conv2d_with(
    kind: DirectConvKernel,
    x: &[f32],
    n: usize,
    g: &Conv2dGeom,
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) -> Result<DirectConvKernel> {
    let [oh, ow] = check(x, n, g, weight, bias, out)?;
    let tile = Tile::new(kind)?;
    if out.is_empty() {
        return Ok(kind);
    }
    let (cin, cout, k) = (g.in_channels, g.out_channels, g.depth());
    let win = &g.window;
    let ([h, w], [kh, kw]) = (win.input, win.kernel);
    let ([sh, sw], [dh, dw]) = (win.stride, win.dilation);
    // the weights of each row tile, `[K][rows]`
    let tiles = row_tiles(cout);
    let mut packed = vec![0.0f32; cout * k];
    for &(r0, rows) in &tiles {
        let dst = &mut packed[r0 * k..(r0 + rows) * k];
        for r in 0..rows {
            for (kk, &v) in weight[(r0 + r) * k..(r0 + r + 1) * k].iter().enumerate() {
                dst[kk * rows + r] = v;
            }
        }
    }
    let width = ow.div_ceil(LANES) * LANES;
    let phases = Phases::new(win, width + (kw - 1) * dw / sw);
    let plane = phases.len();
    // padding and unused columns stay zero: only interior positions are refilled per image;
    // 16 floats of slack let every panel row copy a full 16 (fixed-size copies)
    with_zeroed(cin * plane + NC, |buf| {
        let mut rel = Vec::with_capacity(k);
        for c in 0..cin {
            for i in 0..kh {
                for j in 0..kw {
                    rel.push(c * plane + phases.offset(i * dh, j * dw));
                }
            }
        }
        // one panel: the `K` column rows of 16 consecutive outputs, `[K][16]`, copied from the
        // padded planes so that the tiles stream it sequentially
        let mut panel = vec![0.0f32; k * NC];
        // The 8-output groups of an image in raster order: (offset of their first input in the
        // planes, index of their first output in a plane, outputs). A tile takes two
        // consecutive groups, which may lie in different output rows, so a 56-wide row (7
        // groups) leaves no tile half empty.
        let mut groups = Vec::with_capacity(oh * ow.div_ceil(LANES));
        for oy in 0..oh {
            let row0 = phases.offset(oy * sh, 0);
            for ox0 in (0..ow).step_by(LANES) {
                groups.push((row0 + ox0, oy * ow + ox0, LANES.min(ow - ox0)));
            }
        }
        let mut acc = [0.0f32; MR * NC];
        let (in_img, out_img) = (cin * h * w, cout * oh * ow);
        for (img, yimg) in out.chunks_exact_mut(out_img).enumerate() {
            let ximg = &x[img * in_img..(img + 1) * in_img];
            for (c, dst) in buf[..cin * plane].chunks_exact_mut(plane).enumerate() {
                phases.fill(&ximg[c * h * w..(c + 1) * h * w], dst);
            }
            for pair in groups.chunks(2) {
                for (dst, &r) in panel.chunks_exact_mut(NC).zip(&rel) {
                    for (d, &(start, _, _)) in dst.chunks_exact_mut(LANES).zip(pair) {
                        d.copy_from_slice(&buf[start + r..start + r + LANES]);
                    }
                }
                for &(r0, rows) in &tiles {
                    let wt = &packed[r0 * k..(r0 + rows) * k];
                    tile.run(&panel, k, wt, rows, pair.len(), &mut acc);
                    for r in 0..rows {
                        let co = r0 + r;
                        let b = bias.map_or(0.0, |b| b[co]);
                        for (v, &(_, o, cols)) in pair.iter().enumerate() {
                            let a = &acc[r * NC + v * LANES..r * NC + v * LANES + cols];
                            let o = co * oh * ow + o;
                            yimg[o..o + cols]
                                .iter_mut()
                                .zip(a)
                                .for_each(|(y, &a)| *y = a + b);
                        }
                    }
                }
            }
        }
    });
    Ok(kind)
}

/// The tile function of the family that runs, with its CPU proof.
enum Tile {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2(x86_64::Avx2Fma),
}

impl Tile {
    fn new(kind: DirectConvKernel) -> Result<Self> {
        let unsupported = || conv_error(format!("kernel family {} cannot run here", kind.name()));
        if !kind.is_runnable() {
            return Err(unsupported());
        }
        match kind {
            DirectConvKernel::Scalar => Ok(Tile::Scalar),
            #[cfg(target_arch = "x86_64")]
            DirectConvKernel::Avx2Fma => x86_64::Avx2Fma::new()
                .map(Tile::Avx2)
                .ok_or_else(unsupported),
            #[allow(unreachable_patterns)]
            _ => Err(unsupported()),
        }
    }

    /// `acc[r·16 + v] = Σ_k fma chain w[k·rows + r] · panel[k·16 + v]` for `rows ≤ 6` rows
    /// and `vectors · 8` columns `v`, overwriting those entries of `acc`.
    fn run(
        &self,
        panel: &[f32],
        k: usize,
        w: &[f32],
        rows: usize,
        vectors: usize,
        acc: &mut [f32; MR * NC],
    ) {
        match self {
            Tile::Scalar => scalar::tile(panel, k, w, rows, vectors * LANES, acc),
            #[cfg(target_arch = "x86_64")]
            Tile::Avx2(t) => t.tile(panel, k, w, rows, vectors, acc),
        }
    }
}
