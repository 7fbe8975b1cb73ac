//! `torch.ao.nn.quantized.dynamic.Linear` and `torch.ao.nn.intrinsic.quantized.dynamic.LinearReLU`:
//! f32 in, f32 out, int8 (or f16) weights; the activation qparams are chosen on every call.

use qtensor::{Layout, QParams, QTensor, Tensor};

use super::weight::{DynWeight, WeightDType};
use crate::error::{QnnError, Result};
use crate::float;
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef};
use crate::value::Value;

/// The state shared by [`Linear`] and [`LinearReLU`].
#[derive(Clone, Debug)]
struct Core {
    name: &'static str,
    weight: DynWeight,
    relu: bool,
    scratch: Vec<u8>,
    training: bool,
}

impl Core {
    fn new(name: &'static str, weight: DynWeight, relu: bool) -> Self {
        Self {
            name,
            weight,
            relu,
            scratch: Vec::new(),
            training: false,
        }
    }

    fn qint8(
        name: &'static str,
        float: &float::Linear,
        qparams: &QParams,
        relu: bool,
    ) -> Result<Self> {
        let w = weight_of(name, float)?;
        let b = float.bias.as_ref().map(|p| &p.value);
        Ok(Self::new(
            name,
            DynWeight::qint8(name, &w, b, qparams)?,
            relu,
        ))
    }

    fn fp16(name: &'static str, float: &float::Linear, relu: bool) -> Result<Self> {
        let w = weight_of(name, float)?;
        let b = float.bias.as_ref().map(|p| &p.value);
        Ok(Self::new(name, DynWeight::fp16(name, &w, b)?, relu))
    }

    fn apply(&mut self, x: &Tensor<f32>) -> Result<Tensor<f32>> {
        let (k, n) = (self.weight.k(), self.weight.n());
        let shape = x.shape();
        match shape.last() {
            None => {
                return Err(QnnError::WrongRank {
                    module: self.name,
                    expected: "at least 1-d [*, in_features]",
                    got: shape.to_vec(),
                });
            }
            Some(&last) if last != k => {
                return Err(QnnError::ShapeMismatch {
                    what: format!("{} input features (last dim) vs weight", self.name),
                    expected: vec![k],
                    got: vec![last],
                });
            }
            Some(_) => {}
        }
        let m = x.numel() / k;
        let row_major;
        let x = if x.layout() == Layout::RowMajor {
            x
        } else {
            row_major = x.to_row_major()?;
            &row_major
        };
        let out = self
            .weight
            .apply_new(x.data(), m, self.relu, &mut self.scratch)?;
        let mut out_shape = shape.to_vec();
        if let Some(last) = out_shape.last_mut() {
            *last = n;
        }
        Ok(Tensor::new(&out_shape, out)?)
    }
}

/// The float layer's f32 weight (a halved float layer gives its f16 values widened).
fn weight_of(name: &'static str, float: &float::Linear) -> Result<Tensor<f32>> {
    if let Some(h) = float.weight_f16() {
        return Ok(h.to_f32());
    }
    let w = &float.weight.value;
    if w.shape().len() != 2 {
        return Err(QnnError::WrongRank {
            module: name,
            expected: "2-d [out_features, in_features] float weight",
            got: w.shape().to_vec(),
        });
    }
    Ok(w.clone())
}

macro_rules! dynamic_linear {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $kind:ident, $relu:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $ty {
            core: Core,
        }

        impl $ty {
            /// qint8 weights: the float layer's weight quantized with `weight_qparams` (what
            /// its weight observer produced: per-tensor, or per-channel along axis 0), packed
            /// once; the bias stays f32. Errors: other schemes, scales ≤ 0 or non-finite,
            /// zero points outside `-128..=127`, a bad weight shape.
            pub fn from_float(float: &float::Linear, weight_qparams: &QParams) -> Result<Self> {
                Ok(Self { core: Core::qint8($name, float, weight_qparams, $relu)? })
            }

            /// f16 weights (`float16_dynamic_qconfig`): the float weight rounded to f16 with
            /// saturation to ±65504; activations stay f32.
            pub fn from_float_fp16(float: &float::Linear) -> Result<Self> {
                Ok(Self { core: Core::fp16($name, float, $relu)? })
            }

            /// Input features `K`.
            pub fn in_features(&self) -> usize {
                self.core.weight.k()
            }

            /// Output features `N`.
            pub fn out_features(&self) -> usize {
                self.core.weight.n()
            }

            /// qint8 or f16 weights.
            pub fn weight_dtype(&self) -> WeightDType {
                self.core.weight.dtype()
            }

            /// The qint8 weight `[N, K]` with its qparams (`None` for f16 weights).
            pub fn weight(&self) -> Option<QTensor> {
                self.core.weight.qweight()
            }

            /// The f16 weight values widened to f32 (`None` for qint8 weights).
            pub fn weight_fp16(&self) -> Option<&Tensor<f32>> {
                self.core.weight.fp16_values()
            }

            /// The f32 bias, if any.
            pub fn bias(&self) -> Option<&Tensor<f32>> {
                self.core.weight.bias()
            }

            /// The forward computation on a tensor `[*, K]` → `[*, N]`.
            pub fn apply(&mut self, x: &Tensor<f32>) -> Result<Tensor<f32>> {
                self.core.apply(x)
            }
        }

        impl Module for $ty {
            fn kind(&self) -> ModuleKind {
                ModuleKind::$kind
            }

            fn extra_repr(&self) -> String {
                let mut s = format!(
                    "in_features={}, out_features={}",
                    self.in_features(),
                    self.out_features()
                );
                match self.weight() {
                    Some(w) => {
                        s += &format!(
                            ", dtype=torch.qint8, qscheme={}",
                            crate::repr::torch_qscheme(w.qscheme())
                        );
                    }
                    None => s += ", dtype=torch.float16",
                }
                s
            }

            fn param_dtype(&self, name: &str) -> Option<crate::repr::TensorDType> {
                (name == "weight" && self.weight_dtype() == WeightDType::Float16)
                    .then_some(crate::repr::TensorDType::F16)
            }

            fn forward(&mut self, input: &Value) -> Result<Value> {
                let x = input.as_f32($name)?;
                Ok(Value::F32(self.core.apply(x)?))
            }

            fn backward(&mut self, _grad_output: &Value) -> Result<Value> {
                Err(QnnError::NotTrainable { module: $name })
            }

            fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
                self.core.weight.visit("weight", "bias", f);
            }

            fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
                self.core.weight.visit_mut("weight", "bias", f);
            }

            fn train(&mut self, mode: bool) {
                self.core.training = mode;
            }

            fn is_training(&self) -> bool {
                self.core.training
            }

            fn after_load(&mut self) -> Result<()> {
                self.core.weight.rebuild()
            }

            fn param_bytes(&self) -> usize {
                self.core.weight.param_bytes()
            }
        }
    };
}

dynamic_linear!(
    /// Dynamic quantized Linear (`nnqd.Linear`): `y = x Wᵀ + b` on f32 `[*, K]` → f32 `[*, N]`.
    ///
    /// qint8 weights: on every call the input's min/max give quint8 qparams with
    /// `reduce_range` (values `0..=127`), the input is quantized, the int8 GEMM runs on the
    /// weights packed at construction and dequantizes with fbgemm's
    /// `fma(raw, s_in·s_w[n], bias[n])` — bit for bit PyTorch's fbgemm `linear_dynamic`.
    /// f16 weights: fbgemm's fp16 GEMM order (f32 FMA chain over K), then `+ bias`.
    ///
    /// State (`visit_buffers`): `weight` (i8 `[N, K]`, or f32 holding the f16 values),
    /// `weight_scale` (f64, 1 or N), `weight_zero_point` (i64), `weight_axis` (-1 per-tensor,
    /// 0 per-channel), `bias` (f32 `[N]`, if any). Loading repacks and validates
    /// ([`Module::after_load`]).
    Linear, "DynamicLinear", DynamicLinear, false
);

dynamic_linear!(
    /// Dynamic quantized Linear fused with ReLU (`nniqd.LinearReLU`, `linear_relu_dynamic`):
    /// [`Linear`] followed by `max(y, 0)`. Built from the inner float Linear of the fused pair.
    LinearReLU, "DynamicLinearReLU", DynamicLinearReLU, true
);
