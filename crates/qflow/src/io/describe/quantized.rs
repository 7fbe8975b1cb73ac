//! Static quantized modules ([`qnn::quantized`]): the arguments that fix their shapes (weight
//! shape, per-channel or per-tensor weight, bias, geometry — ConvTranspose2d its whole
//! configuration —, functional op, dtype). The norms are in `quantized_norm.rs`, the embeddings
//! in `quantized_lookup.rs`. Weights,
//! weight qparams, biases and output qparams are state-dict buffers; a layer is built with
//! zero weights and placeholder qparams of the right shapes, the state dict overwrites them and
//! `after_load` validates and repacks the weights for this CPU.

use qnn::qtensor::{QDType, QParams, QTensor, Tensor};
use qnn::quantized::{
    AdaptiveAvgPool2d, AvgPool2d, Conv1d, Conv2d, Conv3d, ConvOptions, ConvReLU1d, ConvReLU2d,
    ConvReLU3d, ConvTranspose2d, DeQuantize, Dropout, ELU, Flatten, FunctionalOp, Hardswish,
    LeakyReLU, Linear, LinearReLU, MaxPool2d, QFunctional, Quantize, ReLU, ReLU6, Sigmoid, Softmax,
    Tanh,
};
use qnn::{Module, ModuleKind};

use super::float_more::{conv_transpose_args, conv_transpose_config};
use super::{Args, Built, Described, Reader, concrete, flag, list, push};
use crate::error::Result;

/// Weight shape, per-channel flag and bias presence of a quantized weighted layer.
fn weight_args(w: &QTensor, bias: bool, args: &mut Args) {
    push(args, "", "weight_shape", list(w.shape()));
    push(
        args,
        "",
        "per_channel",
        flag(matches!(w.qparams(), QParams::PerChannel { .. })),
    );
    push(args, "", "bias", flag(bias));
}

fn conv_args<const N: usize>(o: &ConvOptions<N>, args: &mut Args) {
    push(args, "", "stride", list(&o.stride));
    push(args, "", "padding", list(&o.padding));
    push(args, "", "dilation", list(&o.dilation));
    push(args, "", "groups", o.groups);
}

/// Arguments of a static quantized module; `None` for other modules.
pub(super) fn describe(m: &dyn Module, args: &mut Args) -> Described {
    match describe_known(m, args) {
        Ok(true) => Some(Ok(())),
        Ok(false) => None,
        Err(e) => Some(Err(e)),
    }
}

fn describe_known(m: &dyn Module, args: &mut Args) -> Result<bool> {
    macro_rules! weighted {
        ($t:ty) => {{
            let l = concrete::<$t>(m)?;
            weight_args(&l.weight()?, l.bias().is_some(), args);
            l
        }};
    }
    match m.kind() {
        ModuleKind::Quantize => push(
            args,
            "",
            "dtype",
            format!("{:?}", concrete::<Quantize>(m)?.dtype()),
        ),
        ModuleKind::DeQuantize
        | ModuleKind::QuantizedReLU
        | ModuleKind::QuantizedReLU6
        | ModuleKind::QuantizedSigmoid
        | ModuleKind::QuantizedTanh
        | ModuleKind::QuantizedHardswish => {}
        ModuleKind::QuantizedLeakyReLU => {
            push(
                args,
                "",
                "slope",
                concrete::<LeakyReLU>(m)?.negative_slope(),
            );
        }
        ModuleKind::QuantizedElu => push(args, "", "alpha", concrete::<ELU>(m)?.alpha()),
        ModuleKind::QuantizedLinear => {
            weighted!(Linear);
        }
        ModuleKind::QuantizedLinearReLU => {
            weighted!(LinearReLU);
        }
        ModuleKind::QuantizedConv1d => conv_args(&weighted!(Conv1d).options(), args),
        ModuleKind::QuantizedConvReLU1d => conv_args(&weighted!(ConvReLU1d).options(), args),
        ModuleKind::QuantizedConv2d => conv_args(&weighted!(Conv2d).options(), args),
        ModuleKind::QuantizedConvReLU2d => conv_args(&weighted!(ConvReLU2d).options(), args),
        ModuleKind::QuantizedConv3d => conv_args(&weighted!(Conv3d).options(), args),
        ModuleKind::QuantizedConvReLU3d => conv_args(&weighted!(ConvReLU3d).options(), args),
        ModuleKind::QuantizedConvTranspose2d => {
            conv_transpose_args(concrete::<ConvTranspose2d>(m)?.config(), args)
        }
        ModuleKind::QuantizedMaxPool2d => {
            let pool = concrete::<MaxPool2d>(m)?;
            let (k, s, p, d) = pool.options();
            for (key, v) in [
                ("kernel", k),
                ("stride", s),
                ("padding", p),
                ("dilation", d),
            ] {
                push(args, "", key, list(&v));
            }
            if pool.ceil_mode() {
                push(args, "", "ceil", flag(true));
            }
        }
        ModuleKind::QuantizedAvgPool2d => {
            let pool = concrete::<AvgPool2d>(m)?;
            let (k, s, pad, cip, div) = pool.options();
            for (key, v) in [("kernel", k), ("stride", s), ("padding", pad)] {
                push(args, "", key, list(&v));
            }
            if pool.ceil_mode() {
                push(args, "", "ceil", flag(true));
            }
            push(args, "", "count_include_pad", flag(cip));
            push(
                args,
                "",
                "divisor",
                div.map_or_else(|| "none".into(), |d| d.to_string()),
            );
        }
        ModuleKind::QuantizedAdaptiveAvgPool2d => push(
            args,
            "",
            "size",
            list(&concrete::<AdaptiveAvgPool2d>(m)?.output_size()),
        ),
        ModuleKind::QuantizedFlatten => {
            let (s, e) = concrete::<Flatten>(m)?.dims();
            push(args, "", "start", s);
            push(args, "", "end", e);
        }
        ModuleKind::QuantizedDropout => push(args, "", "p", concrete::<Dropout>(m)?.p()),
        ModuleKind::QuantizedSoftmax => push(args, "", "dim", concrete::<Softmax>(m)?.dim()),
        ModuleKind::QFunctional => {
            let op = concrete::<QFunctional>(m)?.op();
            let name = match op {
                FunctionalOp::Add => "add".to_string(),
                FunctionalOp::AddRelu => "add_relu".into(),
                FunctionalOp::Mul => "mul".into(),
                FunctionalOp::Matmul => "matmul".into(),
                FunctionalOp::Cat { dim } => format!("cat:{dim}"),
                FunctionalOp::AddScalar(v) => format!("add_scalar:{v}"),
                FunctionalOp::MulScalar(v) => format!("mul_scalar:{v}"),
            };
            push(args, "", "op", name);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Placeholder weight qparams: one scale / zero point, or one per output channel.
fn placeholder_qparams(per_channel: bool, out: usize) -> QParams {
    if per_channel {
        QParams::PerChannel {
            scales: vec![1.0; out],
            zero_points: vec![0; out],
            axis: 0,
        }
    } else {
        QParams::PerTensor {
            scale: 1.0,
            zero_point: 0,
        }
    }
}

/// Zero weight, optional zero bias and placeholder qparams from the arguments.
fn weights(r: &Reader<'_>) -> Result<(Tensor<f32>, Option<Tensor<f32>>, QParams)> {
    let shape: Vec<usize> = r.list("weight_shape")?;
    let out = *shape.first().ok_or_else(|| r.bad("weight_shape"))?;
    let bias = r.flag("bias")?.then(|| Tensor::zeros(&[out]));
    let q = placeholder_qparams(r.flag("per_channel")?, out);
    Ok((Tensor::zeros(&shape), bias, q))
}

impl Reader<'_> {
    fn conv_options<const N: usize>(&self) -> Result<ConvOptions<N>> {
        Ok(ConvOptions {
            stride: self.array("stride")?,
            padding: self.array("padding")?,
            dilation: self.array("dilation")?,
            groups: self.parse("groups")?,
        })
    }

    fn qfunctional_op(&self) -> Result<FunctionalOp> {
        let raw = self.raw("op")?;
        let (name, value) = raw.split_once(':').unwrap_or((raw, ""));
        Ok(match name {
            "add" => FunctionalOp::Add,
            "add_relu" => FunctionalOp::AddRelu,
            "mul" => FunctionalOp::Mul,
            "matmul" => FunctionalOp::Matmul,
            "cat" => FunctionalOp::Cat {
                dim: value.parse().map_err(|_| self.bad("op"))?,
            },
            "add_scalar" => FunctionalOp::AddScalar(value.parse().map_err(|_| self.bad("op"))?),
            "mul_scalar" => FunctionalOp::MulScalar(value.parse().map_err(|_| self.bad("op"))?),
            _ => return Err(self.bad("op")),
        })
    }
}

/// Builds a static quantized module; `None` for other op names.
pub(super) fn build(op: &str, r: &Reader<'_>) -> Built {
    build_known(op, r).transpose()
}

fn build_known(op: &str, r: &Reader<'_>) -> Result<Option<Box<dyn Module>>> {
    macro_rules! linear {
        ($t:ty) => {{
            let (w, b, q) = weights(r)?;
            Box::new(<$t>::from_weights(&w, b.as_ref(), &q, 1.0, 0)?)
        }};
    }
    macro_rules! conv {
        ($t:ty) => {{
            let (w, b, q) = weights(r)?;
            Box::new(<$t>::from_weights(
                &w,
                b.as_ref(),
                r.conv_options()?,
                &q,
                1.0,
                0,
            )?)
        }};
    }
    let m: Box<dyn Module> = match op {
        "Quantize" => {
            let dtype = match r.raw("dtype")? {
                "QUInt8" => QDType::QUInt8,
                "QInt8" => QDType::QInt8,
                _ => return Err(r.bad("dtype")),
            };
            Box::new(Quantize::new(1.0, 0, dtype)?)
        }
        "DeQuantize" => Box::new(DeQuantize::new()),
        "QuantizedLinear" => linear!(Linear),
        "QuantizedLinearReLU" => linear!(LinearReLU),
        "QuantizedConv1d" => conv!(Conv1d),
        "QuantizedConvReLU1d" => conv!(ConvReLU1d),
        "QuantizedConv2d" => conv!(Conv2d),
        "QuantizedConvReLU2d" => conv!(ConvReLU2d),
        "QuantizedConv3d" => conv!(Conv3d),
        "QuantizedConvReLU3d" => conv!(ConvReLU3d),
        "QuantizedConvTranspose2d" => {
            let config = conv_transpose_config(r)?;
            let w = Tensor::zeros(&config.weight_shape());
            let b = config.bias.then(|| Tensor::zeros(&[config.out_channels]));
            let q = placeholder_qparams(false, 1);
            Box::new(ConvTranspose2d::from_weights(
                config,
                &w,
                b.as_ref(),
                &q,
                1.0,
                0,
            )?)
        }
        "QuantizedReLU" => Box::new(ReLU::new()),
        "QuantizedReLU6" => Box::new(ReLU6::new()),
        "QuantizedSigmoid" => Box::new(Sigmoid::new()),
        "QuantizedTanh" => Box::new(Tanh::new()),
        "QuantizedHardswish" => Box::new(Hardswish::new(1.0, 0)?),
        "QuantizedLeakyReLU" => Box::new(LeakyReLU::new(1.0, 0, r.parse("slope")?)?),
        "QuantizedElu" => Box::new(ELU::new(1.0, 0, r.parse("alpha")?)?),
        "QuantizedMaxPool2d" => Box::new(MaxPool2d::new(
            r.pair("kernel")?,
            r.pair("stride")?,
            r.pair("padding")?,
            r.pair("dilation")?,
            r.has("ceil") && r.flag("ceil")?,
        )?),
        "QuantizedAvgPool2d" => Box::new(AvgPool2d::new(
            r.pair("kernel")?,
            r.pair("stride")?,
            r.pair("padding")?,
            r.has("ceil") && r.flag("ceil")?,
            r.flag("count_include_pad")?,
            r.optional("divisor")?,
        )?),
        "QuantizedAdaptiveAvgPool2d" => Box::new(AdaptiveAvgPool2d::new(r.pair("size")?)?),
        "QuantizedFlatten" => Box::new(Flatten::new(r.parse("start")?, r.parse("end")?)),
        "QuantizedDropout" => Box::new(Dropout::new(r.parse("p")?)),
        "QuantizedSoftmax" => Box::new(Softmax::new(r.parse("dim")?, 1.0, 0)?),
        "QFunctional" => Box::new(QFunctional::new(r.qfunctional_op()?, 1.0, 0)?),
        _ => return Ok(None),
    };
    Ok(Some(m))
}
