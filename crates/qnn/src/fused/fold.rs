//! Eval-mode BatchNorm folding with PyTorch's exact formulas (`torch/nn/utils/fusion.py`):
//! every step is one f32 tensor operation, rounded as PyTorch rounds it.
//!
//! Conv: `w' = w * (gamma * rsqrt(var + eps))[c]`, `b' = ((b - mean) * rsqrt(var + eps)) * gamma + beta`.
//! Linear: `s = gamma * rsqrt(var + eps)`, `w' = w * s[row]`, `b' = (b - mean) * s + beta`.
//! (`rsqrt` is `1 / sqrt`, as PyTorch's CPU kernel computes it.)

use qtensor::Tensor;

use crate::error::{QnnError, Result};
use crate::float::{BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Linear};
use crate::module::Module;

/// What the folding needs from a batch norm: running statistics, eps and the optional affine
/// parameters (missing ones count as ones and zeros, as in PyTorch's `fuse_conv_bn_weights`).
#[derive(Clone, Copy, Debug)]
pub struct BnFoldParams<'a> {
    /// `running_mean`.
    pub running_mean: &'a Tensor<f32>,
    /// `running_var`.
    pub running_var: &'a Tensor<f32>,
    /// `eps`.
    pub eps: f32,
    /// `weight` (gamma), if affine.
    pub weight: Option<&'a Tensor<f32>>,
    /// `bias` (beta), if affine.
    pub bias: Option<&'a Tensor<f32>>,
}

macro_rules! bn_fold_params {
    ($bn:expr, $module:literal) => {{
        let bn = $bn;
        match (bn.running_mean(), bn.running_var()) {
            (Some(running_mean), Some(running_var)) => Ok(BnFoldParams {
                running_mean,
                running_var,
                eps: bn.config().eps,
                weight: bn.weight().map(|p| &p.value),
                bias: bn.bias().map(|p| &p.value),
            }),
            _ => Err(QnnError::InvalidConfig {
                module: $module,
                reason: "the batch norm has no running statistics (track_running_stats=False)"
                    .into(),
            }),
        }
    }};
}

fn invalid(module: &'static str, reason: String) -> QnnError {
    QnnError::InvalidConfig { module, reason }
}

/// Checks that an optional per-channel tensor has `c` elements.
fn check_len(module: &'static str, what: &str, t: Option<&Tensor<f32>>, c: usize) -> Result<()> {
    match t {
        Some(t) if t.numel() != c => Err(QnnError::ShapeMismatch {
            what: format!("{module}: {what}"),
            expected: vec![c],
            got: t.shape().to_vec(),
        }),
        _ => Ok(()),
    }
}

/// `1 / sqrt(var + eps)` per channel, in f32 as PyTorch's `torch.rsqrt(bn_rv + bn_eps)`.
fn var_rsqrt(bn: &BnFoldParams<'_>) -> Vec<f32> {
    bn.running_var
        .data()
        .iter()
        .map(|&v| 1.0 / (v + bn.eps).sqrt())
        .collect()
}

fn or_fill(t: Option<&Tensor<f32>>, c: usize, fill: f32) -> Vec<f32> {
    t.map_or_else(|| vec![fill; c], |t| t.data().to_vec())
}

/// PyTorch's `fuse_conv_bn_weights`: the folded `(weight, bias)` of a convolution followed by
/// an eval-mode batch norm. `transpose` selects the transposed-conv weight layout (channels on
/// dim 1); otherwise output channels are dim 0. A missing conv bias counts as zeros.
pub fn fuse_conv_bn_weights(
    conv_w: &Tensor<f32>,
    conv_b: Option<&Tensor<f32>>,
    bn: &BnFoldParams<'_>,
    transpose: bool,
) -> Result<(Tensor<f32>, Tensor<f32>)> {
    const M: &str = "fuse_conv_bn_weights";
    let shape = conv_w.shape();
    let axis = usize::from(transpose);
    if shape.len() < 2 {
        return Err(QnnError::WrongRank {
            module: M,
            expected: "a conv weight of at least 2 dims",
            got: shape.to_vec(),
        });
    }
    let c = shape[axis];
    for (what, t) in [
        ("running_mean", Some(bn.running_mean)),
        ("running_var", Some(bn.running_var)),
        ("bn weight", bn.weight),
        ("bn bias", bn.bias),
        ("conv bias", conv_b),
    ] {
        check_len(M, what, t, c)?;
    }
    let rsqrt = var_rsqrt(bn);
    let gamma = or_fill(bn.weight, c, 1.0);
    let beta = or_fill(bn.bias, c, 0.0);
    let cb = or_fill(conv_b, c, 0.0);
    let mean = bn.running_mean.data();
    let scale: Vec<f32> = gamma.iter().zip(&rsqrt).map(|(g, r)| g * r).collect();
    let inner: usize = shape[axis + 1..].iter().product();
    let w: Vec<f32> = conv_w
        .data()
        .iter()
        .enumerate()
        .map(|(i, &v)| v * scale[(i / inner.max(1)) % c])
        .collect();
    let b: Vec<f32> = (0..c)
        .map(|k| (cb[k] - mean[k]) * rsqrt[k] * gamma[k] + beta[k])
        .collect();
    Ok((Tensor::new(shape, w)?, Tensor::new(&[c], b)?))
}

/// PyTorch's `fuse_linear_bn_weights`: the folded `(weight, bias)` of a linear layer followed
/// by an eval-mode batch norm with `out_features` (or 1) features. A missing linear bias counts
/// as zeros; a non-affine batch norm as gamma 1, beta 0.
pub fn fuse_linear_bn_weights(
    linear_w: &Tensor<f32>,
    linear_b: Option<&Tensor<f32>>,
    bn: &BnFoldParams<'_>,
) -> Result<(Tensor<f32>, Tensor<f32>)> {
    const M: &str = "fuse_linear_bn_weights";
    let &[out, inf] = linear_w.shape() else {
        return Err(QnnError::WrongRank {
            module: M,
            expected: "a 2-d [out_features, in_features] weight",
            got: linear_w.shape().to_vec(),
        });
    };
    let c = bn.running_mean.numel();
    if c != out && c != 1 {
        return Err(invalid(
            M,
            format!(
                "to fuse, linear.out_features == bn.num_features or bn.num_features == 1, got linear.out_features={out} and bn.num_features={c}"
            ),
        ));
    }
    for (what, t) in [
        ("running_var", Some(bn.running_var)),
        ("bn weight", bn.weight),
        ("bn bias", bn.bias),
    ] {
        check_len(M, what, t, c)?;
    }
    check_len(M, "linear bias", linear_b, out)?;
    let rsqrt = var_rsqrt(bn);
    let gamma = or_fill(bn.weight, c, 1.0);
    let beta = or_fill(bn.bias, c, 0.0);
    let mean = bn.running_mean.data();
    let scale: Vec<f32> = gamma.iter().zip(&rsqrt).map(|(g, r)| g * r).collect();
    let ch = |row: usize| if c == 1 { 0 } else { row };
    let w: Vec<f32> = linear_w
        .data()
        .iter()
        .enumerate()
        .map(|(i, &v)| v * scale[ch(i / inf.max(1))])
        .collect();
    let lb = or_fill(linear_b, out, 0.0);
    let b: Vec<f32> = (0..out)
        .map(|r| (lb[r] - mean[ch(r)]) * scale[ch(r)] + beta[ch(r)])
        .collect();
    Ok((Tensor::new(&[out, inf], w)?, Tensor::new(&[out], b)?))
}

fn eval_only(module: &'static str, a: &dyn Module, b: &dyn Module) -> Result<()> {
    if a.is_training() || b.is_training() {
        return Err(invalid(
            module,
            "fusion only for eval: both modules must be in eval mode".into(),
        ));
    }
    Ok(())
}

fn full_precision(module: &'static str, halved: bool) -> Result<()> {
    if halved {
        return Err(invalid(
            module,
            "cannot fold a batch norm into a halved (f16) layer".into(),
        ));
    }
    Ok(())
}

/// PyTorch's `fuse_conv_bn_eval` for [`Conv2d`] + [`BatchNorm2d`]: a new eval-mode conv
/// computing both. Both must be in eval mode and the batch norm must track running statistics.
pub fn fuse_conv_bn_eval(conv: &Conv2d, bn: &BatchNorm2d) -> Result<Conv2d> {
    const M: &str = "fuse_conv_bn_eval";
    eval_only(M, conv, bn)?;
    full_precision(M, conv.weight_f16().is_some())?;
    let p = bn_fold_params!(bn, "fuse_conv_bn_eval")?;
    let (w, b) = fuse_conv_bn_weights(
        &conv.weight.value,
        conv.bias.as_ref().map(|b| &b.value),
        &p,
        false,
    )?;
    let mut fused = Conv2d::from_tensors(*conv.config(), w, Some(b))?;
    fused.eval();
    Ok(fused)
}

/// [`fuse_conv_bn_eval`] for [`Conv1d`] + [`BatchNorm1d`].
pub fn fuse_conv1d_bn_eval(conv: &Conv1d, bn: &BatchNorm1d) -> Result<Conv1d> {
    const M: &str = "fuse_conv1d_bn_eval";
    eval_only(M, conv, bn)?;
    full_precision(M, conv.weight_f16().is_some())?;
    let p = bn_fold_params!(bn, "fuse_conv1d_bn_eval")?;
    let (w, b) = fuse_conv_bn_weights(
        &conv.weight.value,
        conv.bias.as_ref().map(|b| &b.value),
        &p,
        false,
    )?;
    let mut fused = Conv1d::from_tensors(*conv.config(), w, Some(b))?;
    fused.eval();
    Ok(fused)
}

/// PyTorch's `fuse_linear_bn_eval`: a new eval-mode [`Linear`] computing the linear layer and
/// the batch norm (`out_features` or 1 features). Both must be in eval mode.
pub fn fuse_linear_bn_eval(linear: &Linear, bn: &BatchNorm1d) -> Result<Linear> {
    const M: &str = "fuse_linear_bn_eval";
    eval_only(M, linear, bn)?;
    full_precision(M, linear.weight_f16().is_some())?;
    let p = bn_fold_params!(bn, "fuse_linear_bn_eval")?;
    let (w, b) = fuse_linear_bn_weights(
        &linear.weight.value,
        linear.bias.as_ref().map(|b| &b.value),
        &p,
    )?;
    let mut fused = Linear::from_tensors(w, Some(b))?;
    fused.eval();
    Ok(fused)
}
