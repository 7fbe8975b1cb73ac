//! Quantized `BatchNorm2d` and `BNReLU2d` (`torch.ao.nn.quantized.BatchNorm2d`,
//! `torch.ao.nn.intrinsic.quantized.BNReLU2d`): `quantized::batch_norm2d(_relu)` with ATen's
//! fused per-channel parameters ([`qkernels::eltwise::batch_norm`]). Input `(N, C, H, W)` in
//! either layout, output channels-last.

use qkernels::eltwise::batch_norm::{BatchNormParams, batch_norm_nhwc};
use qtensor::{Layout, Tensor};

use super::common::{OutQ, nhwc_bytes, not_trainable, quint8_input, quint8_output};
use crate::error::{QnnError, Result};
use crate::float;
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef};
use crate::value::Value;

/// State and computation shared by [`BatchNorm2d`] and [`BNReLU2d`].
#[derive(Clone, Debug)]
struct BnCore {
    name: &'static str,
    weight: Tensor<f32>,
    bias: Tensor<f32>,
    running_mean: Tensor<f32>,
    running_var: Tensor<f32>,
    eps: f64,
    out: OutQ,
    relu: bool,
    /// Fused parameters for the last input scale seen.
    cache: Option<(u64, BatchNormParams)>,
    training: bool,
}

impl BnCore {
    #[allow(clippy::too_many_arguments)]
    fn new(
        name: &'static str,
        relu: bool,
        weight: Option<&Tensor<f32>>,
        bias: Option<&Tensor<f32>>,
        running_mean: &Tensor<f32>,
        running_var: &Tensor<f32>,
        eps: f64,
        output_scale: f64,
        output_zero_point: i64,
    ) -> Result<Self> {
        let c = running_mean.numel();
        let core = Self {
            name,
            weight: weight
                .cloned()
                .unwrap_or_else(|| Tensor::from_fn(&[c], |_| 1.0)),
            bias: bias.cloned().unwrap_or_else(|| Tensor::zeros(&[c])),
            running_mean: running_mean.clone(),
            running_var: running_var.clone(),
            eps,
            out: OutQ::new(name, output_scale, output_zero_point)?,
            relu,
            cache: None,
            training: false,
        };
        core.validate()?;
        Ok(core)
    }

    fn from_float(
        name: &'static str,
        relu: bool,
        f: &float::BatchNorm2d,
        output_scale: f64,
        output_zero_point: i64,
    ) -> Result<Self> {
        let (Some(mean), Some(var)) = (f.running_mean(), f.running_var()) else {
            return Err(QnnError::InvalidConfig {
                module: name,
                reason: "the float BatchNorm2d does not track running statistics".into(),
            });
        };
        Self::new(
            name,
            relu,
            f.weight().map(|p| &p.value),
            f.bias().map(|p| &p.value),
            mean,
            var,
            f64::from(f.config().eps),
            output_scale,
            output_zero_point,
        )
    }

    fn validate(&self) -> Result<()> {
        let c = self.running_mean.numel();
        for (what, t) in [
            ("weight", &self.weight),
            ("bias", &self.bias),
            ("running_mean", &self.running_mean),
            ("running_var", &self.running_var),
        ] {
            if t.shape() != [c] || c == 0 {
                return Err(QnnError::ShapeMismatch {
                    what: format!("{} {what} vs channels", self.name),
                    expected: vec![c],
                    got: t.shape().to_vec(),
                });
            }
        }
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return Err(QnnError::InvalidConfig {
                module: self.name,
                reason: format!("eps {} must be finite and non-negative", self.eps),
            });
        }
        self.out.validate(self.name)
    }

    fn params(&mut self, input_scale: f64) -> Result<&BatchNormParams> {
        let key = input_scale.to_bits();
        if self.cache.as_ref().map(|(k, _)| *k) != Some(key) {
            let p = BatchNormParams::new(
                Some(self.weight.data()),
                Some(self.bias.data()),
                self.running_mean.data(),
                self.running_var.data(),
                self.eps,
                input_scale,
                self.out.scale(),
            )?;
            self.cache = Some((key, p));
        }
        match &self.cache {
            Some((_, p)) => Ok(p),
            None => unreachable!("filled above"),
        }
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let a = quint8_input(self.name, input)?;
        let x = nhwc_bytes(self.name, &a)?;
        let c = self.running_mean.numel();
        let s = a.shape().to_vec();
        if s[1] != c {
            return Err(QnnError::ShapeMismatch {
                what: format!("{} input channels (dim 1) vs num_features", self.name),
                expected: vec![c],
                got: vec![s[1]],
            });
        }
        let input_scale = a.q.q_scale()?;
        let (zi, zo, relu) = (a.zero_point, self.out.zero_point() as i32, self.relu);
        let mut out = vec![0u8; x.len()];
        let p = self.params(input_scale)?;
        batch_norm_nhwc(&x, p, zi, zo, relu, &mut out)?;
        Ok(Value::Quantized(quint8_output(
            out,
            &s,
            Layout::ChannelsLast,
            self.out.scale(),
            self.out.zero_point(),
        )?))
    }

    fn visit(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        f("weight", BufferRef::F32(&self.weight));
        f("bias", BufferRef::F32(&self.bias));
        f("running_mean", BufferRef::F32(&self.running_mean));
        f("running_var", BufferRef::F32(&self.running_var));
        self.out.visit(f);
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        f("weight", BufferMut::F32(&mut self.weight));
        f("bias", BufferMut::F32(&mut self.bias));
        f("running_mean", BufferMut::F32(&mut self.running_mean));
        f("running_var", BufferMut::F32(&mut self.running_var));
        self.out.visit_mut(f);
    }
}

macro_rules! quantized_bn {
    ($ty:ident, $name:literal, $kind:ident, $relu:literal, $doc:literal) => {
        #[doc = $doc]
        ///
        /// State-dict buffers: `weight`, `bias`, `running_mean`, `running_var` (f32 `[C]`),
        /// `scale`, `zero_point`.
        #[derive(Clone, Debug)]
        pub struct $ty(BnCore);

        impl $ty {
            /// Converts a float `BatchNorm2d` (eval statistics) with the observed output
            /// qparams, as PyTorch's `from_float`; a non-affine layer uses weight 1, bias 0.
            pub fn from_float(
                float: &float::BatchNorm2d,
                output_scale: f64,
                output_zero_point: i64,
            ) -> Result<Self> {
                BnCore::from_float($name, $relu, float, output_scale, output_zero_point).map(Self)
            }

            /// Builds the layer from its statistics directly (`weight`/`bias` default to 1/0).
            #[allow(clippy::too_many_arguments)]
            pub fn from_stats(
                weight: Option<&Tensor<f32>>,
                bias: Option<&Tensor<f32>>,
                running_mean: &Tensor<f32>,
                running_var: &Tensor<f32>,
                eps: f64,
                output_scale: f64,
                output_zero_point: i64,
            ) -> Result<Self> {
                BnCore::new(
                    $name,
                    $relu,
                    weight,
                    bias,
                    running_mean,
                    running_var,
                    eps,
                    output_scale,
                    output_zero_point,
                )
                .map(Self)
            }

            /// The output scale.
            pub fn scale(&self) -> f64 {
                self.0.out.scale()
            }

            /// The output zero point.
            pub fn zero_point(&self) -> i64 {
                self.0.out.zero_point()
            }

            /// `eps`.
            pub fn eps(&self) -> f64 {
                self.0.eps
            }
        }

        impl Module for $ty {
            fn kind(&self) -> ModuleKind {
                ModuleKind::$kind
            }

            /// `C, eps=…, momentum=0.1, affine=True, bias=True, track_running_stats=True`:
            /// PyTorch's quantized batch norms keep only `num_features` and `eps` from the
            /// float layer, the rest are their constructor defaults (the output qparams are not
            /// printed).
            fn extra_repr(&self) -> String {
                format!(
                    "{}, eps={}, momentum=0.1, affine=True, bias=True, track_running_stats=True",
                    self.0.running_mean.numel(),
                    crate::repr::py_float32(self.0.eps as f32)
                )
            }

            fn forward(&mut self, input: &Value) -> Result<Value> {
                self.0.forward(input)
            }

            fn backward(&mut self, _grad_output: &Value) -> Result<Value> {
                not_trainable($name)
            }

            fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
                self.0.visit(f);
            }

            fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
                self.0.visit_mut(f);
            }

            fn after_load(&mut self) -> Result<()> {
                self.0.cache = None;
                self.0.validate()
            }

            fn train(&mut self, mode: bool) {
                self.0.training = mode;
            }

            fn is_training(&self) -> bool {
                self.0.training
            }

            fn param_bytes(&self) -> usize {
                16 * self.0.running_mean.numel() + self.0.out.bytes()
            }
        }
    };
}

quantized_bn!(
    BatchNorm2d,
    "QuantizedBatchNorm2d",
    QuantizedBatchNorm2d,
    false,
    "Quantized 2-d batch norm (`torch.ao.nn.quantized.BatchNorm2d`), bit-exact with PyTorch."
);
quantized_bn!(
    BNReLU2d,
    "QuantizedBNReLU2d",
    QuantizedBNReLU2d,
    true,
    "Quantized batch norm fused with ReLU (`torch.ao.nn.intrinsic.quantized.BNReLU2d`)."
);
