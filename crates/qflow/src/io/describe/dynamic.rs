//! Dynamic quantized modules ([`qnn::dynamic`]): Linear, LinearReLU, LSTM, GRU, LSTMCell,
//! GRUCell and RNNCell (`relu=1` for the ReLU nonlinearity), qint8 (per-tensor or per-channel)
//! or f16. The arguments fix the shapes and the weight storage (`dtype=qint8|fp16`,
//! `per_channel`); the weights, their qparams and the biases are state-dict buffers. A layer is
//! built from a placeholder float layer of the same shape, the state dict overwrites its weights
//! and qparams, and `after_load` repacks them for this CPU.

use qnn::dynamic::{self, WeightDType};
use qnn::float::{self, RecurrentConfig};
use qnn::init::Rng;
use qnn::param::BufferRef;
use qnn::qtensor::{QParams, Tensor};
use qnn::{Module, ModuleKind};

use super::{Args, Built, Described, Reader, concrete, flag, fmt_err, push};
use crate::error::Result;

/// Whether any `<weight>_axis` buffer says per-channel (axis 0).
fn per_channel(m: &dyn Module) -> bool {
    let mut any = false;
    m.visit_buffers(&mut |name, b| {
        if name.ends_with("_axis") {
            match b {
                BufferRef::I64(&axis) => any |= axis == 0,
                BufferRef::I64s(v) => any |= v.contains(&0),
                _ => {}
            }
        }
    });
    any
}

fn storage_args(m: &dyn Module, dtype: WeightDType, args: &mut Args) {
    let d = match dtype {
        WeightDType::QInt8 => "qint8",
        WeightDType::Float16 => "fp16",
    };
    push(args, "", "dtype", d);
    push(args, "", "per_channel", flag(per_channel(m)));
}

pub(super) fn recurrent_args(c: &RecurrentConfig, args: &mut Args) {
    push(args, "", "input", c.input_size);
    push(args, "", "hidden", c.hidden_size);
    push(args, "", "layers", c.num_layers);
    push(args, "", "bias", flag(c.bias));
    push(args, "", "batch_first", flag(c.batch_first));
    push(args, "", "bidirectional", flag(c.bidirectional));
}

/// Arguments of a dynamic module; `None` for other modules.
pub(super) fn describe(m: &dyn Module, args: &mut Args) -> Described {
    let result = match m.kind() {
        ModuleKind::DynamicLinear => concrete::<dynamic::Linear>(m).map(|l| {
            linear_args(l.in_features(), l.out_features(), l.bias().is_some(), args);
            storage_args(m, l.weight_dtype(), args);
        }),
        ModuleKind::DynamicLinearReLU => concrete::<dynamic::LinearReLU>(m).map(|l| {
            linear_args(l.in_features(), l.out_features(), l.bias().is_some(), args);
            storage_args(m, l.weight_dtype(), args);
        }),
        ModuleKind::DynamicLstm => concrete::<dynamic::Lstm>(m).map(|l| {
            recurrent_args(l.config(), args);
            storage_args(m, l.weight_dtype(), args);
        }),
        ModuleKind::DynamicGru => concrete::<dynamic::Gru>(m).map(|l| {
            recurrent_args(l.config(), args);
            storage_args(m, l.weight_dtype(), args);
        }),
        ModuleKind::DynamicLSTMCell => concrete::<dynamic::LSTMCell>(m).map(|c| {
            cell_args(m, c.sizes(), args);
            storage_args(m, c.weight_dtype(), args);
        }),
        ModuleKind::DynamicGRUCell => concrete::<dynamic::GRUCell>(m).map(|c| {
            cell_args(m, c.sizes(), args);
            storage_args(m, c.weight_dtype(), args);
        }),
        ModuleKind::DynamicRNNCell => concrete::<dynamic::RNNCell>(m).map(|c| {
            cell_args(m, c.sizes(), args);
            push(args, "", "relu", flag(c.is_relu()));
            storage_args(m, c.weight_dtype(), args);
        }),
        _ => return None,
    };
    Some(result)
}

fn linear_args(input: usize, output: usize, bias: bool, args: &mut Args) {
    push(args, "", "in", input);
    push(args, "", "out", output);
    push(args, "", "bias", flag(bias));
}

fn cell_args(m: &dyn Module, (input, hidden): (usize, usize), args: &mut Args) {
    let mut bias = false;
    m.visit_buffers(&mut |name, _| bias |= name == "bias_ih");
    push(args, "", "input", input);
    push(args, "", "hidden", hidden);
    push(args, "", "bias", flag(bias));
}

/// Placeholder qparams for a weight of `rows` output channels (the state dict replaces them).
fn placeholder_qparams(rows: usize, per_channel: bool) -> QParams {
    if per_channel {
        QParams::PerChannel {
            scales: vec![1.0; rows],
            zero_points: vec![0; rows],
            axis: 0,
        }
    } else {
        QParams::PerTensor {
            scale: 1.0,
            zero_point: 0,
        }
    }
}

/// `true` for qint8 storage, `false` for f16; an unknown name is a `Format` error.
fn is_qint8(r: &Reader<'_>) -> Result<bool> {
    match r.raw("dtype")? {
        "qint8" => Ok(true),
        "fp16" => Ok(false),
        _ => Err(r.bad("dtype")),
    }
}

pub(super) fn recurrent_config(r: &Reader<'_>) -> Result<RecurrentConfig> {
    Ok(RecurrentConfig {
        num_layers: r.parse("layers")?,
        bias: r.flag("bias")?,
        batch_first: r.flag("batch_first")?,
        bidirectional: r.flag("bidirectional")?,
        ..RecurrentConfig::new(r.parse("input")?, r.parse("hidden")?)
    })
}

/// Builds a dynamic module from its arguments, with placeholder weights of the right shapes.
pub(super) fn build(op: &str, r: &Reader<'_>, rng: &mut Rng) -> Built {
    let kind = match op {
        "DynamicLinear" | "DynamicLinearReLU" | "DynamicLstm" | "DynamicGru"
        | "DynamicLSTMCell" | "DynamicGRUCell" | "DynamicRNNCell" => op,
        _ => return None,
    };
    Some(build_known(kind, r, rng))
}

fn build_known(kind: &str, r: &Reader<'_>, rng: &mut Rng) -> Result<Box<dyn Module>> {
    let qint8 = is_qint8(r)?;
    let pc = r.flag("per_channel")?;
    let mut qparams = |_: &str, w: &Tensor<f32>| {
        Ok(placeholder_qparams(
            w.shape().first().copied().unwrap_or(0),
            pc,
        ))
    };
    let module: Box<dyn Module> = match kind {
        "DynamicLinear" | "DynamicLinearReLU" => {
            let (input, output) = (r.parse("in")?, r.parse("out")?);
            let float = float::Linear::new(input, output, r.flag("bias")?, rng);
            let q = placeholder_qparams(output, pc);
            match (kind, qint8) {
                ("DynamicLinear", true) => Box::new(dynamic::Linear::from_float(&float, &q)?),
                ("DynamicLinear", false) => Box::new(dynamic::Linear::from_float_fp16(&float)?),
                (_, true) => Box::new(dynamic::LinearReLU::from_float(&float, &q)?),
                (_, false) => Box::new(dynamic::LinearReLU::from_float_fp16(&float)?),
            }
        }
        "DynamicLstm" => {
            let float = float::Lstm::new(recurrent_config(r)?, rng)?;
            if qint8 {
                Box::new(dynamic::Lstm::from_float(&float, &mut qparams)?)
            } else {
                Box::new(dynamic::Lstm::from_float_fp16(&float)?)
            }
        }
        "DynamicGru" => {
            let float = float::Gru::new(recurrent_config(r)?, rng)?;
            if qint8 {
                Box::new(dynamic::Gru::from_float(&float, &mut qparams)?)
            } else {
                Box::new(dynamic::Gru::from_float_fp16(&float)?)
            }
        }
        "DynamicLSTMCell" => {
            let float =
                float::LSTMCell::new(r.parse("input")?, r.parse("hidden")?, r.flag("bias")?, rng);
            if qint8 {
                Box::new(dynamic::LSTMCell::from_float(&float, &mut qparams)?)
            } else {
                Box::new(dynamic::LSTMCell::from_float_fp16(&float)?)
            }
        }
        "DynamicGRUCell" => {
            let float =
                float::GRUCell::new(r.parse("input")?, r.parse("hidden")?, r.flag("bias")?, rng);
            if qint8 {
                Box::new(dynamic::GRUCell::from_float(&float, &mut qparams)?)
            } else {
                Box::new(dynamic::GRUCell::from_float_fp16(&float)?)
            }
        }
        "DynamicRNNCell" => {
            let (input, hidden, bias) = (r.parse("input")?, r.parse("hidden")?, r.flag("bias")?);
            let float = if r.flag("relu")? {
                float::RNNCell::new_relu(input, hidden, bias, rng)
            } else {
                float::RNNCell::new(input, hidden, bias, rng)
            };
            if qint8 {
                Box::new(dynamic::RNNCell::from_float(&float, &mut qparams)?)
            } else {
                Box::new(dynamic::RNNCell::from_float_fp16(&float)?)
            }
        }
        other => return Err(fmt_err(format!("unknown dynamic module `{other}`"))),
    };
    Ok(module)
}
