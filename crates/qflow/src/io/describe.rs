//! Layer descriptions for the graph file: each supported op as a name plus `key=value`
//! constructor arguments, and back.

use std::collections::HashMap;
use std::str::FromStr;

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
use qnn::{Module, ModuleKind};

use crate::error::{QflowError, Result};
use crate::graph::{FunctionalOp, Graph, Node, Op};

type Args = Vec<(String, String)>;

fn fmt_err(msg: impl Into<String>) -> QflowError {
    QflowError::Format(msg.into())
}

fn list<T: ToString>(v: &[T]) -> String {
    v.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}

fn flag(b: bool) -> String {
    u8::from(b).to_string()
}

fn push(args: &mut Args, prefix: &str, key: &str, value: String) {
    args.push((format!("{prefix}{key}"), value));
}

fn linear_args(l: &Linear, prefix: &str, args: &mut Args) {
    push(args, prefix, "in", l.in_features().to_string());
    push(args, prefix, "out", l.out_features().to_string());
    push(args, prefix, "bias", flag(l.bias.is_some()));
    push(args, prefix, "half", flag(l.weight_f16().is_some()));
}

fn conv1d_args(c: &Conv1d, prefix: &str, args: &mut Args) {
    let k = c.config();
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
    push(args, prefix, "half", flag(c.weight_f16().is_some()));
}

fn conv2d_args(c: &Conv2d, prefix: &str, args: &mut Args) {
    let k = c.config();
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
    push(args, prefix, "half", flag(c.weight_f16().is_some()));
}

fn bn_args(c: &BatchNormConfig, prefix: &str, args: &mut Args) {
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

/// `(op name, arguments)` of a node; unsupported modules are a `Format` error naming it.
pub(crate) fn describe_op(node: &Node) -> Result<(String, Args)> {
    let mut args = Args::new();
    let m = match node.op() {
        Op::Functional(f) => {
            match f.op() {
                FunctionalOp::AddScalar(v) | FunctionalOp::MulScalar(v) => {
                    args.push(("value".into(), v.to_string()))
                }
                FunctionalOp::Cat { dim } => args.push(("dim".into(), dim.to_string())),
                FunctionalOp::Flatten { start_dim, end_dim } => {
                    args.push(("start".into(), start_dim.to_string()));
                    args.push(("end".into(), end_dim.to_string()));
                }
                FunctionalOp::Reshape(s) => args.push(("shape".into(), list(s))),
                FunctionalOp::GetItem(i) => args.push(("index".into(), i.to_string())),
                _ => {}
            }
            return Ok((format!("functional.{}", f.op().name()), args));
        }
        Op::Module(m) => m.as_ref(),
    };
    let kind = m.kind();
    let unsupported = || {
        fmt_err(format!(
            "cannot save node `{}`: module kind {kind:?} is not supported by qflow::io yet",
            node.name()
        ))
    };
    macro_rules! get {
        ($t:ty) => {
            m.downcast_ref::<$t>().ok_or_else(unsupported)?
        };
    }
    match kind {
        ModuleKind::Linear => linear_args(get!(Linear), "", &mut args),
        ModuleKind::Conv1d => conv1d_args(get!(Conv1d), "", &mut args),
        ModuleKind::Conv2d => conv2d_args(get!(Conv2d), "", &mut args),
        ModuleKind::BatchNorm1d => bn_args(get!(BatchNorm1d).config(), "", &mut args),
        ModuleKind::BatchNorm2d => bn_args(get!(BatchNorm2d).config(), "", &mut args),
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
        ModuleKind::ConvReLU1d => conv1d_args(get!(ConvReLU1d).conv(), "conv.", &mut args),
        ModuleKind::ConvReLU2d => conv2d_args(get!(ConvReLU2d).conv(), "conv.", &mut args),
        ModuleKind::ConvBn1d | ModuleKind::ConvBnReLU1d => {
            let (conv, bn) = match m.downcast_ref::<ConvBn1d>() {
                Some(f) => (f.conv(), f.bn()),
                None => {
                    let f = get!(ConvBnReLU1d);
                    (f.conv(), f.bn())
                }
            };
            conv1d_args(conv, "conv.", &mut args);
            bn_args(bn.config(), "bn.", &mut args);
        }
        ModuleKind::ConvBn2d | ModuleKind::ConvBnReLU2d => {
            let (conv, bn) = match m.downcast_ref::<ConvBn2d>() {
                Some(f) => (f.conv(), f.bn()),
                None => {
                    let f = get!(ConvBnReLU2d);
                    (f.conv(), f.bn())
                }
            };
            conv2d_args(conv, "conv.", &mut args);
            bn_args(bn.config(), "bn.", &mut args);
        }
        ModuleKind::LinearReLU => linear_args(get!(LinearReLU).linear(), "linear.", &mut args),
        ModuleKind::LinearBn1d => {
            let f = get!(LinearBn1d);
            linear_args(f.linear(), "linear.", &mut args);
            bn_args(f.bn().config(), "bn.", &mut args);
        }
        ModuleKind::BNReLU2d => bn_args(get!(BNReLU2d).bn().config(), "bn.", &mut args),
        _ => return Err(unsupported()),
    }
    args.push(("train".into(), flag(m.is_training())));
    Ok((format!("{kind:?}"), args))
}

/// Typed access to the `key=value` arguments of one node line.
struct Reader<'a> {
    node: &'a str,
    args: &'a HashMap<String, String>,
}

impl Reader<'_> {
    fn raw(&self, key: &str) -> Result<&str> {
        self.args
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| fmt_err(format!("node `{}`: missing argument `{key}`", self.node)))
    }

    fn parse<T: FromStr>(&self, key: &str) -> Result<T> {
        let v = self.raw(key)?;
        v.parse()
            .map_err(|_| fmt_err(format!("node `{}`: bad value `{key}={v}`", self.node)))
    }

    fn flag(&self, key: &str) -> Result<bool> {
        Ok(self.parse::<u8>(key)? != 0)
    }

    fn list<T: FromStr>(&self, key: &str) -> Result<Vec<T>> {
        let v = self.raw(key)?;
        if v.is_empty() {
            return Ok(Vec::new());
        }
        v.split(',')
            .map(|x| {
                x.parse()
                    .map_err(|_| fmt_err(format!("node `{}`: bad value `{key}={v}`", self.node)))
            })
            .collect()
    }

    fn pair(&self, key: &str) -> Result<[usize; 2]> {
        match self.list::<usize>(key)?[..] {
            [a, b] => Ok([a, b]),
            _ => Err(fmt_err(format!(
                "node `{}`: `{key}` needs two values",
                self.node
            ))),
        }
    }

    fn optional<T: FromStr>(&self, key: &str) -> Result<Option<T>> {
        if self.raw(key)? == "none" {
            Ok(None)
        } else {
            self.parse(key).map(Some)
        }
    }

    fn linear(&self, p: &str, rng: &mut Rng) -> Result<Linear> {
        let k = |s: &str| format!("{p}{s}");
        Ok(Linear::new(
            self.parse(&k("in"))?,
            self.parse(&k("out"))?,
            self.flag(&k("bias"))?,
            rng,
        ))
    }

    fn conv1d(&self, p: &str, rng: &mut Rng) -> Result<Conv1d> {
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

    fn conv2d(&self, p: &str, rng: &mut Rng) -> Result<Conv2d> {
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

    fn bn(&self, p: &str) -> Result<BatchNormConfig> {
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

/// Builds the op a node line describes, with fresh parameters (the state dict fills them).
pub(super) fn build_op(node: &str, op: &str, args: &HashMap<String, String>) -> Result<Op> {
    let r = Reader { node, args };
    let rng = &mut Rng::new(0);
    if let Some(f) = op.strip_prefix("functional.") {
        let fop = match f {
            "add" => FunctionalOp::Add,
            "add_relu" => FunctionalOp::AddRelu,
            "mul" => FunctionalOp::Mul,
            "matmul" => FunctionalOp::Matmul,
            "add_scalar" => FunctionalOp::AddScalar(r.parse("value")?),
            "mul_scalar" => FunctionalOp::MulScalar(r.parse("value")?),
            "cat" => FunctionalOp::Cat {
                dim: r.parse("dim")?,
            },
            "flatten" => FunctionalOp::Flatten {
                start_dim: r.parse("start")?,
                end_dim: r.parse("end")?,
            },
            "reshape" => FunctionalOp::Reshape(r.list("shape")?),
            "getitem" => FunctionalOp::GetItem(r.parse("index")?),
            other => {
                return Err(fmt_err(format!(
                    "node `{node}`: unknown functional op `{other}`"
                )));
            }
        };
        return Ok(Op::functional(fop));
    }
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
        other => {
            return Err(fmt_err(format!(
                "node `{node}`: unknown module kind `{other}`"
            )));
        }
    };
    Ok(Op::Module(m))
}

/// After the state dict is loaded: each module's train/eval mode, and `half()` where the saved
/// layer was halved.
pub(super) fn restore_modes(graph: &mut Graph, text: &str) -> Result<()> {
    let mut any_training = false;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("node") {
            continue;
        }
        let Some(name) = words.next() else { continue };
        let args: HashMap<&str, &str> = words.skip(2).filter_map(|w| w.split_once('=')).collect();
        let Some(m) = graph.node_mut(name).and_then(|n| n.module_mut()) else {
            continue;
        };
        let training = args.get("train") == Some(&"1");
        any_training |= training;
        m.train(training);
        if args.iter().any(|(k, v)| k.ends_with("half") && *v == "1") {
            m.half()?;
        }
    }
    graph.set_training_flag(any_training);
    Ok(())
}
