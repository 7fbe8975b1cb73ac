//! Direct (implicit-GEMM) f32 2-d convolution on NCHW data, one group.
//!
//! The product is the im2col GEMM `Y[cout, oh·ow] = W[cout, K] · cols[K, oh·ow]` with
//! `K = cin·kh·kw`, but the column matrix is never written: each input image is copied once
//! into zero-padded, column-phase-split planes (see `phases.rs`), in which the `K` rows of
//! `cols` for consecutive outputs of one output row are consecutive floats at a fixed per-row
//! offset. The outputs of a plane are taken 16 at a time in raster order (a tile may span
//! output rows, so no row width leaves tiles half empty; 14 x 14 planes fill 196 of 208
//! lanes instead of 196 of 224); their `K` column rows are copied into one `[K][16]` panel (a
//! few percent of the work: the panel then serves every output channel), and a register tile
//! of up to 6 output channels × 16 outputs runs one fused multiply-add chain per output over
//! `k = (c, i, j)` in increasing order. `K` is cut into blocks of at most 256 (a 16 KiB block
//! of the panel stays in L1 while every row tile streams over it); the chains pause at a
//! block's end, their sums stored in the output plane (or a scratch tile for a partial
//! vector) and reloaded for the next block, which changes no bit. The weights are read in
//! place, `[cout][K]`, one sequential stream per output channel of the tile (no per-call
//! packing: the 256 -> 256 3 x 3 layer's 2.4 MB weight was repacked on every call before).
//! The last block adds the bias and stores straight into the NCHW output planes. With
//! horizontal stride 1, a tile inside one output row copies one run of `16 + (kw - 1)·dw`
//! floats per `(c, i)` into a compact panel instead, and the tile reads each `k = (c, i, j)`
//! at its shift `j·dw` in it (an offset table; a third of the copies for 3 x 3 kernels).
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

mod bands;
mod reference;
mod scalar;
mod winograd;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use reference::reference_conv2d;
pub use winograd::{reference_winograd_conv2d, winograd_conv2d_with};

use super::conv_tasks;
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
/// Most `k` of one block: a block of the panel (`KC · 16` floats, 16 KiB) stays in L1 while
/// every row tile streams over it.
const KC: usize = 256;

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

/// How a convolution is computed. Both give the convolution up to float rounding; only
/// [`ConvAlgorithm::Direct`] is bit-equal to [`reference_conv2d`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvAlgorithm {
    /// The direct (implicit-GEMM) sum of this module: any geometry.
    Direct,
    /// Winograd F(2×2, 3×3) ([`winograd_conv2d_with`]): 3 × 3 kernels with stride 1 and
    /// dilation 1 only; bit-equal to [`reference_winograd_conv2d`], and within
    /// `2⁻²⁰ · (Σ |w|·|x| + |bias|)` of the exact convolution in the tests.
    Winograd,
}

/// Fewest input and output channels for which [`conv2d`] takes Winograd.
const WINOGRAD_MIN_CHANNELS: usize = 16;

impl ConvAlgorithm {
    /// The algorithm [`conv2d`] runs for `g`: Winograd for 3 × 3 stride-1 undilated kernels
    /// with at least 16 input and output channels (measured faster there), else direct.
    pub fn for_geometry(g: &Conv2dGeom) -> ConvAlgorithm {
        if winograd::applies(g)
            && g.in_channels >= WINOGRAD_MIN_CHANNELS
            && g.out_channels >= WINOGRAD_MIN_CHANNELS
        {
            ConvAlgorithm::Winograd
        } else {
            ConvAlgorithm::Direct
        }
    }

    /// Whether the algorithm can compute `g` (direct: always).
    pub fn applies(self, g: &Conv2dGeom) -> bool {
        match self {
            ConvAlgorithm::Direct => true,
            ConvAlgorithm::Winograd => winograd::applies(g),
        }
    }

    /// The lowercase name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            ConvAlgorithm::Direct => "direct",
            ConvAlgorithm::Winograd => "winograd",
        }
    }
}

/// `out = conv(x, weight) + bias` for `n` images by [`ConvAlgorithm::for_geometry`] on
/// [`DirectConvKernel::best`]; returns the family that ran.
///
/// `x` is `[n, in_channels, h, w]`, `weight` `[out_channels, in_channels, kh, kw]`
/// (PyTorch's layout, one group), `bias` `[out_channels]`, `out` `[n, out_channels, oh, ow]`,
/// all row-major. Results of the Winograd algorithm differ from the direct sum by float
/// rounding ([`conv2d_using`] with [`ConvAlgorithm::Direct`] gives the direct sum's bits).
/// Errors ([`super::FloatGemmError::Conv`]): a geometry [`Conv2dGeom::output`] rejects, or a
/// buffer of the wrong length.
pub fn conv2d(
    x: &[f32],
    n: usize,
    g: &Conv2dGeom,
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) -> Result<DirectConvKernel> {
    let algorithm = ConvAlgorithm::for_geometry(g);
    conv2d_using(
        algorithm,
        DirectConvKernel::best(),
        x,
        n,
        g,
        weight,
        bias,
        out,
    )
}

/// Fewest multiply-adds (`n · cout · K · oh · ow`) for which [`conv2d_using`] splits a call
/// over the current rayon pool.
pub const CONV2D_PAR_MIN_MACS: usize = 1 << 22;

/// [`conv2d`] by an explicitly chosen algorithm and family. Calls of at least
/// [`CONV2D_PAR_MIN_MACS`] multiply-adds are split over the current rayon pool into tasks of
/// whole images or (fewer images than threads) output-channel ranges, or for Winograd on
/// images with more 2 × 2 tiles than output channels, bands of output rows (`bands.rs`), each
/// a smaller [`conv2d_with`] / [`winograd_conv2d_with`] call; every output is the same chain
/// in any task, so the bits do not depend on the pool's size. Errors as [`conv2d_with`] (direct) or
/// [`winograd_conv2d_with`].
#[allow(clippy::too_many_arguments)]
pub fn conv2d_using(
    algorithm: ConvAlgorithm,
    kind: DirectConvKernel,
    x: &[f32],
    n: usize,
    g: &Conv2dGeom,
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) -> Result<DirectConvKernel> {
    let one = |x: &[f32], n, g: &Conv2dGeom, weight: &[f32], bias, out: &mut [f32]| match algorithm
    {
        ConvAlgorithm::Direct => conv2d_with(kind, x, n, g, weight, bias, out),
        ConvAlgorithm::Winograd => winograd_conv2d_with(kind, x, n, g, weight, bias, out),
    };
    let [oh, ow] = check(x, n, g, weight, bias, out)?;
    let (cout, k, plane) = (g.out_channels, g.depth(), oh * ow);
    let macs = [n, cout, k].into_iter().fold(plane, usize::saturating_mul);
    let threads = rayon::current_num_threads();
    let parts = conv_tasks::plan(n, cout, macs, CONV2D_PAR_MIN_MACS, threads);
    if parts.len() <= 1 {
        return one(x, n, g, weight, bias, out);
    }
    if algorithm == ConvAlgorithm::Winograd && n < threads && winograd::applies(g) {
        let rows = bands::bands([oh, ow], cout, n, threads);
        if rows.len() > 1 {
            bands::winograd_bands(kind, x, g, weight, bias, out, [oh, ow], &rows)?;
            return Ok(kind);
        }
    }
    let in_img = g.in_channels * g.window.input_plane();
    conv_tasks::run(&parts, cout, plane, out, |p, o| {
        let sub = Conv2dGeom::new(g.in_channels, p.chans, g.window);
        let chans = p.c0..p.c0 + p.chans;
        one(
            &x[p.img0 * in_img..(p.img0 + p.imgs) * in_img],
            p.imgs,
            &sub,
            &weight[chans.start * k..chans.end * k],
            bias.map(|b| &b[chans]),
            o,
        )
        .map(drop)
    })?;
    Ok(kind)
}

/// `m` split into `⌈m / most⌉` ranges `(start, len)` of near-equal length (none when
/// `m == 0`): the row tiles of the output channels (`most = 6`) and the blocks of `k`.
fn split(m: usize, most: usize) -> Vec<(usize, usize)> {
    let parts = m.div_ceil(most).max(1);
    let (base, extra) = (m / parts, m % parts);
    let mut start = 0;
    (0..parts)
        .map(|t| {
            let len = base + usize::from(t < extra);
            start += len;
            (start - len, len)
        })
        .filter(|&(_, len)| len > 0)
        .collect()
}

/// One tile of up to 16 consecutive output positions of a plane (raster order, so a tile may
/// span several output rows): its first position, its length and its range of `segments`.
struct OutTile {
    first: usize,
    len: usize,
    segments: std::ops::Range<usize>,
}

/// The output tiles of an `oh x ow` plane and their segments `(start, column)`: the
/// outputs of one tile that lie in one output row are a run of consecutive floats of the
/// padded planes from `start` (plus each `k`'s offset), copied into the panel from `column`.
fn out_tiles(
    phases: &Phases,
    [oh, ow]: [usize; 2],
    sh: usize,
) -> (Vec<OutTile>, Vec<(usize, usize)>) {
    let plane = oh * ow;
    let (mut tiles, mut segments) = (Vec::new(), Vec::new());
    for first in (0..plane).step_by(NC) {
        let end = plane.min(first + NC);
        let s0 = segments.len();
        let mut p = first;
        while p < end {
            let (oy, ox) = (p / ow, p % ow);
            segments.push((phases.offset(oy * sh, 0) + ox, p - first));
            p += (ow - ox).min(end - p);
        }
        tiles.push(OutTile {
            first,
            len: end - first,
            segments: s0..segments.len(),
        });
    }
    (tiles, segments)
}

/// The direct algorithm ([`ConvAlgorithm::Direct`]) on an explicitly requested family (tests
/// and benches); bit-equal to [`reference_conv2d`]. Errors as [`conv2d`], plus [`super::FloatGemmError::Conv`] for a family this process cannot run.
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
    let row_tiles = split(cout, MR);
    let k_blocks = split(k, KC);
    let phases = Phases::new(win, ow + (kw - 1) * dw / sw, kind);
    let plane = phases.len();
    let (tiles, segments) = out_tiles(&phases, [oh, ow], sh);
    // With horizontal stride 1, the `kw` column runs of a tile inside one output row for
    // `(c, i)` are one run of `16 + (kw - 1)·dw` floats shifted by `j·dw`: such tiles copy
    // that run once per `(c, i)` into a compact panel of rows `cw` wide and read each `k`'s
    // 16 floats at its shift (a third of the copies for 3 x 3 kernels).
    let compact = sw == 1;
    let cw = (NC + (kw - 1) * dw).div_ceil(LANES) * LANES;
    // padding and unused columns stay zero: only interior positions are refilled per image;
    // the slack lets every copy take a fixed 16 (or `cw`) floats
    with_zeroed(cin * plane + cw.max(NC), |buf| {
        // offset of each `k = (c, i, j)` from an output's first input, in the planes
        let mut rel = Vec::with_capacity(k);
        for c in 0..cin {
            for i in 0..kh {
                for j in 0..kw {
                    rel.push(c * plane + phases.offset(i * dh, j * dw));
                }
            }
        }
        // the panel: the `K` column rows of one output tile, `[K][16]` (plus the spill of
        // the last row's copies), copied from the padded planes so that the register tiles
        // stream it sequentially
        let mut panel = vec![0.0f32; (k + 1) * NC];
        // the sums of one output tile, `[cout][16]`, carried from one `k` block to the next
        // per `k` block: its first `k`, its length, and where the tiles find its rows in the
        // panel and in the compact panel
        let panel_offsets: Vec<usize> = (0..KC.min(k)).map(|kk| kk * NC).collect();
        // the compact panel: row `c·kh + i` from `run_starts[c·kh + i]` (plus the tile's
        // start) in the planes; `k = (c, i, j)` at `compact_offsets[k]` in it
        let run_starts: Vec<usize> = (0..cin * kh)
            .map(|q| (q / kh) * plane + phases.offset((q % kh) * dh, 0))
            .collect();
        let compact_offsets: Vec<usize> =
            (0..k).map(|kk| (kk / kw) * cw + (kk % kw) * dw).collect();
        let mut compact_panel = vec![0.0f32; if compact { cin * kh * cw } else { 0 }];
        let blocks: Vec<_> = k_blocks
            .iter()
            .map(|&(k0, kc)| {
                (
                    k0,
                    kc,
                    SourceRows::new(&panel_offsets[..kc]),
                    SourceRows::new(&compact_offsets[k0..k0 + kc]),
                )
            })
            .collect();
        let mut acc = vec![0.0f32; cout * NC];
        // no bias adds `0.0`, as the oracle does (turning a `-0.0` sum into `+0.0`)
        let zeros = vec![0.0f32; cout];
        let bias = bias.unwrap_or(&zeros);
        let (in_img, plane_out) = (cin * h * w, oh * ow);
        for (img, yimg) in out.chunks_exact_mut(cout * plane_out).enumerate() {
            let ximg = &x[img * in_img..(img + 1) * in_img];
            for (c, dst) in buf[..cin * plane].chunks_exact_mut(plane).enumerate() {
                phases.fill(&ximg[c * h * w..(c + 1) * h * w], dst);
            }
            for t in &tiles {
                // A tile inside one output row takes the compact panel (stride 1); any other
                // copies its `K` rows into the panel. Each segment copies 16 floats: the part
                // past its run lands on the next segment's columns or on the next panel row,
                // both written after it.
                let segs = &segments[t.segments.clone()];
                let in_compact = compact && segs.len() == 1;
                if in_compact {
                    let start = segs[0].0;
                    for (dst, &r) in compact_panel.chunks_exact_mut(cw).zip(&run_starts) {
                        dst.copy_from_slice(&buf[start + r..start + r + cw]);
                    }
                } else {
                    for (kk, &r) in rel.iter().enumerate() {
                        let row = kk * NC;
                        for &(start, col) in segs {
                            let src = start + r;
                            panel[row + col..row + col + NC].copy_from_slice(&buf[src..src + NC]);
                        }
                    }
                }
                let vectors = t.len.div_ceil(LANES);
                // whole vectors go straight into the output planes (the partial sums of the
                // earlier `k` blocks too); a partial one goes through `acc`
                let direct = t.len == vectors * LANES;
                let (dst, ld) = if direct {
                    (&mut yimg[t.first..], plane_out)
                } else {
                    (&mut acc[..], NC)
                };
                for (b, &(k0, kc, in_panel, in_compact_panel)) in blocks.iter().enumerate() {
                    let last = b + 1 == blocks.len();
                    let (src, src_rows) = if in_compact {
                        (&compact_panel[..], in_compact_panel)
                    } else {
                        (&panel[k0 * NC..(k0 + kc) * NC], in_panel)
                    };
                    for &(r0, rows) in &row_tiles {
                        tile.run(
                            src,
                            src_rows,
                            &weight[r0 * k + k0..],
                            k,
                            rows,
                            vectors,
                            TileOut {
                                sums: &mut dst[r0 * ld..],
                                ld,
                                carry: b > 0,
                                bias: last.then(|| &bias[r0..r0 + rows]),
                            },
                        );
                    }
                }
                if !direct {
                    for (co, a) in acc.chunks_exact(NC).enumerate() {
                        let o = co * plane_out + t.first;
                        yimg[o..o + t.len].copy_from_slice(&a[..t.len]);
                    }
                }
            }
        }
    });
    Ok(kind)
}

/// Where a tile finds its `kc` rows of 16 floats in a source slice: row `kk` starts at
/// `offsets[kk]`; `far` is the largest offset, so that one bound check covers every row;
/// `dense` when `offsets[kk] = kk·16` (a panel: the tile then needs no offset loads).
#[derive(Clone, Copy)]
struct SourceRows<'a> {
    offsets: &'a [usize],
    // (read by the x86-64 tile only: the portable one indexes with bound checks)
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    far: usize,
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    dense: bool,
}

impl<'a> SourceRows<'a> {
    fn new(offsets: &'a [usize]) -> Self {
        let far = offsets.iter().copied().max().unwrap_or(0);
        let dense = offsets.iter().enumerate().all(|(kk, &o)| o == kk * NC);
        Self {
            offsets,
            far,
            dense,
        }
    }
}

/// Where a tile's sums go: row `r`, column `v` at `sums[r·ld + v]`; read back first when
/// `carry` (the earlier `k` blocks' sums), stored plus `bias[r]` when `bias` is given (the
/// last block).
struct TileOut<'a> {
    sums: &'a mut [f32],
    ld: usize,
    carry: bool,
    bias: Option<&'a [f32]>,
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
            // the AVX-512 family runs the AVX2 tile (AVX-512 tiles measured no faster)
            #[cfg(target_arch = "x86_64")]
            DirectConvKernel::Avx2Fma | DirectConvKernel::Avx512 => x86_64::Avx2Fma::new()
                .map(Tile::Avx2)
                .ok_or_else(unsupported),
            #[allow(unreachable_patterns)]
            _ => Err(unsupported()),
        }
    }

    /// For `rows ≤ 6` rows `r` and `vectors · 8` columns `v`, over the `kc` rows `kk` of `at`:
    /// the fma chain over `kk` of `w[r·ldw + kk] · src[at.offsets[kk] + v]`, from the sum in
    /// `out` when it carries, else from `0`, stored into `out` (plus its bias).
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        src: &[f32],
        at: SourceRows<'_>,
        w: &[f32],
        ldw: usize,
        rows: usize,
        vectors: usize,
        out: TileOut<'_>,
    ) {
        match self {
            Tile::Scalar => scalar::tile(src, at, w, ldw, rows, vectors * LANES, out),
            #[cfg(target_arch = "x86_64")]
            Tile::Avx2(t) => t.tile(src, at, w, ldw, rows, vectors, out),
        }
    }
}
