//! The float layers beyond `float.rs`'s conv / linear / batch-norm family: LeakyReLU, ELU,
//! GELU, Softmax, LogSoftmax, Flatten, LayerNorm, GroupNorm, InstanceNorm2d, ConvTranspose2d,
//! Embedding, EmbeddingBag, the RNN / LSTM / GRU cells and the recurrent layers. Constructor
//! arguments (eps as written by Rust's shortest round-trip form, so it comes back bit for bit),
//! and `half=1` for layers whose weights are stored as f16 (halved again after loading).

use qnn::float::{
    BagMode, ConvTranspose2d, ConvTranspose2dConfig, Elu, Embedding, EmbeddingBag, GRUCell, Gelu,
    GroupNorm, Gru, InstanceNorm2d, LSTMCell, LayerNorm, LeakyReLU, LogSoftmax, Lstm, RNNCell, Rnn,
    Softmax,
};
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::repr::TensorDType;
use qnn::{Module, ModuleKind};

use super::dynamic::{recurrent_args, recurrent_config};
use super::{Args, Built, Described, Reader, concrete, flag, list, push};
use crate::error::Result;

/// The parameter names of `m`.
fn param_names(m: &dyn Module) -> Vec<String> {
    let mut names = Vec::new();
    m.visit_params(&mut |n, _| names.push(n.to_string()));
    names
}

/// True when some parameter is stored as f16 (after `half()`).
fn halved(m: &dyn Module) -> bool {
    param_names(m)
        .iter()
        .any(|n| matches!(m.param_dtype(n), Some(TensorDType::F16)))
}

/// The shape of parameter `name` (as visited: the real shape, also after `half()`).
fn param_shape(m: &dyn Module, name: &str) -> Vec<usize> {
    let mut shape = Vec::new();
    m.visit_params(&mut |n, p| {
        if n == name {
            shape = p.shape().to_vec();
        }
    });
    shape
}

fn has_param(m: &dyn Module, name: &str) -> bool {
    param_names(m).iter().any(|n| n == name)
}

fn table_args(m: &dyn Module, args: &mut Args) {
    let shape = param_shape(m, "weight");
    push(args, "", "num", shape.first().copied().unwrap_or(0));
    push(args, "", "dim", shape.get(1).copied().unwrap_or(0));
}

fn cell_args(m: &dyn Module, (input, hidden): (usize, usize), args: &mut Args) {
    push(args, "", "input", input);
    push(args, "", "hidden", hidden);
    push(args, "", "bias", flag(has_param(m, "bias_ih")));
}

/// A ConvTranspose2d's configuration as arguments (float and quantized layers share it).
pub(super) fn conv_transpose_args(c: &ConvTranspose2dConfig, args: &mut Args) {
    push(args, "", "in", c.in_channels);
    push(args, "", "out", c.out_channels);
    for (key, v) in [
        ("kernel", c.kernel_size),
        ("stride", c.stride),
        ("padding", c.padding),
        ("output_padding", c.output_padding),
        ("dilation", c.dilation),
    ] {
        push(args, "", key, list(&v));
    }
    push(args, "", "groups", c.groups);
    push(args, "", "bias", flag(c.bias));
}

/// The configuration [`conv_transpose_args`] wrote.
pub(super) fn conv_transpose_config(r: &Reader<'_>) -> Result<ConvTranspose2dConfig> {
    Ok(ConvTranspose2dConfig {
        in_channels: r.parse("in")?,
        out_channels: r.parse("out")?,
        kernel_size: r.pair("kernel")?,
        stride: r.pair("stride")?,
        padding: r.pair("padding")?,
        output_padding: r.pair("output_padding")?,
        dilation: r.pair("dilation")?,
        groups: r.parse("groups")?,
        bias: r.flag("bias")?,
    })
}

/// Arguments of one of this file's layers; `None` for other modules.
pub(super) fn describe(m: &dyn Module, args: &mut Args) -> Described {
    let result = match m.kind() {
        ModuleKind::LeakyReLU => {
            concrete::<LeakyReLU>(m).map(|l| push(args, "", "slope", l.function().negative_slope))
        }
        ModuleKind::Elu => concrete::<Elu>(m).map(|l| push(args, "", "alpha", l.function().alpha)),
        ModuleKind::Gelu => concrete::<Gelu>(m).map(|_| ()),
        ModuleKind::Softmax => concrete::<Softmax>(m).map(|l| push(args, "", "dim", l.dim())),
        ModuleKind::LogSoftmax => concrete::<LogSoftmax>(m).map(|l| push(args, "", "dim", l.dim())),
        ModuleKind::Flatten => concrete::<qnn::float::Flatten>(m).map(|l| {
            let (s, e) = l.dims();
            push(args, "", "start", s);
            push(args, "", "end", e);
        }),
        ModuleKind::LayerNorm => concrete::<LayerNorm>(m).map(|l| {
            push(args, "", "shape", list(l.normalized_shape()));
            push(args, "", "eps", l.eps());
            push(args, "", "affine", flag(l.weight.is_some()));
        }),
        ModuleKind::GroupNorm => concrete::<GroupNorm>(m).map(|l| {
            push(args, "", "groups", l.num_groups());
            push(args, "", "channels", l.num_channels());
            push(args, "", "eps", l.eps());
            push(args, "", "affine", flag(has_param(m, "weight")));
        }),
        ModuleKind::InstanceNorm2d => concrete::<InstanceNorm2d>(m).map(|l| {
            push(args, "", "features", l.num_features());
            push(args, "", "eps", l.eps());
            push(args, "", "affine", flag(l.weight().is_some()));
        }),
        ModuleKind::ConvTranspose2d => {
            concrete::<ConvTranspose2d>(m).map(|l| conv_transpose_args(l.config(), args))
        }
        ModuleKind::Embedding => concrete::<Embedding>(m).map(|l| {
            table_args(m, args);
            let p = l.padding_idx();
            push(
                args,
                "",
                "padding_idx",
                p.map_or_else(|| "none".into(), |p| p.to_string()),
            );
        }),
        ModuleKind::EmbeddingBag => concrete::<EmbeddingBag>(m).map(|l| {
            table_args(m, args);
            push(args, "", "mode", format!("{:?}", l.mode()));
        }),
        ModuleKind::RNNCell => concrete::<RNNCell>(m).map(|c| {
            cell_args(m, c.sizes(), args);
            push(args, "", "relu", flag(c.is_relu()));
        }),
        ModuleKind::LSTMCell => concrete::<LSTMCell>(m).map(|c| cell_args(m, c.sizes(), args)),
        ModuleKind::GRUCell => concrete::<GRUCell>(m).map(|c| cell_args(m, c.sizes(), args)),
        ModuleKind::Rnn => concrete::<Rnn>(m).map(|l| recurrent_args(l.config(), args)),
        ModuleKind::Lstm => concrete::<Lstm>(m).map(|l| recurrent_args(l.config(), args)),
        ModuleKind::Gru => concrete::<Gru>(m).map(|l| recurrent_args(l.config(), args)),
        _ => return None,
    };
    if result.is_ok()
        && matches!(
            m.kind(),
            ModuleKind::ConvTranspose2d
                | ModuleKind::Embedding
                | ModuleKind::EmbeddingBag
                | ModuleKind::RNNCell
                | ModuleKind::LSTMCell
                | ModuleKind::GRUCell
                | ModuleKind::Rnn
                | ModuleKind::Lstm
                | ModuleKind::Gru
        )
    {
        push(args, "", "half", flag(halved(m)));
    }
    Some(result)
}

/// A zero `[num, dim]` table (the state dict fills it).
fn zero_table(r: &Reader<'_>) -> Result<Tensor<f32>> {
    let (num, dim): (usize, usize) = (r.parse("num")?, r.parse("dim")?);
    // Sizes no allocation can hold are errors here, not capacity-overflow panics below.
    num.checked_mul(dim)
        .filter(|&n| n <= isize::MAX as usize / 8)
        .ok_or_else(|| r.bad("dim"))?;
    Ok(Tensor::zeros(&[num, dim]))
}

/// Builds one of this file's layers; `None` for other op names.
pub(super) fn build(op: &str, r: &Reader<'_>, rng: &mut Rng) -> Built {
    build_known(op, r, rng).transpose()
}

fn build_known(op: &str, r: &Reader<'_>, rng: &mut Rng) -> Result<Option<Box<dyn Module>>> {
    let cell = |r: &Reader<'_>| -> Result<(usize, usize, bool)> {
        Ok((r.parse("input")?, r.parse("hidden")?, r.flag("bias")?))
    };
    let m: Box<dyn Module> = match op {
        "LeakyReLU" => Box::new(LeakyReLU::new(r.parse("slope")?)),
        "Elu" => Box::new(Elu::new(r.parse("alpha")?)),
        "Gelu" => Box::new(Gelu::new()),
        "Softmax" => Box::new(Softmax::new(r.parse("dim")?)),
        "LogSoftmax" => Box::new(LogSoftmax::new(r.parse("dim")?)),
        "Flatten" => Box::new(qnn::float::Flatten::new(r.parse("start")?, r.parse("end")?)),
        "LayerNorm" => Box::new(LayerNorm::new(
            &r.list::<usize>("shape")?,
            r.parse("eps")?,
            r.flag("affine")?,
        )),
        "GroupNorm" => Box::new(GroupNorm::new(
            r.parse("groups")?,
            r.parse("channels")?,
            r.parse("eps")?,
            r.flag("affine")?,
        )?),
        "InstanceNorm2d" => Box::new(InstanceNorm2d::new(
            r.parse("features")?,
            r.parse("eps")?,
            r.flag("affine")?,
        )?),
        "ConvTranspose2d" => Box::new(ConvTranspose2d::new(conv_transpose_config(r)?, rng)?),
        "Embedding" => Box::new(Embedding::from_tensor(
            zero_table(r)?,
            r.optional("padding_idx")?,
        )?),
        "EmbeddingBag" => {
            let mode = match r.raw("mode")? {
                "Sum" => BagMode::Sum,
                "Mean" => BagMode::Mean,
                "Max" => BagMode::Max,
                _ => return Err(r.bad("mode")),
            };
            Box::new(EmbeddingBag::from_tensor(zero_table(r)?, mode)?)
        }
        "RNNCell" => {
            let (i, h, b) = cell(r)?;
            if r.flag("relu")? {
                Box::new(RNNCell::new_relu(i, h, b, rng))
            } else {
                Box::new(RNNCell::new(i, h, b, rng))
            }
        }
        "LSTMCell" => {
            let (i, h, b) = cell(r)?;
            Box::new(LSTMCell::new(i, h, b, rng))
        }
        "GRUCell" => {
            let (i, h, b) = cell(r)?;
            Box::new(GRUCell::new(i, h, b, rng))
        }
        "Rnn" => Box::new(Rnn::new(recurrent_config(r)?, rng)?),
        "Lstm" => Box::new(Lstm::new(recurrent_config(r)?, rng)?),
        "Gru" => Box::new(Gru::new(recurrent_config(r)?, rng)?),
        _ => return Ok(None),
    };
    Ok(Some(m))
}
