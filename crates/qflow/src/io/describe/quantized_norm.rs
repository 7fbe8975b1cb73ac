//! Static quantized normalizations ([`qnn::quantized`] BatchNorm2d, BNReLU2d, LayerNorm,
//! GroupNorm, InstanceNorm2d): the arguments are the shapes, which affine parameters exist and
//! `eps` (an f64 written in Rust's shortest round-trip form, so it comes back bit for bit); the
//! statistics, affine parameters and output `scale` / `zero_point` are state-dict buffers.

use qnn::param::BufferRef;
use qnn::qtensor::Tensor;
use qnn::quantized::{BNReLU2d, BatchNorm2d, GroupNorm, InstanceNorm2d, LayerNorm};
use qnn::{Module, ModuleKind};

use super::{Args, Built, Described, Reader, concrete, flag, list, push};
use crate::error::Result;

/// The length of buffer `name` (0 when absent).
fn buffer_len(m: &dyn Module, name: &str) -> usize {
    let mut n = 0;
    m.visit_buffers(&mut |b, v| {
        if b == name
            && let BufferRef::F32(t) = v
        {
            n = t.numel();
        }
    });
    n
}

fn affine_args(weight: bool, bias: bool, eps: f64, args: &mut Args) {
    push(args, "", "weight", flag(weight));
    push(args, "", "bias", flag(bias));
    push(args, "", "eps", eps);
}

/// Arguments of a quantized normalization; `None` for other modules.
pub(super) fn describe(m: &dyn Module, args: &mut Args) -> Described {
    let result = match m.kind() {
        ModuleKind::QuantizedBatchNorm2d => concrete::<BatchNorm2d>(m).map(|b| {
            push(args, "", "features", buffer_len(m, "running_mean"));
            push(args, "", "eps", b.eps());
        }),
        ModuleKind::QuantizedBNReLU2d => concrete::<BNReLU2d>(m).map(|b| {
            push(args, "", "features", buffer_len(m, "running_mean"));
            push(args, "", "eps", b.eps());
        }),
        ModuleKind::QuantizedLayerNorm => concrete::<LayerNorm>(m).map(|l| {
            push(args, "", "shape", list(l.normalized_shape()));
            affine_args(l.weight().is_some(), l.bias().is_some(), l.eps(), args);
        }),
        ModuleKind::QuantizedGroupNorm => concrete::<GroupNorm>(m).map(|l| {
            push(args, "", "groups", l.num_groups());
            push(args, "", "channels", l.num_channels());
            affine_args(l.weight().is_some(), l.bias().is_some(), l.eps(), args);
        }),
        ModuleKind::QuantizedInstanceNorm2d => concrete::<InstanceNorm2d>(m).map(|l| {
            push(args, "", "features", l.num_features());
            affine_args(l.weight().is_some(), l.bias().is_some(), l.eps(), args);
        }),
        _ => return None,
    };
    Some(result)
}

/// Optional weight and bias of a norm.
type Affine = (Option<Tensor<f32>>, Option<Tensor<f32>>);

/// Placeholder affine parameters of `shape` where the saved layer had them.
fn affine(r: &Reader<'_>, shape: &[usize]) -> Result<Affine> {
    Ok((
        r.flag("weight")?.then(|| Tensor::zeros(shape)),
        r.flag("bias")?.then(|| Tensor::zeros(shape)),
    ))
}

/// Builds a quantized normalization with placeholder values; `None` for other op names.
pub(super) fn build(op: &str, r: &Reader<'_>) -> Built {
    let kind = match op {
        "QuantizedBatchNorm2d"
        | "QuantizedBNReLU2d"
        | "QuantizedLayerNorm"
        | "QuantizedGroupNorm"
        | "QuantizedInstanceNorm2d" => op,
        _ => return None,
    };
    Some(build_known(kind, r))
}

fn build_known(kind: &str, r: &Reader<'_>) -> Result<Box<dyn Module>> {
    let eps: f64 = r.parse("eps")?;
    let m: Box<dyn Module> = match kind {
        "QuantizedBatchNorm2d" | "QuantizedBNReLU2d" => {
            let c: usize = r.parse("features")?;
            let (mean, var) = (Tensor::zeros(&[c]), Tensor::from_fn(&[c], |_| 1.0));
            if kind == "QuantizedBNReLU2d" {
                Box::new(BNReLU2d::from_stats(None, None, &mean, &var, eps, 1.0, 0)?)
            } else {
                Box::new(BatchNorm2d::from_stats(
                    None, None, &mean, &var, eps, 1.0, 0,
                )?)
            }
        }
        "QuantizedLayerNorm" => {
            let shape: Vec<usize> = r.list("shape")?;
            let (w, b) = affine(r, &shape)?;
            Box::new(LayerNorm::new(&shape, w, b, eps, 1.0, 0)?)
        }
        "QuantizedGroupNorm" => {
            let c: usize = r.parse("channels")?;
            let (w, b) = affine(r, &[c])?;
            Box::new(GroupNorm::new(r.parse("groups")?, c, w, b, eps, 1.0, 0)?)
        }
        _ => {
            let c: usize = r.parse("features")?;
            let (w, b) = affine(r, &[c])?;
            Box::new(InstanceNorm2d::new(c, w, b, eps, 1.0, 0)?)
        }
    };
    Ok(m)
}
