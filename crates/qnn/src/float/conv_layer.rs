//! What the float convolution layers (Conv1d, Conv2d, ConvTranspose2d) share around the
//! arithmetic of `conv_core`: the hyper-parameter check, the parameter-shape check, the weight as
//! stored (f32, or f16 once halved) and backward through the layer's gradient function.

use half::f16;
use qtensor::Tensor;

use super::conv_core::{Channels, ConvWeight};
use super::im2col::Geom;
use super::util::{same_shape, tensor};
use crate::error::{QnnError, Result};
use crate::param::Param;
use crate::value::Value;

/// A layer's gradient arithmetic, `(channels, geometry, n, x, w, dy, dw, db) -> dx`
/// (`conv_core::conv_backward` or `conv_core::conv_transpose_backward`).
pub(crate) type ConvGrad = fn(
    Channels,
    &Geom,
    usize,
    &[f32],
    &[f32],
    &[f32],
    &mut [f32],
    Option<&mut [f32]>,
) -> Result<Vec<f32>>;

/// Checks the hyper-parameters every convolution layer has: channels divisible by `groups`, and
/// positive kernel sizes, strides and dilations.
pub(crate) fn validate_channels_and_window(
    module: &'static str,
    [in_channels, out_channels, groups]: [usize; 3],
    kernel_size: &[usize],
    stride: &[usize],
    dilation: &[usize],
) -> Result<()> {
    let bad = |reason: String| Err(QnnError::InvalidConfig { module, reason });
    if groups == 0 || !in_channels.is_multiple_of(groups) || !out_channels.is_multiple_of(groups) {
        return bad(format!(
            "in_channels {in_channels} and out_channels {out_channels} must be divisible by groups {groups}"
        ));
    }
    if kernel_size.contains(&0) || stride.contains(&0) || dilation.contains(&0) {
        return bad(format!(
            "kernel_size {kernel_size:?}, stride {stride:?} and dilation {dilation:?} must be positive"
        ));
    }
    Ok(())
}

/// Checks a layer's weight as stored (the f16 copy once halved) against `weight_shape` and its
/// bias against `[out_channels]`: the fields are public and may have been replaced.
pub(crate) fn check_weight_and_bias(
    module: &str,
    weight_shape: &[usize],
    out_channels: usize,
    weight: &Param,
    weight_f16: Option<&Tensor<f16>>,
    bias: Option<&Param>,
) -> Result<()> {
    let stored = weight_f16.map_or(weight.shape(), |h| h.shape());
    same_shape(&format!("{module} weight"), weight_shape, stored)?;
    if let Some(b) = bias {
        same_shape(&format!("{module} bias"), &[out_channels], b.shape())?;
    }
    Ok(())
}

/// The weight as the layer stores it: the f16 copy once halved, else the f32 parameter.
pub(crate) fn stored_weight<'a>(
    weight: &'a Param,
    weight_f16: Option<&'a Tensor<f16>>,
) -> ConvWeight<'a> {
    match weight_f16 {
        Some(h) => ConvWeight::F16(h.data()),
        None => ConvWeight::F32(weight.value.data()),
    }
}

/// Backward through `grad` for `n` inputs `x` and output gradient `dy`: accumulates the weight's
/// and the bias's gradients and returns the input gradient shaped like `x`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn layer_backward(
    grad: ConvGrad,
    ch: Channels,
    g: &Geom,
    n: usize,
    x: &Tensor<f32>,
    dy: &Tensor<f32>,
    weight: &mut Param,
    bias: Option<&mut Param>,
) -> Result<Value> {
    let db = bias.map(|b| b.grad.data_mut());
    let dx = grad(
        ch,
        g,
        n,
        x.data(),
        weight.value.data(),
        dy.data(),
        weight.grad.data_mut(),
        db,
    )?;
    Ok(Value::F32(tensor(x.shape(), dx)?))
}
