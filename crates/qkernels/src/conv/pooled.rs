//! A convolution followed by PyTorch's `max_pool2d(x, 2)` (2×2 windows, stride 2, no
//! padding, floor mode) in one call: LeNet's `conv → relu → pool` after fusion.
//!
//! Where the small-C AVX-512 VNNI kernel runs and the requantization cannot overflow
//! ([`max_pool2_fuses`]), the kernel pools the corrected i32 sums of each 2×2 window before
//! requantizing (requantization is then non-decreasing, so this equals pooling the
//! requantized bytes) and the full-size output is never stored. Everywhere else the call is
//! [`conv_u8s8`] into a scratch buffer followed by [`crate::pool::max_pool2d`]: the results
//! are identical either way.

use super::pack::Form;
use super::{ConvGeometry, PackedConvWeights, Result, check_call, conv_u8s8, small};
use crate::gemm::{KernelKind, Requantize, kernel_for};
use crate::pool::{self, Pool2d};

/// The pool window over the convolution's `[N·OD, OH, OW, O]` output planes.
fn window(g: &ConvGeometry, [od, oh, ow]: [usize; 3]) -> Pool2d {
    Pool2d {
        input: [g.batch * od, oh, ow, g.out_channels],
        kernel: [2, 2],
        stride: [2, 2],
        padding: [0, 0],
        dilation: [1, 1],
        ceil_mode: false,
    }
}

/// Whether [`conv_u8s8_max_pool2`] runs fused for these arguments (so tests can prove the
/// fused path ran); `false` for invalid arguments.
pub fn max_pool2_fuses(
    geometry: &ConvGeometry,
    input_zero_point: i32,
    weights: &PackedConvWeights,
    params: Requantize<'_>,
) -> bool {
    let Form::Small(_, w) = &weights.form else {
        return false;
    };
    let (Ok(out_dims), Ok(kernel)) = (geometry.output(), kernel_for(weights.kind())) else {
        return false;
    };
    if weights.check(geometry).is_err() || !(0..=255).contains(&input_zero_point) {
        return false;
    }
    small::plan(kernel, geometry, out_dims, &[], input_zero_point, w, params)
        .is_ok_and(|plan| small::pool_fuses(&plan))
}

/// [`conv_u8s8`] followed by a 2×2 max pool with stride 2 (no padding, floor mode) of each
/// output plane: `out` is `[N, OD, OH/2, OW/2, O]` (NDHWC). Returns the kernel family that
/// ran.
///
/// Errors: those of [`conv_u8s8`], and an output plane smaller than 2×2.
pub fn conv_u8s8_max_pool2(
    geometry: &ConvGeometry,
    input: &[u8],
    input_zero_point: i32,
    weights: &PackedConvWeights,
    params: Requantize<'_>,
    out: &mut [u8],
) -> Result<KernelKind> {
    let g = geometry;
    let full = g.output()?;
    let win = window(g, full);
    let [ph, pw] = win.output()?;
    super::check_len("output", win.input[0] * ph * pw * g.out_channels, out.len())?;
    if let Form::Small(w16, w) = &weights.form {
        let full_len = g.output_len()?;
        let out_dims = check_call(g, input, input_zero_point, weights, &params, full_len)?;
        let kernel = kernel_for(weights.kind())?;
        let plan = small::plan(kernel, g, out_dims, input, input_zero_point, w, params)?;
        if small::pool_fuses(&plan) {
            small::run(&plan, w16, true, out);
            return Ok(kernel.kind());
        }
    }
    let mut full_out = vec![0u8; g.output_len()?];
    let kind = conv_u8s8(g, input, input_zero_point, weights, params, &mut full_out)?;
    pool::max_pool2d(&full_out, &win, out)?;
    Ok(kind)
}
