//! QAT layers ([`qnn::qat`]: Linear, LinearReLU, Conv1d, Conv2d, ConvReLU2d, ConvBn1d,
//! ConvBnReLU1d, ConvBn2d, ConvBnReLU2d, LinearBn1d) and the fake-quant modules as graph nodes
//! (FakeQuantize, FixedQParamsFakeQuantize, FusedMovingAvgObsFakeQuantize).
//!
//! A QAT layer is written as its float layer's hyper-parameters (`in`/`out`/`bias`, or, with a
//! batch norm, the convolution's under `conv.` / the linear layer's under `linear.` and the
//! batch norm's under `bn.`), its weight fake-quant's spec under `wfq.` (the spec it was built
//! from: the node's QAT QConfig weight entry) and, for Conv/Linear+BN, the `freeze_bn` and
//! `bn_train` flags. A fake-quant node is written as its spec
//! (`fq=FakeQuantize obs.kind=… …`) and, for per-channel ones, the channel count of its running
//! range (`channels`). Everything else is in the state dict under PyTorch's names: weights,
//! `bn.*` running statistics, `weight_fake_quant.{fake_quant_enabled, observer_enabled, scale,
//! zero_point, activation_post_process.{eps, min_val, max_val}}` and the same buffers of the
//! fake-quant nodes; loading rebuilds each module from its spec, loads the buffers strictly and
//! lets `after_load` give the observer inside exactly the saved running range, so training
//! resumes as if it had never stopped.

use qnn::float::{BatchNorm1d, BatchNorm2d};
use qnn::init::Rng;
use qnn::param::BufferRef;
use qnn::qat::{self, FakeQuant, QatBatchNorm, QatBnFolded, QatFloatLayer};
use qnn::{Module, ModuleKind};

use super::float::{bn_args, conv1d_config_args, conv2d_config_args};
use super::qconfig::fake_quant_args;
use super::{Args, Built, Described, Reader, concrete, flag, fmt_err, push};
use crate::error::Result;

/// Writes the spec of `fq` under `p` (its state is in the state dict: every observer a
/// fake-quant can drive keeps its statistics in buffers).
fn spec_args(fq: &dyn FakeQuant, p: &str, args: &mut Args) -> Result<()> {
    fake_quant_args(&fq.spec(), p, args)
}

fn linear_args(weight_shape: &[usize], bias: bool, prefix: &str, args: &mut Args) {
    push(
        args,
        prefix,
        "in",
        weight_shape.get(1).copied().unwrap_or(0),
    );
    push(
        args,
        prefix,
        "out",
        weight_shape.first().copied().unwrap_or(0),
    );
    push(args, prefix, "bias", flag(bias));
}

/// A Conv/Linear+BN layer: `layer` writes the float layer's hyper-parameters.
fn bn_folded_args<L: QatFloatLayer, const RELU: bool>(
    l: &QatBnFolded<L, RELU>,
    layer: impl FnOnce(&QatBnFolded<L, RELU>, &mut Args),
    args: &mut Args,
) -> Result<()> {
    layer(l, args);
    bn_args(l.bn().bn_config(), "bn.", args);
    push(args, "", "freeze_bn", flag(l.is_bn_frozen()));
    push(args, "", "bn_train", flag(l.bn().is_training()));
    spec_args(l.weight_fake_quant(), "wfq.", args)
}

/// The number of channels of a per-channel fake-quant's running range (0 before the first
/// observation), `None` for per-tensor ones.
fn channels(m: &dyn Module, fq: &dyn FakeQuant) -> Option<usize> {
    fq.ch_axis()?;
    let mut n = 0;
    m.visit_buffers(&mut |name, b| {
        if name == "activation_post_process.min_val"
            && let BufferRef::F32(t) = b
        {
            n = t.numel();
        }
    });
    Some(n)
}

/// Arguments of a QAT layer or fake-quant node; `None` for other modules.
pub(super) fn describe(m: &dyn Module, args: &mut Args) -> Described {
    let result = match m.kind() {
        ModuleKind::QatLinear => concrete::<qat::Linear>(m).and_then(|l| {
            linear_args(l.weight.shape(), l.bias.is_some(), "", args);
            spec_args(l.weight_fake_quant(), "wfq.", args)
        }),
        ModuleKind::QatLinearReLU => concrete::<qat::LinearReLU>(m).and_then(|l| {
            linear_args(l.weight.shape(), l.bias.is_some(), "", args);
            spec_args(l.weight_fake_quant(), "wfq.", args)
        }),
        ModuleKind::QatConv1d => concrete::<qat::Conv1d>(m).and_then(|l| {
            conv1d_config_args(l.config(), "", args);
            spec_args(l.weight_fake_quant(), "wfq.", args)
        }),
        ModuleKind::QatConv2d => concrete::<qat::Conv2d>(m).and_then(|l| {
            conv2d_config_args(l.config(), "", args);
            spec_args(l.weight_fake_quant(), "wfq.", args)
        }),
        ModuleKind::QatConvReLU2d => concrete::<qat::ConvReLU2d>(m).and_then(|l| {
            conv2d_config_args(l.config(), "", args);
            spec_args(l.weight_fake_quant(), "wfq.", args)
        }),
        ModuleKind::QatConvBn2d => concrete::<qat::ConvBn2d>(m).and_then(|l| {
            bn_folded_args(l, |l, a| conv2d_config_args(l.config(), "conv.", a), args)
        }),
        ModuleKind::QatConvBnReLU2d => concrete::<qat::ConvBnReLU2d>(m).and_then(|l| {
            bn_folded_args(l, |l, a| conv2d_config_args(l.config(), "conv.", a), args)
        }),
        ModuleKind::QatConvBn1d => concrete::<qat::ConvBn1d>(m).and_then(|l| {
            bn_folded_args(l, |l, a| conv1d_config_args(l.config(), "conv.", a), args)
        }),
        ModuleKind::QatConvBnReLU1d => concrete::<qat::ConvBnReLU1d>(m).and_then(|l| {
            bn_folded_args(l, |l, a| conv1d_config_args(l.config(), "conv.", a), args)
        }),
        ModuleKind::QatLinearBn1d => concrete::<qat::LinearBn1d>(m).and_then(|l| {
            let bias = l.bias.is_some();
            bn_folded_args(
                l,
                |l, a| linear_args(l.weight.shape(), bias, "linear.", a),
                args,
            )
        }),
        ModuleKind::FakeQuantize
        | ModuleKind::FixedQParamsFakeQuantize
        | ModuleKind::FusedMovingAvgObsFakeQuantize => match crate::passes::qat::as_fake_quant(m) {
            Some(fq) => spec_args(fq, "", args).map(|()| {
                if let Some(n) = channels(m, fq) {
                    push(args, "", "channels", n);
                }
                if fq.applications_per_call() > 1 {
                    push(args, "", "per_call", fq.applications_per_call());
                }
            }),
            None => Err(fmt_err(format!(
                "module kind {:?} is not one of qnn's fake-quant modules",
                m.kind()
            ))),
        },
        _ => return None,
    };
    Some(result)
}

/// Builds a QAT layer or fake-quant node from its arguments (placeholder weights; the state
/// dict fills them); `None` for other op names.
pub(super) fn build(op: &str, r: &Reader<'_>, rng: &mut Rng) -> Built {
    let kind = match op {
        "QatLinear"
        | "QatLinearReLU"
        | "QatConv1d"
        | "QatConv2d"
        | "QatConvReLU2d"
        | "QatConvBn2d"
        | "QatConvBnReLU2d"
        | "QatConvBn1d"
        | "QatConvBnReLU1d"
        | "QatLinearBn1d"
        | "FakeQuantize"
        | "FixedQParamsFakeQuantize"
        | "FusedMovingAvgObsFakeQuantize" => op,
        _ => return None,
    };
    Some(build_known(kind, r, rng))
}

fn build_known(kind: &str, r: &Reader<'_>, rng: &mut Rng) -> Result<Box<dyn Module>> {
    if kind.ends_with("FakeQuantize") {
        return fake_quant_node(kind, r);
    }
    let w = r.fake_quant_spec("wfq.")?;
    let m: Box<dyn Module> = match kind {
        "QatLinear" => Box::new(qat::Linear::from_float(&r.linear("", rng)?, &w)?),
        "QatLinearReLU" => Box::new(qat::LinearReLU::from_float(&r.linear("", rng)?, &w)?),
        "QatConv1d" => Box::new(qat::Conv1d::from_float(&r.conv1d("", rng)?, &w)?),
        "QatConv2d" => Box::new(qat::Conv2d::from_float(&r.conv2d("", rng)?, &w)?),
        "QatConvReLU2d" => Box::new(qat::ConvReLU2d::from_float(&r.conv2d("", rng)?, &w)?),
        "QatConvBn2d" => Box::new(qat::ConvBn2d::from_parts(
            r.conv2d("conv.", rng)?,
            BatchNorm2d::new(r.bn("bn.")?),
            &w,
        )?),
        "QatConvBnReLU2d" => Box::new(qat::ConvBnReLU2d::from_parts(
            r.conv2d("conv.", rng)?,
            BatchNorm2d::new(r.bn("bn.")?),
            &w,
        )?),
        "QatConvBn1d" => Box::new(qat::ConvBn1d::from_parts(
            r.conv1d("conv.", rng)?,
            BatchNorm1d::new(r.bn("bn.")?),
            &w,
        )?),
        "QatConvBnReLU1d" => Box::new(qat::ConvBnReLU1d::from_parts(
            r.conv1d("conv.", rng)?,
            BatchNorm1d::new(r.bn("bn.")?),
            &w,
        )?),
        _ => Box::new(qat::LinearBn1d::from_parts(
            r.linear("linear.", rng)?,
            BatchNorm1d::new(r.bn("bn.")?),
            &w,
        )?),
    };
    Ok(m)
}

/// A fresh fake-quant node of kind `kind` from its spec, its per-channel buffers sized.
fn fake_quant_node(kind: &str, r: &Reader<'_>) -> Result<Box<dyn Module>> {
    let mut fq = r.fake_quant_spec("")?.build()?;
    if format!("{:?}", fq.kind()) != kind {
        return Err(fmt_err(format!(
            "node `{}`: a {kind} node holds a {:?} spec",
            r.node,
            fq.kind()
        )));
    }
    if r.has("channels") {
        let n: usize = r.parse("channels")?;
        if fq.ch_axis().is_none() {
            return Err(r.bad("channels"));
        }
        if n > 0 {
            fq.expect_channels(n);
        }
    }
    if r.has("per_call") {
        let n: u32 = r.parse("per_call")?;
        if !(1..=2).contains(&n) {
            return Err(r.bad("per_call"));
        }
        fq.set_applications_per_call(n);
    }
    let m: Box<dyn Module> = fq;
    Ok(m)
}

/// After loading: the Conv/Linear+BN layers' frozen batch-norm statistics (`freeze_bn_stats`)
/// or a batch norm left updating in an eval-mode layer (`update_bn_stats`).
pub(super) fn restore(m: &mut dyn Module, r: &Reader<'_>) -> Result<()> {
    fn apply<L: QatFloatLayer, const RELU: bool>(m: &mut dyn Module, r: &Reader<'_>) -> Result<()> {
        let Some(l) = m.downcast_mut::<QatBnFolded<L, RELU>>() else {
            return Ok(());
        };
        if r.flag("freeze_bn")? {
            l.freeze_bn_stats();
        } else if r.flag("bn_train")? && !l.bn().is_training() {
            l.update_bn_stats();
        }
        Ok(())
    }
    use qnn::float::{Conv1d, Conv2d, Linear};
    match m.kind() {
        ModuleKind::QatConvBn2d => apply::<Conv2d, false>(m, r),
        ModuleKind::QatConvBnReLU2d => apply::<Conv2d, true>(m, r),
        ModuleKind::QatConvBn1d => apply::<Conv1d, false>(m, r),
        ModuleKind::QatConvBnReLU1d => apply::<Conv1d, true>(m, r),
        ModuleKind::QatLinearBn1d => apply::<Linear, false>(m, r),
        _ => Ok(()),
    }
}
