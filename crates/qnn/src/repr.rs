//! PyTorch-style printing and inspection of modules: the class name PyTorch prints for each
//! [`ModuleKind`], the value formats of PyTorch's `extra_repr` (Python's float `repr`, tuples,
//! `torch.` dtypes and qschemes, one-element tensors), [`ReprTree`] (a module with its printed
//! children), [`module_str`] (PyTorch's multi-line `repr(module)`), [`module_repr`] (the same
//! on one line, children inlined: a graph node's line), the observers' printed forms, and
//! [`named_parameters`] (every parameter and buffer with its storage dtype and shape).
//!
//! ```
//! use qnn::float::Linear;
//! use qnn::init::Rng;
//! use qnn::repr::{module_repr, named_parameters, TensorDType};
//! use qnn::Module;
//!
//! let mut fc = Linear::new(4, 3, true, &mut Rng::new(0));
//! assert_eq!(module_repr(&fc), "Linear(in_features=4, out_features=3, bias=True)");
//! let block = qnn::float::Sequential::new().push(fc.clone()).push(qnn::float::ReLU::new());
//! assert_eq!(
//!     qnn::repr::module_str(&block),
//!     "Sequential(\n  (0): Linear(in_features=4, out_features=3, bias=True)\n  (1): ReLU()\n)"
//! );
//! fc.half()?;
//! let params = named_parameters(&fc);
//! assert_eq!((params[0].name.as_str(), params[0].dtype), ("weight", TensorDType::F16));
//! assert_eq!(params[0].shape, vec![3, 4]);
//! # Ok::<(), qnn::QnnError>(())
//! ```

use std::fmt;

use qtensor::{QDType, QScheme};

use crate::module::{Module, ModuleKind};
use crate::param::BufferRef;

mod observer;
mod tree;

pub use observer::{
    min_max_repr, observer_class, observer_extra_repr, observer_tree, per_channel_min_max_repr,
    per_channel_range,
};
pub use tree::ReprTree;

/// The storage dtype of a parameter or buffer, as PyTorch names it (`torch.float16`, `torch.qint8`…).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TensorDType {
    /// 32-bit float.
    F32,
    /// 16-bit float (weights after [`Module::half`], fp16 dynamic weights).
    F16,
    /// 64-bit float (per-channel scales).
    F64,
    /// Quantized signed 8-bit (quantized weights).
    QInt8,
    /// Quantized unsigned 8-bit.
    QUInt8,
    /// 32-bit integer.
    I32,
    /// 64-bit integer (counters, zero points).
    I64,
}

impl TensorDType {
    /// The short name: `f32`, `f16`, `f64`, `qint8`, `quint8`, `i32`, `i64`.
    pub fn name(self) -> &'static str {
        match self {
            TensorDType::F32 => "f32",
            TensorDType::F16 => "f16",
            TensorDType::F64 => "f64",
            TensorDType::QInt8 => "qint8",
            TensorDType::QUInt8 => "quint8",
            TensorDType::I32 => "i32",
            TensorDType::I64 => "i64",
        }
    }

    /// The dtype a buffer view is stored in (int8 buffers hold quantized weights: `qint8`).
    pub fn of_buffer(b: &BufferRef<'_>) -> Self {
        match b {
            BufferRef::F32(_) => TensorDType::F32,
            BufferRef::I64(_) | BufferRef::I64s(_) => TensorDType::I64,
            BufferRef::I8(_) => TensorDType::QInt8,
            BufferRef::U8(_) => TensorDType::QUInt8,
            BufferRef::I32(_) => TensorDType::I32,
            BufferRef::F64s(_) => TensorDType::F64,
        }
    }
}

impl fmt::Display for TensorDType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One entry of [`named_parameters`]: state-dict name, storage dtype, shape, and whether it is a
/// trainable parameter (`false`: a buffer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedParameter {
    /// The state-dict name (`weight`, `0.bias`, `fc1.weight`, …).
    pub name: String,
    /// The dtype the values are stored in.
    pub dtype: TensorDType,
    /// The shape (`[]` for a 0-d counter).
    pub shape: Vec<usize>,
    /// True for a trainable parameter, false for a buffer.
    pub trainable: bool,
}

impl fmt::Display for NamedParameter {
    /// `name: dtype[d0, d1, …]`, e.g. `conv1.weight: qint8[6, 1, 5, 5]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self.shape.iter().map(|d| d.to_string()).collect();
        write!(f, "{}: {}[{}]", self.name, self.dtype, dims.join(", "))
    }
}

/// Every parameter, then every buffer of `module`, in visiting order, with the dtype it is
/// actually stored in ([`Module::param_dtype`] says which weights live in f16; int8 buffers are
/// quantized `qint8` weights, uint8 ones `quint8`).
pub fn named_parameters(module: &dyn Module) -> Vec<NamedParameter> {
    let mut out = Vec::new();
    module.visit_params(&mut |name, p| {
        out.push(NamedParameter {
            name: name.to_string(),
            dtype: module.param_dtype(name).unwrap_or(TensorDType::F32),
            shape: p.shape().to_vec(),
            trainable: true,
        });
    });
    module.visit_buffers(&mut |name, b| {
        out.push(NamedParameter {
            name: name.to_string(),
            dtype: module
                .param_dtype(name)
                .unwrap_or_else(|| TensorDType::of_buffer(&b)),
            shape: b.shape(),
            trainable: false,
        });
    });
    out
}

/// One line for a module: `Type(extra_repr, child, …)`, its children inlined in their
/// one-line forms, e.g. `Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))` or
/// `ConvReLU2d(Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1)), ReLU())` (what a graph node's
/// line shows; see [`ReprTree::one_line`]).
pub fn module_repr(module: &dyn Module) -> String {
    ReprTree::of(module).one_line()
}

/// PyTorch's `repr(module)` / `str(module)`: one line for a leaf, else the argument line and
/// one `(name): Child(…)` line per child, indented as PyTorch indents them.
pub fn module_str(module: &dyn Module) -> String {
    ReprTree::of(module).pytorch()
}

/// The [`ReprTree`]s of named children, for [`Module::repr_children`].
pub fn named_children_repr<'a>(
    children: impl IntoIterator<Item = (&'a str, &'a dyn Module)>,
) -> Vec<(String, ReprTree)> {
    children
        .into_iter()
        .map(|(n, m)| (n.to_string(), ReprTree::of(m)))
        .collect()
}

/// [`Module::param_dtype`] for a container: asks the child named by the part of `name` before
/// the first `.` about the rest.
pub fn child_param_dtype<'a>(
    children: impl IntoIterator<Item = (&'a str, &'a dyn Module)>,
    name: &str,
) -> Option<TensorDType> {
    let (child, rest) = name.split_once('.')?;
    children
        .into_iter()
        .find(|(n, _)| *n == child)
        .and_then(|(_, m)| m.param_dtype(rest))
}

/// The class name PyTorch prints for a module of `kind` (`_get_name()`): float and fused
/// modules keep their names, QAT modules print as their float counterparts (as
/// `torch.ao.nn.qat.Linear` prints `Linear`), static quantized modules as `Quantized…`, dynamic
/// ones as `DynamicQuantized…`.
pub fn torch_class_name(kind: ModuleKind) -> &'static str {
    use ModuleKind as K;
    match kind {
        K::Linear | K::QatLinear => "Linear",
        K::Conv1d | K::QatConv1d => "Conv1d",
        K::Conv2d | K::QatConv2d => "Conv2d",
        K::ConvTranspose2d => "ConvTranspose2d",
        K::BatchNorm1d => "BatchNorm1d",
        K::BatchNorm2d => "BatchNorm2d",
        K::LayerNorm => "LayerNorm",
        K::GroupNorm => "GroupNorm",
        K::InstanceNorm2d => "InstanceNorm2d",
        K::ReLU => "ReLU",
        K::ReLU6 => "ReLU6",
        K::LeakyReLU => "LeakyReLU",
        K::Elu => "ELU",
        K::Hardswish => "Hardswish",
        K::Hardsigmoid => "Hardsigmoid",
        K::Gelu => "GELU",
        K::SiLU => "SiLU",
        K::Sigmoid => "Sigmoid",
        K::Tanh => "Tanh",
        K::Softmax => "Softmax",
        K::LogSoftmax => "LogSoftmax",
        K::MaxPool2d | K::QuantizedMaxPool2d => "MaxPool2d",
        K::AvgPool2d | K::QuantizedAvgPool2d => "AvgPool2d",
        K::AdaptiveAvgPool2d | K::QuantizedAdaptiveAvgPool2d => "AdaptiveAvgPool2d",
        K::Flatten | K::QuantizedFlatten => "Flatten",
        K::Dropout => "Dropout",
        K::Identity => "Identity",
        K::Sequential => "Sequential",
        K::RNNCell => "RNNCell",
        K::LSTMCell => "LSTMCell",
        K::GRUCell => "GRUCell",
        K::Rnn => "RNN",
        K::Lstm => "LSTM",
        K::Gru => "GRU",
        K::MultiheadAttention => "MultiheadAttention",
        K::TransformerEncoderLayer => "TransformerEncoderLayer",
        K::Embedding => "Embedding",
        K::EmbeddingBag => "EmbeddingBag",
        K::ConvReLU1d => "ConvReLU1d",
        K::ConvReLU2d | K::QatConvReLU2d => "ConvReLU2d",
        K::ConvBn1d | K::QatConvBn1d => "ConvBn1d",
        K::ConvBnReLU1d | K::QatConvBnReLU1d => "ConvBnReLU1d",
        K::ConvBn2d | K::QatConvBn2d => "ConvBn2d",
        K::ConvBnReLU2d | K::QatConvBnReLU2d => "ConvBnReLU2d",
        K::LinearReLU | K::QatLinearReLU => "LinearReLU",
        K::LinearBn1d | K::QatLinearBn1d => "LinearBn1d",
        K::BNReLU2d => "BNReLU2d",
        K::FakeQuantize => "FakeQuantize",
        K::FixedQParamsFakeQuantize => "FixedQParamsFakeQuantize",
        K::FusedMovingAvgObsFakeQuantize => "FusedMovingAvgObsFakeQuantize",
        K::ObserverModule => "ObserverModule",
        K::Quantize => "Quantize",
        K::DeQuantize => "DeQuantize",
        K::QuantizedLinear => "QuantizedLinear",
        K::QuantizedLinearReLU => "QuantizedLinearReLU",
        K::QuantizedConv1d => "QuantizedConv1d",
        K::QuantizedConv2d => "QuantizedConv2d",
        K::QuantizedConv3d => "QuantizedConv3d",
        K::QuantizedConvReLU1d => "QuantizedConvReLU1d",
        K::QuantizedConvReLU2d => "QuantizedConvReLU2d",
        K::QuantizedConvReLU3d => "QuantizedConvReLU3d",
        K::QuantizedConvTranspose2d => "QuantizedConvTranspose2d",
        K::QuantizedBatchNorm2d => "QuantizedBatchNorm2d",
        K::QuantizedBNReLU2d => "QuantizedBNReLU2d",
        K::QuantizedLayerNorm => "QuantizedLayerNorm",
        K::QuantizedGroupNorm => "QuantizedGroupNorm",
        K::QuantizedInstanceNorm2d => "QuantizedInstanceNorm2d",
        K::QuantizedReLU => "ReLU",
        K::QuantizedReLU6 => "QuantizedReLU6",
        K::QuantizedHardswish => "QuantizedHardswish",
        K::QuantizedLeakyReLU => "QuantizedLeakyReLU",
        K::QuantizedElu => "QuantizedELU",
        K::QuantizedSigmoid => "Sigmoid",
        K::QuantizedTanh => "Tanh",
        K::QuantizedSoftmax => "QuantizedSoftmax",
        K::QuantizedDropout => "QuantizedDropout",
        K::QuantizedEmbedding => "QuantizedEmbedding",
        K::QuantizedEmbeddingBag => "QuantizedEmbeddingBag",
        K::QFunctional => "QFunctional",
        K::DynamicLinear => "DynamicQuantizedLinear",
        K::DynamicLinearReLU => "DynamicQuantizedLinearReLU",
        K::DynamicLstm => "DynamicQuantizedLSTM",
        K::DynamicGru => "DynamicQuantizedGRU",
        K::DynamicLSTMCell => "DynamicQuantizedLSTMCell",
        K::DynamicGRUCell => "DynamicQuantizedGRUCell",
        K::DynamicRNNCell => "DynamicQuantizedRNNCell",
        K::Custom => "Custom",
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, fixed notation for exponents
/// −4..16 (always with a fractional part: `1.0`), scientific otherwise (`1e-05`, `1.5e+16`);
/// `inf`, `-inf`, `nan`.
pub fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits as `d.ddde<exp>`.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if x < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let body = if exp < 0 {
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        } else if exp + 1 >= n {
            format!("{}{}.0", digits, "0".repeat((exp + 1 - n) as usize))
        } else {
            let (int, frac) = digits.split_at((exp + 1) as usize);
            format!("{int}.{frac}")
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let m = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{m}e{esign}{:02}", exp.abs())
    }
}

/// Python's `repr` of an f32 hyper-parameter given in Python as a float literal (`eps=1e-05`):
/// the shortest decimal that round-trips the f32, printed as Python prints that literal.
pub fn py_float32(x: f32) -> String {
    let shortest = format!("{x}");
    py_float(shortest.parse::<f64>().unwrap_or(f64::from(x)))
}

/// A pooling argument as PyTorch prints what the user passed: an int when both sides agree
/// (`kernel_size=2`), else a tuple (`(2, 3)`).
pub fn py_int_or_pair(v: [usize; 2]) -> String {
    if v[0] == v[1] {
        v[0].to_string()
    } else {
        py_tuple(&v)
    }
}

/// The geometry of a convolution as `_ConvNd.extra_repr` prints it.
#[derive(Clone, Debug, Default)]
pub struct ConvRepr<'a> {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel size per spatial axis.
    pub kernel_size: &'a [usize],
    /// Stride per axis.
    pub stride: &'a [usize],
    /// Padding per axis (printed when not all zero).
    pub padding: &'a [usize],
    /// Dilation per axis (printed when not all one).
    pub dilation: &'a [usize],
    /// Output padding per axis (transposed convolutions; printed when not all zero).
    pub output_padding: &'a [usize],
    /// Groups (printed when not 1).
    pub groups: usize,
    /// Whether there is a bias (`bias=False` printed when not).
    pub bias: bool,
    /// Output `scale` / `zero_point` of a quantized convolution, printed after the stride.
    pub out_qparams: Option<(f64, i64)>,
}

impl ConvRepr<'_> {
    /// `1, 6, kernel_size=(5, 5), stride=(1, 1)[, scale=…, zero_point=…][, padding=…]…`.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{}, {}, kernel_size={}, stride={}",
            self.in_channels,
            self.out_channels,
            py_tuple(self.kernel_size),
            py_tuple(self.stride)
        );
        if let Some((scale, zp)) = self.out_qparams {
            s += &format!(", scale={}, zero_point={zp}", py_float(scale));
        }
        if self.padding.iter().any(|&p| p != 0) {
            s += &format!(", padding={}", py_tuple(self.padding));
        }
        if self.dilation.iter().any(|&d| d != 1) {
            s += &format!(", dilation={}", py_tuple(self.dilation));
        }
        if self.output_padding.iter().any(|&p| p != 0) {
            s += &format!(", output_padding={}", py_tuple(self.output_padding));
        }
        if self.groups != 1 {
            s += &format!(", groups={}", self.groups);
        }
        if !self.bias {
            s += ", bias=False";
        }
        s
    }
}

/// A convolution configuration that can print itself as `_ConvNd.extra_repr` does.
pub trait ConvConfigRepr {
    /// The float layer's `extra_repr` for this configuration (`bias`: whether it has one).
    fn conv_repr(&self, bias: bool) -> String;
}

impl ConvConfigRepr for crate::float::Conv2dConfig {
    fn conv_repr(&self, bias: bool) -> String {
        ConvRepr {
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            kernel_size: &self.kernel_size,
            stride: &self.stride,
            padding: &self.padding,
            dilation: &self.dilation,
            groups: self.groups,
            bias,
            ..Default::default()
        }
        .render()
    }
}

impl ConvConfigRepr for crate::float::Conv1dConfig {
    fn conv_repr(&self, bias: bool) -> String {
        ConvRepr {
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            kernel_size: &[self.kernel_size],
            stride: &[self.stride],
            padding: &[self.padding],
            dilation: &[self.dilation],
            groups: self.groups,
            bias,
            ..Default::default()
        }
        .render()
    }
}

/// PyTorch's `LayerNorm` argument line (float and quantized): `(64,), eps=1e-05,
/// elementwise_affine=True, bias=True`; `eps` already formatted as Python prints it.
pub fn layer_norm_args(shape: &[usize], eps: &str, affine: bool, bias: bool) -> String {
    format!(
        "{}, eps={eps}, elementwise_affine={}, bias={}",
        py_tuple(shape),
        py_bool(affine),
        py_bool(bias)
    )
}

/// PyTorch's `GroupNorm` argument line (float and quantized): `2, 4, eps=1e-05, affine=True,
/// bias=True`.
pub fn group_norm_args(
    groups: usize,
    channels: usize,
    eps: &str,
    affine: bool,
    bias: bool,
) -> String {
    format!(
        "{groups}, {channels}, eps={eps}, affine={}, bias={}",
        py_bool(affine),
        py_bool(bias)
    )
}

/// PyTorch's `InstanceNorm2d` argument line (float and quantized); `momentum` is its unused
/// default, running statistics are not tracked.
pub fn instance_norm_args(channels: usize, eps: &str, affine: bool, bias: bool) -> String {
    format!(
        "{channels}, eps={eps}, momentum=0.1, affine={}, bias={}, track_running_stats=False",
        py_bool(affine),
        py_bool(bias)
    )
}

/// Python's `str(True)` / `str(False)`.
pub fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// A Python tuple of integers: `(5, 5)`, `(3,)`.
pub fn py_tuple(values: &[usize]) -> String {
    let parts: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}

/// `torch.quint8`, `torch.qint8`, `torch.qint32`, `torch.quint4x2`.
pub fn torch_qdtype(dtype: QDType) -> &'static str {
    match dtype {
        QDType::QUInt8 => "torch.quint8",
        QDType::QInt8 => "torch.qint8",
        QDType::QInt32 => "torch.qint32",
        QDType::QUInt4x2 => "torch.quint4x2",
    }
}

/// `torch.per_tensor_affine`, `torch.per_channel_symmetric`, …
pub fn torch_qscheme(qscheme: QScheme) -> &'static str {
    match qscheme {
        QScheme::PerTensorAffine => "torch.per_tensor_affine",
        QScheme::PerTensorSymmetric => "torch.per_tensor_symmetric",
        QScheme::PerChannelAffine => "torch.per_channel_affine",
        QScheme::PerChannelSymmetric => "torch.per_channel_symmetric",
        QScheme::PerChannelAffineFloatQParams => "torch.per_channel_affine_float_qparams",
    }
}

/// How PyTorch prints a one-element float tensor (`tensor([0.0563])`): four decimals, or
/// scientific (`tensor([1.0000e-05])`) below 1e-4 or above 1e8, and `tensor([1.])` for whole
/// numbers. (Longer tensors print PyTorch's way only element-wise: qstack does not reproduce
/// its column alignment.)
pub fn torch_tensor_f32(values: &[f32]) -> String {
    let all_int = values.iter().all(|v| v.is_finite() && v.fract() == 0.0);
    let finite: Vec<f64> = values
        .iter()
        .filter(|v| v.is_finite() && **v != 0.0)
        .map(|&v| f64::from(v).abs())
        .collect();
    let (lo, hi) = finite.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    });
    let sci = !finite.is_empty() && (hi / lo > 1000.0 || hi > 1e8 || lo < 1e-4);
    let parts: Vec<String> = values
        .iter()
        .map(|&v| {
            let v = f64::from(v);
            if !v.is_finite() {
                py_float(v)
            } else if all_int && !sci {
                format!("{v:.0}.")
            } else if sci {
                let s = format!("{v:.4e}");
                let (m, e) = s.split_once('e').unwrap_or((s.as_str(), "0"));
                let e: i32 = e.parse().unwrap_or(0);
                format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
            } else {
                format!("{v:.4}")
            }
        })
        .collect();
    format!("tensor([{}])", parts.join(", "))
}

/// How PyTorch prints an int64 tensor: `tensor([65])`.
pub fn torch_tensor_i64(values: &[i64]) -> String {
    let parts: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    format!("tensor([{}])", parts.join(", "))
}

/// How PyTorch prints an int32 tensor: `tensor([0], dtype=torch.int32)`.
pub fn torch_tensor_i32(values: &[i32]) -> String {
    let parts: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    format!("tensor([{}], dtype=torch.int32)", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_repr() {
        assert_eq!(py_float(0.1), "0.1");
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(-2.5), "-2.5");
        assert_eq!(py_float(1e-5), "1e-05");
        assert_eq!(py_float(1.5e-5), "1.5e-05");
        assert_eq!(py_float(0.0001), "0.0001");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(123456.0), "123456.0");
        assert_eq!(py_float(f64::from(-3.684_513_3_f32)), "-3.6845133304595947");
        assert_eq!(py_float(0.01832588016986847), "0.01832588016986847");
        assert_eq!(py_float(f64::INFINITY), "inf");
        assert_eq!(py_float(0.0), "0.0");
    }

    #[test]
    fn torch_tensor_print() {
        assert_eq!(torch_tensor_f32(&[0.056_3]), "tensor([0.0563])");
        assert_eq!(torch_tensor_f32(&[1.0]), "tensor([1.])");
        assert_eq!(torch_tensor_f32(&[1e-5]), "tensor([1.0000e-05])");
        assert_eq!(torch_tensor_i64(&[65]), "tensor([65])");
        assert_eq!(py_tuple(&[5, 5]), "(5, 5)");
        assert_eq!(py_tuple(&[3]), "(3,)");
    }
}
