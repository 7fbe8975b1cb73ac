//! Quantized activations: `ReLU`, `ReLU6` (on the integers, qparams unchanged), and
//! `Hardswish`, `LeakyReLU`, `ELU`, `Sigmoid`, `Tanh` through a 256-entry table
//! ([`qkernels::eltwise::activation::Lut`], rebuilt only when the input qparams change).
//! Bit-exact with PyTorch's quantized kernels (the table is "dequantize → f32 function →
//! quantize", which is how those kernels compute each value). Outputs keep the input's layout.

use qkernels::eltwise::QParams as EltQParams;
use qkernels::eltwise::activation::{self, Lut, SIGMOID_QPARAMS, TANH_QPARAMS};

use super::common::{Act, OutQ, not_trainable, quint8_input, quint8_output};
use crate::error::Result;
use crate::float;
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef};
use crate::value::Value;

/// Wraps transformed bytes with the input's shape and layout and the given qparams.
fn output(a: &Act<'_>, bytes: Vec<u8>, scale: f64, zero_point: i64) -> Result<Value> {
    Ok(Value::Quantized(quint8_output(
        bytes,
        a.shape(),
        a.q.layout(),
        scale,
        zero_point,
    )?))
}

/// The exact input qparams (f64 scale) an output keeps when qparams are unchanged.
fn same_qparams(a: &Act<'_>, bytes: Vec<u8>) -> Result<Value> {
    Ok(Value::Quantized(qtensor::QTensor::from_u8_storage(
        bytes,
        a.shape(),
        a.q.layout(),
        qtensor::QDType::QUInt8,
        a.q.qparams().clone(),
    )?))
}

/// A table cached for the input qparams it was built for.
#[derive(Clone, Debug, Default)]
struct LutCache(Option<(EltQParams, Lut)>);

impl LutCache {
    fn run(
        &mut self,
        a: &Act<'_>,
        build: impl FnOnce(EltQParams) -> qkernels::error::Result<Lut>,
    ) -> Result<Vec<u8>> {
        let q = a.qparams();
        let lut = match &self.0 {
            Some((k, lut)) if *k == q => lut,
            _ => {
                let lut = build(q)?;
                &self.0.insert((q, lut)).1
            }
        };
        let mut out = vec![0u8; a.data.len()];
        lut.apply(a.data, &mut out)?;
        Ok(out)
    }
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

macro_rules! out_qparams_state {
    ($name:expr) => {
        fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
            self.out.visit(f);
        }

        fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
            self.out.visit_mut(f);
        }

        fn after_load(&mut self) -> Result<()> {
            self.lut = LutCache::default();
            self.out.validate($name)
        }

        fn param_bytes(&self) -> usize {
            self.out.bytes()
        }
    };
}

/// `torch.relu` on a quint8 tensor: `max(q, zero_point)`, qparams unchanged.
#[derive(Clone, Debug, Default)]
pub struct ReLU {
    training: bool,
}

impl ReLU {
    /// A new layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Module for ReLU {
    module_common!("QuantizedReLU", QuantizedReLU);

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let a = quint8_input("QuantizedReLU", input)?;
        let mut bytes = a.data.to_vec();
        activation::relu(&mut bytes, a.qparams())?;
        same_qparams(&a, bytes)
    }
}

/// `nnq.ReLU6`: `min(max(q, zero_point), q(6.0))`, qparams unchanged.
#[derive(Clone, Debug, Default)]
pub struct ReLU6 {
    training: bool,
}

impl ReLU6 {
    /// A new layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Module for ReLU6 {
    module_common!("QuantizedReLU6", QuantizedReLU6);

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let a = quint8_input("QuantizedReLU6", input)?;
        let mut bytes = a.data.to_vec();
        activation::relu6(&mut bytes, a.qparams())?;
        same_qparams(&a, bytes)
    }
}

/// `nnq.Hardswish(scale, zero_point)`.
#[derive(Clone, Debug)]
pub struct Hardswish {
    out: OutQ,
    lut: LutCache,
    training: bool,
}

impl Hardswish {
    /// With the output qparams the activation observer produced.
    pub fn new(output_scale: f64, output_zero_point: i64) -> Result<Self> {
        Ok(Self {
            out: OutQ::new("QuantizedHardswish", output_scale, output_zero_point)?,
            lut: LutCache::default(),
            training: false,
        })
    }

    /// The output scale.
    pub fn scale(&self) -> f64 {
        self.out.scale()
    }

    /// The output zero point.
    pub fn zero_point(&self) -> i64 {
        self.out.zero_point()
    }
}

impl Module for Hardswish {
    module_common!("QuantizedHardswish", QuantizedHardswish);
    out_qparams_state!("QuantizedHardswish");

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let a = quint8_input("QuantizedHardswish", input)?;
        let qo = self.out.elt();
        let bytes = self.lut.run(&a, |qi| Lut::hardswish(qi, qo))?;
        output(&a, bytes, self.out.scale(), self.out.zero_point())
    }
}

/// `nnq.LeakyReLU(scale, zero_point, negative_slope)`.
#[derive(Clone, Debug)]
pub struct LeakyReLU {
    out: OutQ,
    negative_slope: f32,
    lut: LutCache,
    training: bool,
}

impl LeakyReLU {
    /// With the output qparams and the slope for negative inputs.
    pub fn new(output_scale: f64, output_zero_point: i64, negative_slope: f32) -> Result<Self> {
        Ok(Self {
            out: OutQ::new("QuantizedLeakyReLU", output_scale, output_zero_point)?,
            negative_slope,
            lut: LutCache::default(),
            training: false,
        })
    }

    /// Converts a float layer (its slope) with the observed output qparams.
    pub fn from_float(
        float: &float::LeakyReLU,
        output_scale: f64,
        output_zero_point: i64,
    ) -> Result<Self> {
        Self::new(
            output_scale,
            output_zero_point,
            float.function().negative_slope,
        )
    }

    /// The output scale.
    pub fn scale(&self) -> f64 {
        self.out.scale()
    }

    /// The output zero point.
    pub fn zero_point(&self) -> i64 {
        self.out.zero_point()
    }

    /// The negative slope.
    pub fn negative_slope(&self) -> f32 {
        self.negative_slope
    }
}

impl Module for LeakyReLU {
    module_common!("QuantizedLeakyReLU", QuantizedLeakyReLU);
    out_qparams_state!("QuantizedLeakyReLU");

    fn extra_repr(&self) -> String {
        format!(
            "negative_slope={}",
            crate::repr::py_float32(self.negative_slope)
        )
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let a = quint8_input("QuantizedLeakyReLU", input)?;
        let (qo, slope) = (self.out.elt(), self.negative_slope);
        let bytes = self.lut.run(&a, |qi| Lut::leaky_relu(qi, qo, slope))?;
        output(&a, bytes, self.out.scale(), self.out.zero_point())
    }
}

/// `nnq.ELU(scale, zero_point, alpha)`.
#[derive(Clone, Debug)]
pub struct ELU {
    out: OutQ,
    alpha: f32,
    lut: LutCache,
    training: bool,
}

impl ELU {
    /// With the output qparams and `alpha`.
    pub fn new(output_scale: f64, output_zero_point: i64, alpha: f32) -> Result<Self> {
        Ok(Self {
            out: OutQ::new("QuantizedElu", output_scale, output_zero_point)?,
            alpha,
            lut: LutCache::default(),
            training: false,
        })
    }

    /// Converts a float layer (its `alpha`) with the observed output qparams.
    pub fn from_float(
        float: &float::Elu,
        output_scale: f64,
        output_zero_point: i64,
    ) -> Result<Self> {
        Self::new(output_scale, output_zero_point, float.function().alpha)
    }

    /// The output scale.
    pub fn scale(&self) -> f64 {
        self.out.scale()
    }

    /// The output zero point.
    pub fn zero_point(&self) -> i64 {
        self.out.zero_point()
    }

    /// The `alpha` of the negative branch.
    pub fn alpha(&self) -> f32 {
        self.alpha
    }
}

impl Module for ELU {
    module_common!("QuantizedElu", QuantizedElu);
    out_qparams_state!("QuantizedElu");

    fn extra_repr(&self) -> String {
        format!("alpha={}", crate::repr::py_float32(self.alpha))
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let a = quint8_input("QuantizedElu", input)?;
        let (qo, alpha) = (self.out.elt(), self.alpha);
        let bytes = self.lut.run(&a, |qi| Lut::elu(qi, qo, alpha))?;
        output(&a, bytes, self.out.scale(), self.out.zero_point())
    }
}

macro_rules! fixed_qparams_activation {
    ($ty:ident, $name:literal, $kind:ident, $build:path, $q:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Debug, Default)]
        pub struct $ty {
            lut: LutCache,
            training: bool,
        }

        impl $ty {
            /// A new layer.
            pub fn new() -> Self {
                Self::default()
            }

            /// The fixed output qparams `(scale, zero_point)`.
            pub fn output_qparams() -> (f64, i64) {
                (f64::from($q.scale), i64::from($q.zero_point))
            }
        }

        impl Module for $ty {
            module_common!($name, $kind);

            fn forward(&mut self, input: &Value) -> Result<Value> {
                let a = quint8_input($name, input)?;
                let bytes = self.lut.run(&a, $build)?;
                let (scale, zero_point) = Self::output_qparams();
                output(&a, bytes, scale, zero_point)
            }
        }
    };
}

fixed_qparams_activation!(
    Sigmoid,
    "QuantizedSigmoid",
    QuantizedSigmoid,
    Lut::sigmoid,
    SIGMOID_QPARAMS,
    "`torch.sigmoid` on quint8 with PyTorch's fixed output qparams (scale 1/256, zero point 0)."
);
fixed_qparams_activation!(
    Tanh,
    "QuantizedTanh",
    QuantizedTanh,
    Lut::tanh,
    TANH_QPARAMS,
    "`torch.tanh` on quint8 with PyTorch's fixed output qparams (scale 2/256, zero point 128)."
);
