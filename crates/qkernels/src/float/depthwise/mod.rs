//! Direct f32 depthwise 2-d convolution on NCHW planes (`groups == in == out channels`).
//!
//! Each output plane is one input plane convolved with its own `kh x kw` filter, plus an
//! optional bias. Running it as an im2col + GEMM per channel (`1 x kh·kw` times `kh·kw x
//! oh·ow`) spends most of its time writing and packing the column matrix; here each plane
//! is copied once into a zero-padded buffer, split into `stride` column phases (phase `r`
//! holds padded columns `r, r + s, r + 2s, …`), so that for every stride and dilation the
//! input of tap `(i, j)` for outputs `ox, ox + 1, …` is a contiguous run of one phase row. An
//! output row is then, per tap, one broadcast weight times a contiguous load, accumulated
//! with fused multiply-adds along the row (8 outputs per AVX2 vector). Three output rows × up
//! to 4 vectors are computed together: 12 independent chains hide the FMA latency (one row of
//! 4 vectors left the FMA units idle most of the time; 144 x 56 x 56 planes: 515 -> 375-390
//! µs of CPU time). On the AVX-512 family, 3 x 3 stride-1 planes take a row-reusing kernel
//! instead: 4 output rows × 3 vectors in registers with all 9 weights (32 vector registers),
//! each input row's 3 shifted vectors loaded once and fed to every output row of the group
//! that uses it (half the loads per FMA; 144 x 56 x 56: 204 -> 161 µs a call, Zen 4). Before
//! all that, undilated 3 x 3 and 5 x 5 planes of stride 1 or 2 on the AVX-512 family skip the
//! padded copy altogether: `avx512.rs` reads the NCHW plane in place, the padding from load masks.
//!
//! Every output is the same chain on every kernel family: `acc = bias` (or `0`), then for the
//! taps in row-major order `(i, j)`, `acc = fma(w[i, j], x_in, acc)`, where `x_in` is the
//! input value or `0` in the padding. So the AVX2 + FMA family and the portable one are bit
//! for bit equal to the oracle [`reference_depthwise_conv2d`].
//!
//! ```
//! use qkernels::float::{ConvWindow, DepthwiseGeom, depthwise_conv2d};
//! // one 3 x 3 plane, a 3 x 3 box filter with padding 1, bias 0.5
//! let g = DepthwiseGeom::new(1, ConvWindow::new([3, 3], [3, 3]).padding([1, 1]));
//! let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
//! let mut y = [0.0f32; 9];
//! depthwise_conv2d(&x, 1, &g, &[1.0; 9], Some(&[0.5]), &mut y)?;
//! assert_eq!(y[4], 45.5); // the centre sees every input
//! assert_eq!(y[0], 12.5); // 1 + 2 + 4 + 5, plus the bias
//! # Ok::<(), qkernels::float::FloatGemmError>(())
//! ```

#[cfg(target_arch = "x86_64")]
mod avx512;
mod reference;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use reference::reference_depthwise_conv2d;

use std::mem::MaybeUninit;

use super::conv_tasks;
use super::direct_kernel::DirectConvKernel;
use super::error::Result;
use super::phases::{Phases, with_zeroed};
use super::window::{ConvWindow, conv_error, expect_len};

/// Outputs per vector: the row kernels compute whole vectors of this many outputs.
const LANES: usize = 8;

/// Geometry of a depthwise convolution: `channels` planes per image through the `window`,
/// one `kh x kw` filter per channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DepthwiseGeom {
    /// Channels (input = output = groups).
    pub channels: usize,
    /// Input and kernel sizes, stride, padding and dilation.
    pub window: ConvWindow,
}

impl DepthwiseGeom {
    /// `channels` planes through `window`.
    pub fn new(channels: usize, window: ConvWindow) -> Self {
        Self { channels, window }
    }

    /// The output `[height, width]` ([`ConvWindow::output`]).
    ///
    /// Errors ([`super::FloatGemmError::Conv`]): a zero kernel, stride or dilation, or a dilated
    /// kernel larger than the padded input.
    pub fn output(&self) -> Result<[usize; 2]> {
        self.window.output()
    }
}

/// Checks the buffer lengths of an `n`-image call; returns the output `[height, width]`.
fn check(
    x: &[f32],
    n: usize,
    g: &DepthwiseGeom,
    weight: &[f32],
    bias: Option<&[f32]>,
    out_len: usize,
) -> Result<[usize; 2]> {
    let [oh, ow] = g.output()?;
    let planes = n.checked_mul(g.channels);
    let len = |plane: usize| {
        planes
            .and_then(|p| p.checked_mul(plane))
            .ok_or_else(|| conv_error(format!("{n} images of {g:?} overflow usize")))
    };
    expect_len("input", x.len(), len(g.window.input_plane())?)?;
    expect_len("output", out_len, len(oh * ow)?)?;
    expect_len("weight", weight.len(), g.channels * g.window.taps())?;
    if let Some(b) = bias {
        expect_len("bias", b.len(), g.channels)?;
    }
    Ok([oh, ow])
}

/// `out = depthwise_conv(x, weight) + bias` for `n` images on [`DirectConvKernel::best`];
/// returns the family that ran.
///
/// `x` is `[n, channels, h, w]`, `weight` `[channels, 1, kh, kw]` (PyTorch's layout), `bias`
/// `[channels]`, `out` `[n, channels, oh, ow]`, all row-major. Errors
/// ([`super::FloatGemmError::Conv`]): a geometry [`DepthwiseGeom::output`] rejects, or a buffer of the
/// wrong length.
pub fn depthwise_conv2d(
    x: &[f32],
    n: usize,
    g: &DepthwiseGeom,
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) -> Result<DirectConvKernel> {
    depthwise_conv2d_with(DirectConvKernel::best(), x, n, g, weight, bias, out)
}

/// [`depthwise_conv2d`] into a new `Vec` of `n · channels · oh · ow` floats, which the kernels
/// write once (no zero-fill first: zeroing a fresh output cost about a tenth of a MobileNet
/// depthwise layer). Errors as [`depthwise_conv2d`].
pub fn depthwise_conv2d_vec(
    x: &[f32],
    n: usize,
    g: &DepthwiseGeom,
    weight: &[f32],
    bias: Option<&[f32]>,
) -> Result<Vec<f32>> {
    let [oh, ow] = g.output()?;
    let len = [n, g.channels, oh]
        .into_iter()
        .try_fold(ow, usize::checked_mul)
        .ok_or_else(|| conv_error(format!("{n} images of {g:?} overflow usize")))?;
    let mut out = Vec::with_capacity(len);
    run(
        DirectConvKernel::best(),
        x,
        n,
        g,
        weight,
        bias,
        &mut out.spare_capacity_mut()[..len],
    )?;
    // SAFETY: `run` returned `Ok`, so it wrote every one of the `len` floats (each output
    // plane is written whole, row by row).
    unsafe { out.set_len(len) };
    Ok(out)
}

/// [`depthwise_conv2d`] on an explicitly requested family (tests and benches). Errors as
/// [`depthwise_conv2d`], plus [`super::FloatGemmError::Conv`] for a family this process cannot run.
pub fn depthwise_conv2d_with(
    kind: DirectConvKernel,
    x: &[f32],
    n: usize,
    g: &DepthwiseGeom,
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) -> Result<DirectConvKernel> {
    run(kind, x, n, g, weight, bias, as_uninit(out))
}

/// `out` as the kernels' write-only view.
fn as_uninit(out: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and this module only ever writes
    // initialized `f32` values through the view, so `out` stays initialized.
    unsafe { &mut *(std::ptr::from_mut(out) as *mut [MaybeUninit<f32>]) }
}

/// Fewest multiply-adds (`n · channels · kh · kw · oh · ow`) for which a depthwise call is
/// split over the current rayon pool.
pub const DEPTHWISE_PAR_MIN_MACS: usize = 1 << 20;

/// The convolution of [`depthwise_conv2d_with`]; on `Ok`, every float of `out` is written.
/// Calls of at least [`DEPTHWISE_PAR_MIN_MACS`] multiply-adds run as tasks of whole images or
/// (fewer images than threads) channel ranges on the current rayon pool; the planes are
/// independent, so the bits do not depend on the pool's size.
fn run(
    kind: DirectConvKernel,
    x: &[f32],
    n: usize,
    g: &DepthwiseGeom,
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [MaybeUninit<f32>],
) -> Result<DirectConvKernel> {
    let [oh, ow] = check(x, n, g, weight, bias, out.len())?;
    let (channels, taps, plane) = (g.channels, g.window.taps(), oh * ow);
    let macs = [n, channels, taps]
        .into_iter()
        .fold(plane, usize::saturating_mul);
    let parts = conv_tasks::plan(
        n,
        channels,
        macs,
        DEPTHWISE_PAR_MIN_MACS,
        rayon::current_num_threads(),
    );
    if parts.len() <= 1 {
        return run_planes(kind, x, n, g, weight, bias, out);
    }
    let plane_in = g.window.input_plane();
    conv_tasks::run(&parts, channels, plane, out, |p, o| {
        let chans = p.c0..p.c0 + p.chans;
        run_planes(
            kind,
            &x[p.range(channels, plane_in)],
            p.imgs,
            &DepthwiseGeom::new(p.chans, g.window),
            &weight[chans.start * taps..chans.end * taps],
            bias.map(|b| &b[chans]),
            o,
        )
        .map(drop)
    })?;
    Ok(kind)
}

/// [`run`] on the calling thread.
fn run_planes(
    kind: DirectConvKernel,
    x: &[f32],
    n: usize,
    g: &DepthwiseGeom,
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [MaybeUninit<f32>],
) -> Result<DirectConvKernel> {
    let [oh, ow] = check(x, n, g, weight, bias, out.len())?;
    let row = RowKernel::new(kind)?;
    if out.is_empty() {
        return Ok(kind);
    }
    let win = &g.window;
    let ([h, w], [kh, kw]) = (win.input, win.kernel);
    let ([sh, sw], [dh, dw]) = (win.stride, win.dilation);
    let taps = kh * kw;
    #[cfg(target_arch = "x86_64")]
    if let Some(k) = (kind == DirectConvKernel::Avx512)
        .then(|| avx512::Planes::new(win))
        .flatten()
    {
        for (p, yp) in out.chunks_exact_mut(oh * ow).enumerate() {
            let c = p % g.channels;
            let b = bias.map_or(0.0, |b| b[c]);
            k.plane(
                &x[p * h * w..(p + 1) * h * w],
                &weight[c * taps..(c + 1) * taps],
                b,
                yp,
            );
        }
        return Ok(kind);
    }
    let width = ow.div_ceil(LANES) * LANES;
    // Phase rows are wide enough for every vector of every tap: the last output vector of
    // the widest tap starts at column `(kw - 1)·dw / sw` of its phase.
    let phases = Phases::new(win, width + (kw - 1) * dw / sw, kind);
    // padding and unused columns stay zero: only interior positions are refilled per plane
    with_zeroed(phases.len(), |buf| {
        // tap (i, j) of output row `oy` starts at `offset(oy·sh, 0)` plus a per-tap constant
        let mut rel = Vec::with_capacity(taps);
        for i in 0..kh {
            for j in 0..kw {
                rel.push(phases.offset(i * dh, j * dw));
            }
        }
        // a plane's output rows in one call, their inputs `offset(sh, 0)` apart
        let stride = phases.offset(sh, 0);
        let reuse = (dh == 1).then(|| Reuse {
            pitch: phases.offset(1, 0),
            kernel: [kh, kw],
            sh,
        });
        let plane = |ldo| Rows {
            base: 0,
            stride,
            rows: oh,
            len: width,
            ldo,
            reuse,
        };
        let mut tmp = vec![0.0f32; if width == ow { 0 } else { oh * width }];
        for (p, yp) in out.chunks_exact_mut(oh * ow).enumerate() {
            let c = p % g.channels;
            phases.fill(&x[p * h * w..(p + 1) * h * w], buf);
            let wc = &weight[c * taps..(c + 1) * taps];
            let b = bias.map_or(0.0, |b| b[c]);
            if width == ow {
                row.run(buf, &rel, wc, b, plane(ow), yp);
            } else {
                // the last vector of a row runs past `ow`: write whole rows aside
                row.run(buf, &rel, wc, b, plane(width), as_uninit(&mut tmp));
                for (d, t) in yp.chunks_exact_mut(ow).zip(tmp.chunks_exact(width)) {
                    d.write_copy_of_slice(&t[..ow]);
                }
            }
        }
    });
    Ok(kind)
}

/// Output rows computed together: a group of `ROWS` rows × up to 4 vectors makes 12
/// independent FMA chains, enough to hide the FMA latency (4 chains of one row ran at
/// about 0.6 FMA per cycle).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const ROWS: usize = 3;

/// Output rows of `len` outputs (a multiple of 8): output `o` of row `r` reads tap `t` at
/// `src[base + r·stride + offs[t] + o]` and goes to `out[r·ldo + o]`.
#[derive(Clone, Copy, Debug)]
struct Rows {
    base: usize,
    stride: usize,
    rows: usize,
    len: usize,
    ldo: usize,
    /// The layout of the taps when the kernel has vertical dilation 1 (for the row-reusing
    /// kernels).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    reuse: Option<Reuse>,
}

/// Tap `(i, j)` of an output row reads padded row `i` below the row's first, `pitch` floats
/// apart, at the column offset of tap `(0, j)`; output rows are `sh` padded rows apart.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct Reuse {
    pitch: usize,
    kernel: [usize; 2],
    sh: usize,
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
impl Reuse {
    /// Whether the tap offsets `offs` and the row stride have this layout.
    fn matches(&self, offs: &[usize], stride: usize) -> bool {
        let [kh, kw] = self.kernel;
        offs.len() == kh * kw
            && self.pitch.checked_mul(self.sh) == Some(stride)
            && (0..kh).all(|i| {
                (0..kw).all(|j| {
                    i.checked_mul(self.pitch)
                        .and_then(|d| d.checked_add(offs[j]))
                        == Some(offs[i * kw + j])
                })
            })
    }
}

/// The row function of the family that runs, with its CPU proof.
enum RowKernel {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2(x86_64::Avx2Fma),
}

impl RowKernel {
    fn new(kind: DirectConvKernel) -> Result<Self> {
        let unsupported = || conv_error(format!("kernel family {} cannot run here", kind.name()));
        if !kind.is_runnable() {
            return Err(unsupported());
        }
        match kind {
            DirectConvKernel::Scalar => Ok(RowKernel::Scalar),
            #[cfg(target_arch = "x86_64")]
            DirectConvKernel::Avx2Fma => x86_64::Avx2Fma::new(false)
                .map(RowKernel::Avx2)
                .ok_or_else(unsupported),
            #[cfg(target_arch = "x86_64")]
            DirectConvKernel::Avx512 => x86_64::Avx2Fma::new(true)
                .map(RowKernel::Avx2)
                .ok_or_else(unsupported),
            #[allow(unreachable_patterns)]
            _ => Err(unsupported()),
        }
    }

    /// For every output `(r, o)` of `g`: `out[r·ldo + o] = fma chain over taps t of
    /// w[t]·src[base + r·stride + offs[t] + o]`, from `bias`.
    fn run(
        &self,
        src: &[f32],
        offs: &[usize],
        w: &[f32],
        bias: f32,
        g: Rows,
        out: &mut [MaybeUninit<f32>],
    ) {
        match self {
            RowKernel::Scalar => scalar::rows(src, offs, w, bias, g, out),
            #[cfg(target_arch = "x86_64")]
            RowKernel::Avx2(k) => k.rows(src, offs, w, bias, g, out),
        }
    }
}
