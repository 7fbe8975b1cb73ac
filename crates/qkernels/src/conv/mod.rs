//! # int8 convolution: NDHWC quint8 activations × packed qint8 weights, fused requantization
//!
//! [`conv_u8s8`] computes PyTorch's `quantized::conv{1,2,3}d(_relu)` on channels-last data:
//! `out[n, z, y, x, o] = requant(Σ_{c, taps} (in[...] − za)·(W[o, c, taps] − zw[o]))` with
//! any stride, padding (filled with the input zero point, like fbgemm's im2col), dilation
//! and groups, and the fbgemm-exact requantization of [`crate::gemm::Requantize`] (optional
//! ReLU / ReLU6). 1-d and 2-d convolutions are 3-d ones with unit leading dims
//! ([`ConvGeometry::new`] right-aligns the shapes).
//!
//! ```
//! use qkernels::conv::{self, ConvGeometry, PackedConvWeights};
//! use qkernels::gemm::{Requantize, WeightQParams};
//! // One 3×3 image with 1 channel, one 2×2 filter of ones, padding 0.
//! let g = ConvGeometry::new(1, 1, 1, 1, &[3, 3], &[2, 2])?;
//! let x = [10u8, 11, 12, 13, 14, 15, 16, 17, 18];
//! let w = PackedConvWeights::pack_best(&[1, 1, 1, 1], &g,
//!     WeightQParams::PerTensor { scale: 1.0, zero_point: 0 })?;
//! let params = Requantize { act_scale: 1.0, out_scale: 1.0, out_zero_point: 0, bias: None,
//!     activation: Default::default() };
//! let mut y = [0u8; 4];
//! conv::conv_u8s8(&g, &x, 10, &w, params, &mut y)?;
//! assert_eq!(y, [8, 12, 20, 24]); // Σ (x − 10) over each 2×2 window
//! # Ok::<(), qkernels::conv::ConvError>(())
//! ```
//!
//! ## Paths
//! * **1×1, stride 1, no padding:** per group, a direct [`crate::gemm::gemm_u8s8`] over the
//!   NDHWC input (row stride C) into the NDHWC output (row stride O); no copy. On AVX-512
//!   VNNI with one group, the row-run kernel below (one run of C bytes per pixel), which
//!   measured faster than the GEMM driver there (1,256,14,1024: 311 → 264 µs;
//!   1,64,56,256: 1741 → 400 µs).
//! * **K×K and strided 1×1:** implicit GEMM on the same micro-kernels: each task gathers the
//!   rows of its own block of output pixels (one contiguous channel run per tap, zero point
//!   for padding) into the family's packed-A tiles; no im2col matrix is ever built.
//!   On AVX-512 VNNI with one group and width dilation 1 (the ResNet 3×3 and 1×1 convs,
//!   LeNet's second layer) the `row_run` kernel runs instead: weights packed per kernel row
//!   ([`PackedConvWeights::path`] `"row-run"`), each tile of up to 8 pixels × 64 channels
//!   reads its pixels' `kw·C`-byte kernel-row runs in place through a pointer table and
//!   multiplies them by `vpdpbusd` ([`row_run_applies`]). Packed for the AMX family (below
//!   128 input channels; from there the GEMM forms on AMX tiles are faster), the same
//!   runs, padded to 64 bytes, are copied into aligned 32-pixel A tiles and multiplied by
//!   `tdpbusd` (`row_run_amx`, [`row_run_amx_applies`]).
//!   On the exact AVX2 family with one group (e.g. LeNet's second layer) the tile instead
//!   reads each pixel's kernel-row runs straight from a u16 copy of the input through a
//!   pointer table ([`indirect_applies`]).
//! * **Depthwise** (one input and one or two output channels per group): on x86 with
//!   symmetric weights, a row kernel (`depthwise_avx2`): per output row, tap pointers by
//!   arithmetic for interior pixels and a table for border ones, 32-channel blocks outer and
//!   pixels inner, tap pairs through `vpmaddubsw` (fbgemm's saturating depthwise path) or
//!   `vpmaddwd`, requantized in registers; for the AVX-512 VNNI family the same rows on
//!   64-channel zmm blocks (`depthwise_avx512`, [`depthwise_kernel`] names the kernel that
//!   runs). Otherwise a per-pixel kernel over an indirection
//!   list of tap pointers, vectorized over channels: 32 per step on AVX-512BW, 16 on AVX2,
//!   portable otherwise.
//! * **Few outputs, short reduction** (one group, O ≤ 8, taps·C ≤ 128, e.g. LeNet's first
//!   layer with C = 1..4): on x86 with AVX2 + FMA and width stride 1, a kernel vectorized
//!   over 8 output pixels with broadcast weight pairs and a vectorized requantization;
//!   otherwise a direct kernel, one gathered row and O dot products per pixel.
//!
//! [`reference`](mod@reference) is the scalar oracle. Results are identical for every kernel family and
//! thread count.

mod depthwise;
#[cfg(target_arch = "x86_64")]
mod depthwise_avx2;
#[cfg(target_arch = "x86_64")]
mod depthwise_avx512;
#[cfg(target_arch = "x86_64")]
mod depthwise_cols;
#[cfg(target_arch = "x86_64")]
mod depthwise_lanes;
#[cfg(target_arch = "x86_64")]
mod depthwise_pairs9;
mod error;
mod geometry;
mod implicit;
#[cfg(target_arch = "x86_64")]
mod indirect;
mod pack;
mod pooled;
pub mod reference;
#[cfg(target_arch = "x86_64")]
mod row_run;
#[cfg(target_arch = "x86_64")]
mod row_run_amx;
mod small;
#[cfg(target_arch = "x86_64")]
mod small_pixels;
#[cfg(target_arch = "x86_64")]
mod small_vnni;
pub mod transpose;

pub use depthwise::depthwise_kernel;
pub use error::{ConvError, Result};
pub use geometry::ConvGeometry;
pub use pack::PackedConvWeights;
pub use pooled::{conv_u8s8_max_pool2, max_pool2_fuses};

use crate::error::GemmError;
use crate::gemm::{self, Activations, KernelKind, Output, Requantize, Stage, kernel_for};
use pack::Form;

fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(ConvError::Length {
            what,
            expected,
            got,
        })
    }
}

fn check_overflow(k: usize, za: i32, w_abs_max: u32) -> Result<()> {
    let bound = (k as u64)
        .saturating_mul(za.max(255 - za) as u64)
        .saturating_mul(u64::from(w_abs_max));
    if bound > i32::MAX as u64 {
        return Err(GemmError::AccumulatorOverflow {
            k,
            a_zero_point: za,
            w_abs_max,
            bound,
        }
        .into());
    }
    Ok(())
}

/// Largest K of the indirect kernel: two weight panels of `K·8` bytes stay within 16 KiB.
const INDIRECT_MAX_K: usize = 1024;

/// Whether [`conv_u8s8`] runs `geometry` with weights packed for `kind` on the indirect
/// exact-AVX2 kernel (one group, width dilation 1, `kw·C` even, `K ≤ 1024`, not pointwise,
/// not depthwise); exposed so tests can prove that path ran.
pub fn indirect_applies(geometry: &ConvGeometry, kind: KernelKind) -> bool {
    cfg!(target_arch = "x86_64")
        && kind == KernelKind::Avx2
        && geometry.groups == 1
        && geometry.dilation[2] == 1
        && (geometry.kernel[2] * geometry.in_channels).is_multiple_of(2)
        && geometry.k() <= INDIRECT_MAX_K
        && !geometry.is_pointwise()
        && !(geometry.out_channels <= pack::SMALL_MAX_OUT && geometry.k() <= pack::SMALL_MAX_K)
}

/// Whether [`conv_u8s8`] runs `geometry` with weights packed for `kind` on the AVX-512 VNNI
/// row-run kernel (one group, width dilation 1, not the small-C kernel's shape; pointwise
/// included; not what [`row_run_amx_applies`] takes); exposed so tests can prove that path
/// ran.
pub fn row_run_applies(geometry: &ConvGeometry, kind: KernelKind) -> bool {
    cfg!(target_arch = "x86_64")
        && kind.has_avx512_vnni()
        && geometry.dilation[2] == 1
        && pack::row_run_packs(geometry, kind)
        && !row_run_amx_applies(geometry, kind)
}

/// Whether [`conv_u8s8`] runs `geometry` with weights packed for `kind` on the AMX row-run
/// kernel (the AMX family, where the row-run weights are packed: one group, fewer than 128
/// input channels, width dilation 1, not the small-C kernel's shape); exposed so tests can
/// prove that path ran.
pub fn row_run_amx_applies(geometry: &ConvGeometry, kind: KernelKind) -> bool {
    cfg!(target_arch = "x86_64")
        && kind == KernelKind::Amx
        && geometry.dilation[2] == 1
        && pack::row_run_packs(geometry, kind)
}

/// Checks the arguments of [`conv_u8s8`] (`out_len`: the output buffer's length) and
/// returns the output dims.
fn check_call(
    g: &ConvGeometry,
    input: &[u8],
    za: i32,
    weights: &PackedConvWeights,
    params: &Requantize<'_>,
    out_len: usize,
) -> Result<[usize; 3]> {
    let out_dims = g.output()?;
    weights.check(g)?;
    check_len("input", g.input_len(), input.len())?;
    check_len("output", g.output_len()?, out_len)?;
    if let Some(b) = params.bias {
        check_len("bias", g.out_channels, b.len())?;
    }
    if !(0..=255).contains(&za) {
        return Err(GemmError::ZeroPointOutOfRange {
            what: "input zero point",
            zero_point: za,
            min: 0,
            max: 255,
        }
        .into());
    }
    Ok(out_dims)
}

/// Convolves the NDHWC quint8 `input` (zero point `input_zero_point`) with `weights` and
/// writes the requantized NDHWC quint8 result to `out`. Returns the kernel family that ran.
///
/// Errors: an invalid geometry, weights packed for another geometry, buffers of the wrong
/// length, an input zero point outside 0..=255, invalid requantization parameters or a bias
/// not of length O, or a possible i32 overflow.
pub fn conv_u8s8(
    geometry: &ConvGeometry,
    input: &[u8],
    input_zero_point: i32,
    weights: &PackedConvWeights,
    params: Requantize<'_>,
    out: &mut [u8],
) -> Result<KernelKind> {
    let g = geometry;
    let out_dims = check_call(g, input, input_zero_point, weights, &params, out.len())?;
    let za = input_zero_point;
    let kernel = kernel_for(weights.kind())?;
    let (cg, og) = (g.group_in(), g.group_out());
    match &weights.form {
        Form::Depthwise(dw) => {
            check_overflow(g.taps(), za, 255)?;
            let stage = Stage::requant(params.prepare(&dw.qparams)?);
            depthwise::run(kernel, g, out_dims, input, za, dw, &stage, out);
        }
        Form::Gemm(mats) if g.is_pointwise() => {
            let m = g.batch * out_dims.iter().product::<usize>();
            for (grp, w) in mats.iter().enumerate() {
                let a = Activations {
                    data: &input[grp * cg..],
                    rows: m,
                    row_stride: g.in_channels,
                    zero_point: za,
                };
                let p = Requantize {
                    bias: params.bias.map(|b| &b[grp * og..(grp + 1) * og]),
                    ..params
                };
                gemm::gemm_u8s8(
                    a,
                    w,
                    Output::QUInt8 {
                        params: p,
                        out: &mut out[grp * og..],
                        ldc: g.out_channels,
                    },
                )?;
            }
        }
        Form::Small(w16, w) => {
            let plan = small::plan(kernel, g, out_dims, input, za, w, params)?;
            small::run(&plan, w16, false, out);
        }
        Form::Gemm(mats) | Form::RowRun(_, mats) => {
            let mut groups = Vec::with_capacity(mats.len());
            for (grp, w) in mats.iter().enumerate() {
                check_overflow(w.k(), za, w.w_abs_max())?;
                let p = Requantize {
                    bias: params.bias.map(|b| &b[grp * og..(grp + 1) * og]),
                    ..params
                };
                let stage = Stage::requant(p.prepare(w)?);
                groups.push(implicit::GroupPlan::new(kernel, w, stage, za));
            }
            let plan = implicit::Plan {
                kernel,
                g,
                out_dims,
                input,
                za,
                groups,
            };
            #[cfg(target_arch = "x86_64")]
            if let Form::RowRun(rr, _) = &weights.form
                && row_run_amx::applies(&plan, rr)
            {
                row_run_amx::run(&plan, rr, out);
                return Ok(kernel.kind());
            }
            #[cfg(target_arch = "x86_64")]
            if let Form::RowRun(rr, _) = &weights.form
                && row_run::applies(&plan)
            {
                row_run::run(&plan, rr, out);
                return Ok(kernel.kind());
            }
            #[cfg(target_arch = "x86_64")]
            if indirect::applies(&plan) {
                indirect::run(&plan, out);
                return Ok(kernel.kind());
            }
            plan.run(out);
        }
    }
    Ok(kernel.kind())
}
