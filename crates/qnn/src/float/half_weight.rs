//! f16 weight storage for [`crate::Module::half`]: rounding, and the temporary f32 views that keep
//! state-dict names and visitors working on a halved layer.

use std::borrow::Cow;

use half::f16;
use qkernels::float::widen_f16_slice;
use qtensor::Tensor;

use crate::error::{QnnError, Result};
use crate::param::Param;

/// `t` rounded to f16 (round to nearest even, as PyTorch's `.half()`).
pub(crate) fn round_to_f16(t: &Tensor<f32>) -> Result<Tensor<f16>> {
    let data = t.data().iter().map(|&v| f16::from_f32(v)).collect();
    Ok(Tensor::new(t.shape(), data)?)
}

/// `t` widened to f32 (exact).
pub(crate) fn widen(t: &Tensor<f16>) -> Result<Tensor<f32>> {
    let mut out = vec![0.0f32; t.numel()];
    widen_f16_slice(t.data(), &mut out);
    Ok(Tensor::new(t.shape(), out)?)
}

/// A weight as f32: the parameter's own data, or the f16 copy widened (once per call) when the
/// layer has been halved.
pub(crate) fn f32_weight<'a>(param: &'a Param, half: Option<&Tensor<f16>>) -> Cow<'a, [f32]> {
    match half {
        Some(h) => {
            let mut out = vec![0.0f32; h.numel()];
            widen_f16_slice(h.data(), &mut out);
            Cow::Owned(out)
        }
        None => Cow::Borrowed(param.value.data()),
    }
}

/// The placeholder left in a layer's `weight` field once the weight lives in f16: an empty
/// parameter, so that the f32 copy (and its gradient) is freed.
pub(crate) fn placeholder() -> Param {
    Param::new(Tensor::zeros(&[0]))
}

/// `half()` for a weight-and-bias layer: rounds `weight` into `weight_f16` and leaves the
/// [`placeholder`] in `weight`. Returns whether it converted now (`false`: already halved), so
/// the caller can drop what it saved for backward.
pub(crate) fn halve_weight(
    weight: &mut Param,
    weight_f16: &mut Option<Tensor<f16>>,
) -> Result<bool> {
    if weight_f16.is_some() {
        return Ok(false);
    }
    *weight_f16 = Some(round_to_f16(&weight.value)?);
    *weight = placeholder();
    Ok(true)
}

/// Calls `f` with a temporary f32 parameter holding the widened f16 weight.
pub(crate) fn visit_half(name: &str, h: &Tensor<f16>, f: &mut dyn FnMut(&str, &Param)) {
    if let Ok(w) = widen(h) {
        f(name, &Param::new(w));
    }
}

/// Calls `f` with a temporary f32 parameter holding the widened f16 weight, then rounds what `f`
/// left there back into `h` (loading a state dict into a halved model rounds the loaded values).
pub(crate) fn visit_half_mut(name: &str, h: &mut Tensor<f16>, f: &mut dyn FnMut(&str, &mut Param)) {
    let Ok(w) = widen(h) else { return };
    let mut p = Param::new(w);
    f(name, &mut p);
    if p.value.shape() == h.shape()
        && let Ok(r) = round_to_f16(&p.value)
    {
        *h = r;
    }
}

/// A layer's `weight` (f32, or its f16 copy once halved) and optional `bias`, visited under
/// PyTorch's state-dict names: the shared body of the weight-and-bias layers' `visit_params`.
pub(crate) fn visit_weight_and_bias(
    weight: &Param,
    weight_f16: Option<&Tensor<f16>>,
    bias: Option<&Param>,
    f: &mut dyn FnMut(&str, &Param),
) {
    match weight_f16 {
        Some(h) => visit_half("weight", h, f),
        None => f("weight", weight),
    }
    if let Some(b) = bias {
        f("bias", b);
    }
}

/// [`visit_weight_and_bias`] for `visit_params_mut` (a halved weight takes the loaded values
/// rounded to f16).
pub(crate) fn visit_weight_and_bias_mut(
    weight: &mut Param,
    weight_f16: Option<&mut Tensor<f16>>,
    bias: Option<&mut Param>,
    f: &mut dyn FnMut(&str, &mut Param),
) {
    match weight_f16 {
        Some(h) => visit_half_mut("weight", h, f),
        None => f("weight", weight),
    }
    if let Some(b) = bias {
        f("bias", b);
    }
}

/// Bytes of a weight-and-bias layer's parameters: 2 per weight element once halved, else 4,
/// plus 4 per bias element.
pub(crate) fn weight_and_bias_bytes(
    weight: &Param,
    weight_f16: Option<&Tensor<f16>>,
    bias: Option<&Param>,
) -> usize {
    let w = match weight_f16 {
        Some(h) => 2 * h.numel(),
        None => 4 * weight.value.numel(),
    };
    w + bias.map_or(0, |b| 4 * b.value.numel())
}

/// The error for `backward` on a halved (inference-only) layer.
pub(crate) fn backward_on_half(module: &'static str) -> QnnError {
    QnnError::InvalidConfig {
        module,
        reason: "backward on a layer converted by half(): f16 layers are inference-only".into(),
    }
}
