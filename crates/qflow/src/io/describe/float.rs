//! Float layers and the fused float modules of [`qnn::fused`]: constructor arguments, with
//! `half=1` for layers stored as f16 (halved again after loading).

use qnn::Module;
use qnn::ModuleKind;
use qnn::float::{
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, BatchNormConfig, Conv1d, Conv1dConfig,
    Conv2d, Conv2dConfig, Dropout, Hardsigmoid, Hardswish, Identity, Linear, MaxPool2d, ReLU,
    ReLU6, SiLU, Sigmoid, Tanh,
};
use qnn::fused::{
    BNReLU2d, ConvBn1d, ConvBn2d, ConvBnReLU1d, ConvBnReLU2d, ConvReLU1d, ConvReLU2d, LinearBn1d,
    LinearReLU,
};
use qnn::init::Rng;

use super::{Args, Built, Described, Reader, concrete, flag, list, push};
use crate::error::Result;

pub(super) fn linear_args(l: &Linear, prefix: &str, args: &mut Args) {
    push(args, prefix, "in", l.in_features().to_string());
    push(args, prefix, "out", l.out_features().to_string());
    push(args, prefix, "bias", flag(l.bias.is_some()));
    push(args, prefix, "half", flag(l.weight_f16().is_some()));
}

pub(super) fn conv1d_args(c: &Conv1d, prefix: &str, args: &mut Args) {
    conv1d_config_args(c.config(), prefix, args);
    push(args, prefix, "half", flag(c.weight_f16().is_some()));
}

/// The hyper-parameters of a 1-d convolution (shared with its QAT layer).
pub(super) fn conv1d_config_args(k: &Conv1dConfig, prefix: &str, args: &mut Args) {
    for (key, v) in [
        ("in", k.in_channels),
        ("out", k.out_channels),
        ("kernel", k.kernel_size),
        ("stride", k.stride),
        ("padding", k.padding),
        ("dilation", k.dilation),
        ("groups", k.groups),
    ] {
        push(args, prefix, key, v.to_string());
    }
    push(args, prefix, "bias", flag(k.bias));
}

pub(super) fn conv2d_args(c: &Conv2d, prefix: &str, args: &mut Args) {
    conv2d_config_args(c.config(), prefix, args);
    push(args, prefix, "half", flag(c.weight_f16().is_some()));
}

/// The hyper-parameters of a 2-d convolution (shared with its QAT layers).
pub(super) fn conv2d_config_args(k: &Conv2dConfig, prefix: &str, args: &mut Args) {
    push(args, prefix, "in", k.in_channels.to_string());
    push(args, prefix, "out", k.out_channels.to_string());
    for (key, v) in [
        ("kernel", k.kernel_size),
        ("stride", k.stride),
        ("padding", k.padding),
        ("dilation", k.dilation),
    ] {
        push(args, prefix, key, list(&v));
    }
    push(args, prefix, "groups", k.groups.to_string());
    push(args, prefix, "bias", flag(k.bias));
}

pub(super) fn bn_args(c: &BatchNormConfig, prefix: &str, args: &mut Args) {
    push(args, prefix, "features", c.num_features.to_string());
    push(args, prefix, "eps", c.eps.to_string());
    push(
        args,
        prefix,
        "momentum",
        c.momentum.map_or_else(|| "none".into(), |m| m.to_string()),
    );
    push(args, prefix, "affine", flag(c.affine));
    push(args, prefix, "track", flag(c.track_running_stats));
}

/// Arguments of a float or fused layer; `None` for other families.
pub(super) fn describe(m: &dyn Module, args: &mut Args) -> Described {
    match describe_known(m, args) {
        Ok(true) => Some(Ok(())),
        Ok(false) => None,
        Err(e) => Some(Err(e)),
    }
}

/// `Ok(false)` when `m` is not a float or fused layer.
fn describe_known(m: &dyn Module, args: &mut Args) -> Result<bool> {
    {
        macro_rules! get {
            ($t:ty) => {
                concrete::<$t>(m)?
            };
        }
        let args = &mut *args;
        match m.kind() {
            ModuleKind::Linear => linear_args(get!(Linear), "", args),
            ModuleKind::Conv1d => conv1d_args(get!(Conv1d), "", args),
            ModuleKind::Conv2d => conv2d_args(get!(Conv2d), "", args),
            ModuleKind::BatchNorm1d => bn_args(get!(BatchNorm1d).config(), "", args),
            ModuleKind::BatchNorm2d => bn_args(get!(BatchNorm2d).config(), "", args),
            ModuleKind::ReLU
            | ModuleKind::ReLU6
            | ModuleKind::Sigmoid
            | ModuleKind::Tanh
            | ModuleKind::Hardswish
            | ModuleKind::Hardsigmoid
            | ModuleKind::SiLU
            | ModuleKind::Identity => {}
            ModuleKind::Dropout => args.push(("p".into(), get!(Dropout).p().to_string())),
            ModuleKind::MaxPool2d => {
                let (k, s, p, d, ceil) = get!(MaxPool2d).options();
                args.extend([
                    ("kernel".into(), list(&k)),
                    ("stride".into(), list(&s)),
                    ("padding".into(), list(&p)),
                    ("dilation".into(), list(&d)),
                    ("ceil".into(), flag(ceil)),
                ]);
            }
            ModuleKind::AvgPool2d => {
                let (k, s, p, ceil, cip, div) = get!(AvgPool2d).options();
                args.extend([
                    ("kernel".into(), list(&k)),
                    ("stride".into(), list(&s)),
                    ("padding".into(), list(&p)),
                    ("ceil".into(), flag(ceil)),
                    ("count_include_pad".into(), flag(cip)),
                    (
                        "divisor".into(),
                        div.map_or_else(|| "none".into(), |d| d.to_string()),
                    ),
                ]);
            }
            ModuleKind::AdaptiveAvgPool2d => {
                args.push(("size".into(), list(&get!(AdaptiveAvgPool2d).output_size())))
            }
            ModuleKind::ConvReLU1d => conv1d_args(get!(ConvReLU1d).conv(), "conv.", args),
            ModuleKind::ConvReLU2d => conv2d_args(get!(ConvReLU2d).conv(), "conv.", args),
            ModuleKind::ConvBn1d | ModuleKind::ConvBnReLU1d => {
                let (conv, bn) = match m.downcast_ref::<ConvBn1d>() {
                    Some(f) => (f.conv(), f.bn()),
                    None => {
                        let f = get!(ConvBnReLU1d);
                        (f.conv(), f.bn())
                    }
                };
                conv1d_args(conv, "conv.", args);
                bn_args(bn.config(), "bn.", args);
            }
            ModuleKind::ConvBn2d | ModuleKind::ConvBnReLU2d => {
                let (conv, bn) = match m.downcast_ref::<ConvBn2d>() {
                    Some(f) => (f.conv(), f.bn()),
                    None => {
                        let f = get!(ConvBnReLU2d);
                        (f.conv(), f.bn())
                    }
                };
                conv2d_args(conv, "conv.", args);
                bn_args(bn.config(), "bn.", args);
            }
            ModuleKind::LinearReLU => linear_args(get!(LinearReLU).linear(), "linear.", args),
            ModuleKind::LinearBn1d => {
                let f = get!(LinearBn1d);
                linear_args(f.linear(), "linear.", args);
                bn_args(f.bn().config(), "bn.", args);
            }
            ModuleKind::BNReLU2d => bn_args(get!(BNReLU2d).bn().config(), "bn.", args),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl Reader<'_> {
    pub(super) fn linear(&self, p: &str, rng: &mut Rng) -> Result<Linear> {
        let k = |s: &str| format!("{p}{s}");
        Ok(Linear::new(
            self.parse(&k("in"))?,
            self.parse(&k("out"))?,
            self.flag(&k("bias"))?,
            rng,
        ))
    }

    pub(super) fn conv1d(&self, p: &str, rng: &mut Rng) -> Result<Conv1d> {
        let k = |s: &str| format!("{p}{s}");
        let cfg = Conv1dConfig {
            in_channels: self.parse(&k("in"))?,
            out_channels: self.parse(&k("out"))?,
            kernel_size: self.parse(&k("kernel"))?,
            stride: self.parse(&k("stride"))?,
            padding: self.parse(&k("padding"))?,
            dilation: self.parse(&k("dilation"))?,
            groups: self.parse(&k("groups"))?,
            bias: self.flag(&k("bias"))?,
        };
        Ok(Conv1d::new(cfg, rng)?)
    }

    pub(super) fn conv2d(&self, p: &str, rng: &mut Rng) -> Result<Conv2d> {
        let k = |s: &str| format!("{p}{s}");
        let cfg = Conv2dConfig {
            in_channels: self.parse(&k("in"))?,
            out_channels: self.parse(&k("out"))?,
            kernel_size: self.pair(&k("kernel"))?,
            stride: self.pair(&k("stride"))?,
            padding: self.pair(&k("padding"))?,
            dilation: self.pair(&k("dilation"))?,
            groups: self.parse(&k("groups"))?,
            bias: self.flag(&k("bias"))?,
        };
        Ok(Conv2d::new(cfg, rng)?)
    }

    pub(super) fn bn(&self, p: &str) -> Result<BatchNormConfig> {
        let k = |s: &str| format!("{p}{s}");
        Ok(BatchNormConfig {
            num_features: self.parse(&k("features"))?,
            eps: self.parse(&k("eps"))?,
            momentum: self.optional(&k("momentum"))?,
            affine: self.flag(&k("affine"))?,
            track_running_stats: self.flag(&k("track"))?,
        })
    }
}

/// Builds a float or fused layer; `None` for other op names.
pub(super) fn build(op: &str, r: &Reader<'_>, rng: &mut Rng) -> Built {
    build_known(op, r, rng).transpose()
}

fn build_known(op: &str, r: &Reader<'_>, rng: &mut Rng) -> Result<Option<Box<dyn Module>>> {
    {
        let relu = ReLU::new;
        let m: Box<dyn Module> = match op {
            "Linear" => Box::new(r.linear("", rng)?),
            "Conv1d" => Box::new(r.conv1d("", rng)?),
            "Conv2d" => Box::new(r.conv2d("", rng)?),
            "BatchNorm1d" => Box::new(BatchNorm1d::new(r.bn("")?)),
            "BatchNorm2d" => Box::new(BatchNorm2d::new(r.bn("")?)),
            "ReLU" => Box::new(relu()),
            "ReLU6" => Box::new(ReLU6::new()),
            "Sigmoid" => Box::new(Sigmoid::new()),
            "Tanh" => Box::new(Tanh::new()),
            "Hardswish" => Box::new(Hardswish::new()),
            "Hardsigmoid" => Box::new(Hardsigmoid::new()),
            "SiLU" => Box::new(SiLU::new()),
            "Identity" => Box::new(Identity::new()),
            "Dropout" => Box::new(Dropout::new(r.parse("p")?, 0)?),
            "MaxPool2d" => Box::new(MaxPool2d::with_options(
                r.pair("kernel")?,
                r.pair("stride")?,
                r.pair("padding")?,
                r.pair("dilation")?,
                r.flag("ceil")?,
            )?),
            "AvgPool2d" => Box::new(AvgPool2d::with_options(
                r.pair("kernel")?,
                r.pair("stride")?,
                r.pair("padding")?,
                r.flag("ceil")?,
                r.flag("count_include_pad")?,
                r.optional("divisor")?,
            )?),
            "AdaptiveAvgPool2d" => Box::new(AdaptiveAvgPool2d::new(r.pair("size")?)?),
            "ConvReLU1d" => Box::new(ConvReLU1d::new(r.conv1d("conv.", rng)?, relu())),
            "ConvReLU2d" => Box::new(ConvReLU2d::new(r.conv2d("conv.", rng)?, relu())),
            "ConvBn1d" => Box::new(ConvBn1d::new(
                r.conv1d("conv.", rng)?,
                BatchNorm1d::new(r.bn("bn.")?),
            )?),
            "ConvBnReLU1d" => Box::new(ConvBnReLU1d::new(
                r.conv1d("conv.", rng)?,
                BatchNorm1d::new(r.bn("bn.")?),
                relu(),
            )?),
            "ConvBn2d" => Box::new(ConvBn2d::new(
                r.conv2d("conv.", rng)?,
                BatchNorm2d::new(r.bn("bn.")?),
            )?),
            "ConvBnReLU2d" => Box::new(ConvBnReLU2d::new(
                r.conv2d("conv.", rng)?,
                BatchNorm2d::new(r.bn("bn.")?),
                relu(),
            )?),
            "LinearReLU" => Box::new(LinearReLU::new(r.linear("linear.", rng)?, relu())),
            "LinearBn1d" => Box::new(LinearBn1d::new(
                r.linear("linear.", rng)?,
                BatchNorm1d::new(r.bn("bn.")?),
            )?),
            "BNReLU2d" => Box::new(BNReLU2d::new(BatchNorm2d::new(r.bn("bn.")?), relu())),
            _ => return Ok(None),
        };
        Ok(Some(m))
    }
}
