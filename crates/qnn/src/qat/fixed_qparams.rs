//! `FixedQParamsFakeQuantize`: fake-quant with a fixed scale and zero point (the outputs of
//! sigmoid, tanh, hardsigmoid and softmax), PyTorch `torch.ao.quantization.FixedQParamsFakeQuantize`.

use qtensor::observer::{Observer, ObserverSpec};
use qtensor::{QDType, QParams, QScheme, Tensor, fake_quantize_per_tensor_affine};

use super::FakeQuantSpec;
use super::fake_quant::{
    FakeQuant, FakeQuantOutput, SavedMask, ZeroPoints, flag_repr, flag_u8, zero_point_repr,
};
use super::observer_args::check_in_dtype;
use crate::error::{QnnError, Result};
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef};
use crate::value::Value;

const NAME: &str = "FixedQParamsFakeQuantize";

/// `FixedQParamsFakeQuantize(observer=FixedQParamsObserver.with_args(scale, zero_point, dtype,
/// quant_min, quant_max))`: per-tensor fake-quant with fixed parameters; the observer flag
/// changes nothing (the observer always answers the same). State-dict names:
/// `fake_quant_enabled`, `observer_enabled`, `scale`, `zero_point`,
/// `activation_post_process.scale`, `activation_post_process.zero_point` (PyTorch shares the
/// last two with the first two; after loading, the observer's copies win as in PyTorch).
#[derive(Debug)]
pub struct FixedQParamsFakeQuantize {
    observer: Box<dyn Observer>,
    dtype: QDType,
    quant_range: (i64, i64),
    fake_quant_enabled: Tensor<u8>,
    observer_enabled: Tensor<u8>,
    scale: Tensor<f32>,
    zero_point: ZeroPoints,
    observer_scale: Tensor<f32>,
    observer_zero_point: Tensor<i32>,
    saved: SavedMask,
    training: bool,
}

impl Clone for FixedQParamsFakeQuantize {
    fn clone(&self) -> Self {
        Self {
            observer: self.observer.box_clone(),
            dtype: self.dtype,
            quant_range: self.quant_range,
            fake_quant_enabled: self.fake_quant_enabled.clone(),
            observer_enabled: self.observer_enabled.clone(),
            scale: self.scale.clone(),
            zero_point: self.zero_point.clone(),
            observer_scale: self.observer_scale.clone(),
            observer_zero_point: self.observer_zero_point.clone(),
            saved: self.saved.clone(),
            training: self.training,
        }
    }
}

impl FixedQParamsFakeQuantize {
    /// A module with the given parameters. `InvalidQParams` unless `quant_min <= quant_max`
    /// lie inside the dtype, the scale (as f32) is finite and positive, and the zero point lies
    /// in the range.
    pub fn new(
        scale: f64,
        zero_point: i64,
        dtype: QDType,
        quant_min: i64,
        quant_max: i64,
    ) -> Result<Self> {
        check_in_dtype(NAME, dtype, quant_min, quant_max)?;
        let s = scale as f32;
        if !(s.is_finite() && s > 0.0) {
            return Err(QnnError::InvalidQParams {
                module: NAME,
                reason: format!("scale {scale} must be finite and > 0 as an f32"),
            });
        }
        if !(quant_min..=quant_max).contains(&zero_point) {
            return Err(QnnError::InvalidQParams {
                module: NAME,
                reason: format!("zero point {zero_point} is outside [{quant_min}, {quant_max}]"),
            });
        }
        let observer = super::build_observer(&ObserverSpec::FixedQParams {
            scale,
            zero_point,
            dtype,
            quant_min,
            quant_max,
        })?;
        let zp = zero_point as i32;
        Ok(Self {
            observer,
            dtype,
            quant_range: (quant_min, quant_max),
            fake_quant_enabled: flag_u8(true),
            observer_enabled: flag_u8(true),
            scale: Tensor::from_fn(&[1], |_| s),
            zero_point: ZeroPoints::Int(Tensor::from_fn(&[1], |_| zp)),
            observer_scale: Tensor::from_fn(&[1], |_| s),
            observer_zero_point: Tensor::from_fn(&[1], |_| zp),
            saved: SavedMask::default(),
            training: true,
        })
    }

    fn scale_zp(&self) -> Result<(f32, i32)> {
        match (self.scale.data().first(), &self.zero_point) {
            (Some(&s), ZeroPoints::Int(z)) if z.numel() == 1 => Ok((s, z.data()[0])),
            _ => Err(QnnError::InvalidQParams {
                module: NAME,
                reason: format!(
                    "scale {:?} / zero_point {:?} must hold one value each",
                    self.scale, self.zero_point
                ),
            }),
        }
    }
}

impl FakeQuant for FixedQParamsFakeQuantize {
    fn apply(&mut self, x: &Tensor<f32>) -> Result<FakeQuantOutput> {
        if !self.fake_quant_enabled() {
            return Ok(FakeQuantOutput {
                output: x.clone(),
                mask: None,
            });
        }
        let (s, z) = self.scale_zp()?;
        let (qmin, qmax) = self.quant_range;
        let (output, mask) =
            fake_quantize_per_tensor_affine(x, f64::from(s), i64::from(z), qmin, qmax)?;
        Ok(FakeQuantOutput {
            output,
            mask: Some(mask),
        })
    }

    fn calculate_qparams(&self) -> Result<QParams> {
        let (s, z) = self.scale_zp()?;
        Ok(QParams::PerTensor {
            scale: f64::from(s),
            zero_point: i64::from(z),
        })
    }

    fn fake_quant_enabled(&self) -> bool {
        self.fake_quant_enabled.data().first() == Some(&1)
    }

    fn observer_enabled(&self) -> bool {
        self.observer_enabled.data().first() == Some(&1)
    }

    fn enable_fake_quant(&mut self, enabled: bool) {
        self.fake_quant_enabled = flag_u8(enabled);
    }

    fn enable_observer(&mut self, enabled: bool) {
        self.observer_enabled = flag_u8(enabled);
    }

    fn scale(&self) -> &Tensor<f32> {
        &self.scale
    }

    fn zero_point(&self) -> &ZeroPoints {
        &self.zero_point
    }

    fn observer(&self) -> Option<&dyn Observer> {
        Some(self.observer.as_ref())
    }

    fn applications_per_call(&self) -> u32 {
        self.saved.applications()
    }

    fn set_applications_per_call(&mut self, n: u32) {
        self.saved.set_applications(n);
    }

    fn dtype(&self) -> QDType {
        self.dtype
    }

    fn qscheme(&self) -> QScheme {
        QScheme::PerTensorAffine
    }

    fn quant_range(&self) -> (i64, i64) {
        self.quant_range
    }

    fn ch_axis(&self) -> Option<usize> {
        None
    }

    fn spec(&self) -> FakeQuantSpec {
        let (scale, zero_point) = self.scale_zp().unwrap_or((1.0, 0));
        FakeQuantSpec::FixedQParams {
            scale: f64::from(scale),
            zero_point: i64::from(zero_point),
            dtype: self.dtype,
            quant_min: self.quant_range.0,
            quant_max: self.quant_range.1,
        }
    }

    fn box_clone(&self) -> Box<dyn FakeQuant> {
        Box::new(self.clone())
    }
}

impl Module for FixedQParamsFakeQuantize {
    fn kind(&self) -> ModuleKind {
        ModuleKind::FixedQParamsFakeQuantize
    }

    /// PyTorch's `FixedQParamsFakeQuantize.extra_repr`.
    fn extra_repr(&self) -> String {
        use crate::repr::{torch_qdtype, torch_tensor_f32};
        format!(
            "fake_quant_enabled={}, observer_enabled={}, scale={}, zero_point={}, dtype={}, \
             quant_min={}, quant_max={}, qscheme=torch.per_tensor_affine",
            flag_repr(&self.fake_quant_enabled),
            flag_repr(&self.observer_enabled),
            torch_tensor_f32(self.scale.data()),
            zero_point_repr(&self.zero_point),
            torch_qdtype(self.dtype),
            self.quant_range.0,
            self.quant_range.1,
        )
    }

    /// `(activation_post_process): FixedQParamsObserver()`.
    fn repr_children(&self) -> Vec<(String, crate::repr::ReprTree)> {
        vec![(
            "activation_post_process".to_string(),
            crate::repr::observer_tree(self.observer.as_ref()),
        )]
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let mut saved = std::mem::take(&mut self.saved);
        let out = saved.forward(NAME, input, |x| self.apply(x));
        self.saved = saved;
        out
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        self.saved.backward(NAME, grad_output)
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        f(
            "fake_quant_enabled",
            BufferRef::U8(&self.fake_quant_enabled),
        );
        f("observer_enabled", BufferRef::U8(&self.observer_enabled));
        f("scale", BufferRef::F32(&self.scale));
        if let ZeroPoints::Int(z) = &self.zero_point {
            f("zero_point", BufferRef::I32(z));
        }
        f(
            "activation_post_process.scale",
            BufferRef::F32(&self.observer_scale),
        );
        f(
            "activation_post_process.zero_point",
            BufferRef::I32(&self.observer_zero_point),
        );
    }

    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        f(
            "fake_quant_enabled",
            BufferMut::U8(&mut self.fake_quant_enabled),
        );
        f(
            "observer_enabled",
            BufferMut::U8(&mut self.observer_enabled),
        );
        f("scale", BufferMut::F32(&mut self.scale));
        if let ZeroPoints::Int(z) = &mut self.zero_point {
            f("zero_point", BufferMut::I32(z));
        }
        f(
            "activation_post_process.scale",
            BufferMut::F32(&mut self.observer_scale),
        );
        f(
            "activation_post_process.zero_point",
            BufferMut::I32(&mut self.observer_zero_point),
        );
    }

    fn after_load(&mut self) -> Result<()> {
        self.scale = self.observer_scale.clone();
        self.zero_point = ZeroPoints::Int(self.observer_zero_point.clone());
        let (s, z) = self.scale_zp()?;
        let (qmin, qmax) = self.quant_range;
        *self = Self {
            fake_quant_enabled: self.fake_quant_enabled.clone(),
            observer_enabled: self.observer_enabled.clone(),
            training: self.training,
            ..Self::new(f64::from(s), i64::from(z), self.dtype, qmin, qmax)?
        };
        Ok(())
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}
