//! Quantized pooling on channels-last quint8 tensors: `MaxPool2d`, `AvgPool2d`,
//! `AdaptiveAvgPool2d` (PyTorch's `quantized::max_pool2d` / `avg_pool2d` /
//! `adaptive_avg_pool2d` NHWC kernels, through [`qkernels::pool`]). Inputs `(N, C, H, W)` in
//! either layout; outputs channels-last with the input's qparams, as PyTorch's. `ceil_mode`,
//! `count_include_pad` and `divisor_override` behave as PyTorch's quantized kernels.

use qkernels::pool::{self, Pool2d};
use qtensor::{Layout, QDType, QTensor};

use super::common::{Act, nhwc_bytes, not_trainable, quint8_input};
use crate::error::{QnnError, Result};
use crate::float;
use crate::module::{Module, ModuleKind};
use crate::value::Value;

/// Wraps NHWC bytes as a channels-last tensor with the input's qparams.
fn output(a: &Act<'_>, bytes: Vec<u8>, oh: usize, ow: usize) -> Result<Value> {
    let s = a.shape();
    Ok(Value::Quantized(QTensor::from_u8_storage(
        bytes,
        &[s[0], s[1], oh, ow],
        Layout::ChannelsLast,
        QDType::QUInt8,
        a.q.qparams().clone(),
    )?))
}

fn window(
    module: &'static str,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    ceil_mode: bool,
) -> Result<Pool2d> {
    let p = Pool2d {
        input: [1, kernel[0] * dilation[0], kernel[1] * dilation[1], 1],
        kernel,
        stride,
        padding,
        dilation,
        ceil_mode,
    };
    p.output().map_err(|e| QnnError::InvalidConfig {
        module,
        reason: e.to_string(),
    })?;
    Ok(p)
}

/// Checks a 4-d input and returns its NHWC bytes and `[N, H, W, C]`.
fn nhwc<'a>(module: &'static str, a: &Act<'a>) -> Result<(std::borrow::Cow<'a, [u8]>, [usize; 4])> {
    let bytes = nhwc_bytes(module, a)?;
    let s = a.shape();
    Ok((bytes, [s[0], s[2], s[3], s[1]]))
}

macro_rules! module_common {
    ($name:expr, $kind:ident) => {
        fn kind(&self) -> ModuleKind {
            ModuleKind::$kind
        }

        fn backward(&mut self, _grad_output: &Value) -> Result<Value> {
            not_trainable($name)
        }

        fn train(&mut self, mode: bool) {
            self.training = mode;
        }

        fn is_training(&self) -> bool {
            self.training
        }
    };
}

const MAX: &str = "QuantizedMaxPool2d";
const AVG: &str = "QuantizedAvgPool2d";
const ADAPTIVE: &str = "QuantizedAdaptiveAvgPool2d";

/// Max pooling on quint8 (`quantized::max_pool2d`): the integer maximum over each window.
#[derive(Clone, Debug)]
pub struct MaxPool2d {
    win: Pool2d,
    training: bool,
}

impl MaxPool2d {
    /// Every option of `nn.MaxPool2d` (`[h, w]` pairs).
    pub fn new(
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        ceil_mode: bool,
    ) -> Result<Self> {
        Ok(Self {
            win: window(MAX, kernel_size, stride, padding, dilation, ceil_mode)?,
            training: false,
        })
    }

    /// Converts a float layer (same window).
    pub fn from_float(float: &float::MaxPool2d) -> Result<Self> {
        let (k, s, p, d, c) = float.options();
        Self::new(k, s, p, d, c)
    }

    /// `(kernel_size, stride, padding, dilation)`.
    pub fn options(&self) -> ([usize; 2], [usize; 2], [usize; 2], [usize; 2]) {
        (
            self.win.kernel,
            self.win.stride,
            self.win.padding,
            self.win.dilation,
        )
    }

    /// PyTorch's `ceil_mode` (the output size rounds up).
    pub fn ceil_mode(&self) -> bool {
        self.win.ceil_mode
    }
}

impl Module for MaxPool2d {
    module_common!(MAX, QuantizedMaxPool2d);

    /// As the float `nn.MaxPool2d` PyTorch keeps after convert.
    fn extra_repr(&self) -> String {
        use crate::repr::{py_bool, py_int_or_pair};
        let w = &self.win;
        format!(
            "kernel_size={}, stride={}, padding={}, dilation={}, ceil_mode={}",
            py_int_or_pair(w.kernel),
            py_int_or_pair(w.stride),
            py_int_or_pair(w.padding),
            py_int_or_pair(w.dilation),
            py_bool(w.ceil_mode)
        )
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let a = quint8_input(MAX, input)?;
        let (x, dims) = nhwc(MAX, &a)?;
        let p = Pool2d {
            input: dims,
            ..self.win
        };
        let [oh, ow] = p.output()?;
        let mut out = vec![0u8; dims[0] * oh * ow * dims[3]];
        pool::max_pool2d(&x, &p, &mut out)?;
        output(&a, out, oh, ow)
    }
}

/// Average pooling on quint8 (`quantized::avg_pool2d`, output qparams = input qparams).
#[derive(Clone, Debug)]
pub struct AvgPool2d {
    win: Pool2d,
    count_include_pad: bool,
    divisor_override: Option<usize>,
    training: bool,
}

impl AvgPool2d {
    /// Every option of `nn.AvgPool2d` (`[h, w]` pairs).
    pub fn new(
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        ceil_mode: bool,
        count_include_pad: bool,
        divisor_override: Option<usize>,
    ) -> Result<Self> {
        if divisor_override == Some(0) {
            return Err(QnnError::InvalidConfig {
                module: AVG,
                reason: "divisor_override must be positive, got 0".into(),
            });
        }
        Ok(Self {
            win: window(AVG, kernel_size, stride, padding, [1, 1], ceil_mode)?,
            count_include_pad,
            divisor_override,
            training: false,
        })
    }

    /// Converts a float layer (same options).
    pub fn from_float(float: &float::AvgPool2d) -> Result<Self> {
        let (k, s, p, c, cip, d) = float.options();
        Self::new(k, s, p, c, cip, d)
    }

    /// `(kernel_size, stride, padding, count_include_pad, divisor_override)`.
    pub fn options(&self) -> ([usize; 2], [usize; 2], [usize; 2], bool, Option<usize>) {
        (
            self.win.kernel,
            self.win.stride,
            self.win.padding,
            self.count_include_pad,
            self.divisor_override,
        )
    }

    /// PyTorch's `ceil_mode` (the output size rounds up).
    pub fn ceil_mode(&self) -> bool {
        self.win.ceil_mode
    }
}

impl Module for AvgPool2d {
    module_common!(AVG, QuantizedAvgPool2d);

    /// As the float `nn.AvgPool2d` PyTorch keeps after convert (which prints neither
    /// `ceil_mode` nor `count_include_pad`).
    fn extra_repr(&self) -> String {
        use crate::repr::py_int_or_pair;
        let w = &self.win;
        format!(
            "kernel_size={}, stride={}, padding={}",
            py_int_or_pair(w.kernel),
            py_int_or_pair(w.stride),
            py_int_or_pair(w.padding)
        )
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let a = quint8_input(AVG, input)?;
        let (x, dims) = nhwc(AVG, &a)?;
        let p = Pool2d {
            input: dims,
            ..self.win
        };
        let [oh, ow] = p.output()?;
        let mut out = vec![0u8; dims[0] * oh * ow * dims[3]];
        let q = a.qparams();
        pool::avg_pool2d(
            &x,
            q,
            &p,
            self.count_include_pad,
            self.divisor_override,
            q,
            &mut out,
        )?;
        output(&a, out, oh, ow)
    }
}

/// Adaptive average pooling on quint8 (`quantized::adaptive_avg_pool2d`, output qparams =
/// input qparams).
#[derive(Clone, Debug)]
pub struct AdaptiveAvgPool2d {
    output_size: [usize; 2],
    training: bool,
}

impl AdaptiveAvgPool2d {
    /// Output `[height, width]`, both positive.
    pub fn new(output_size: [usize; 2]) -> Result<Self> {
        if output_size.contains(&0) {
            return Err(QnnError::InvalidConfig {
                module: ADAPTIVE,
                reason: format!("output_size {output_size:?} must be positive"),
            });
        }
        Ok(Self {
            output_size,
            training: false,
        })
    }

    /// Converts a float layer (same output size).
    pub fn from_float(float: &float::AdaptiveAvgPool2d) -> Result<Self> {
        Self::new(float.output_size())
    }

    /// The output size.
    pub fn output_size(&self) -> [usize; 2] {
        self.output_size
    }
}

impl Module for AdaptiveAvgPool2d {
    module_common!(ADAPTIVE, QuantizedAdaptiveAvgPool2d);

    fn extra_repr(&self) -> String {
        format!(
            "output_size={}",
            crate::repr::py_int_or_pair(self.output_size)
        )
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let a = quint8_input(ADAPTIVE, input)?;
        let (x, dims) = nhwc(ADAPTIVE, &a)?;
        let [oh, ow] = self.output_size;
        let mut out = vec![0u8; dims[0] * oh * ow * dims[3]];
        let q = a.qparams();
        pool::adaptive_avg_pool2d(&x, q, dims, self.output_size, q, &mut out)?;
        output(&a, out, oh, ow)
    }
}
