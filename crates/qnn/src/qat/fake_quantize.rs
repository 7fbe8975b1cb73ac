//! `FakeQuantize`: an observer (`activation_post_process`) and fake-quant with the observer's
//! current qparams (PyTorch `torch.ao.quantization.FakeQuantize`).

use qtensor::observer::{Observer, ObserverSpec};
use qtensor::{
    QDType, QParams, QScheme, Tensor, fake_quantize_per_channel_affine,
    fake_quantize_per_channel_affine_float_zp, fake_quantize_per_tensor_affine,
};

use super::FakeQuantSpec;
use super::fake_quant::{
    FakeQuant, FakeQuantOutput, SavedMask, ZeroPoints, flag_repr, flag_u8, qparams_repr,
    range_unobserved,
};
use super::observer_args::{ch_axis_of, checked_quant_range, config_of};
use super::observer_state::ObserverState;
use crate::error::{QnnError, Result};
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef};
use crate::value::Value;

const NAME: &str = "FakeQuantize";

/// `FakeQuantize(observer, quant_min, quant_max)`.
///
/// Forward: if `observer_enabled`, observe the input and copy the observer's
/// `calculate_qparams()` into `scale` (f32) and `zero_point` (i32, or f32 for float qparams);
/// then, if `fake_quant_enabled`, fake-quantize per tensor or per channel with the observer's
/// range. Backward is straight-through with the mask. Train/eval mode changes nothing (as in
/// PyTorch). State-dict names: `fake_quant_enabled`, `observer_enabled` (u8 `[1]`), `scale`,
/// `zero_point`, and for min/max observers `activation_post_process.{eps,min_val,max_val}`
/// (plus `activation_post_process.histogram` for the histogram observer).
#[derive(Debug)]
pub struct FakeQuantize {
    observer: Box<dyn Observer>,
    observer_spec: ObserverSpec,
    dtype: QDType,
    qscheme: QScheme,
    quant_range: (i64, i64),
    ch_axis: Option<usize>,
    fake_quant_enabled: Tensor<u8>,
    observer_enabled: Tensor<u8>,
    scale: Tensor<f32>,
    zero_point: ZeroPoints,
    state: Option<ObserverState>,
    saved: SavedMask,
    training: bool,
}

impl Clone for FakeQuantize {
    fn clone(&self) -> Self {
        Self {
            observer: self.observer.box_clone(),
            observer_spec: self.observer_spec.clone(),
            dtype: self.dtype,
            qscheme: self.qscheme,
            quant_range: self.quant_range,
            ch_axis: self.ch_axis,
            fake_quant_enabled: self.fake_quant_enabled.clone(),
            observer_enabled: self.observer_enabled.clone(),
            scale: self.scale.clone(),
            zero_point: self.zero_point.clone(),
            state: self.state.clone(),
            saved: self.saved.clone(),
            training: self.training,
        }
    }
}

impl FakeQuantize {
    /// A fresh module driving an observer built from `observer` (PyTorch's
    /// `FakeQuantize.with_args(observer=..., quant_min=..., quant_max=..., **kwargs)()`).
    ///
    /// `InvalidQParams` if the observer yields no integer qparams, if the custom range is not
    /// inside the dtype's bounds, or if the observer rejects its arguments.
    pub fn new(observer: &ObserverSpec) -> Result<Self> {
        let config = config_of(NAME, observer)?;
        let quant_range = checked_quant_range(NAME, &config)?;
        let built = super::build_observer(observer)?;
        let float_zp = config.qscheme == QScheme::PerChannelAffineFloatQParams;
        Ok(Self {
            observer: built,
            observer_spec: observer.clone(),
            dtype: config.dtype,
            qscheme: config.qscheme,
            quant_range,
            ch_axis: ch_axis_of(observer),
            fake_quant_enabled: flag_u8(true),
            observer_enabled: flag_u8(true),
            scale: Tensor::from_fn(&[1], |_| 1.0),
            zero_point: if float_zp {
                ZeroPoints::Float(Tensor::zeros(&[1]))
            } else {
                ZeroPoints::Int(Tensor::zeros(&[1]))
            },
            state: ObserverState::for_spec(observer, config.eps),
            saved: SavedMask::default(),
            training: true,
        })
    }

    /// Copies the observer's qparams into the `scale` / `zero_point` buffers (resized to match).
    fn store_qparams(&mut self, qparams: &QParams) {
        match qparams {
            QParams::PerTensor { scale, zero_point } => {
                self.scale = Tensor::from_fn(&[1], |_| *scale as f32);
                self.zero_point = self.int_or_float(&[*zero_point as f32], &[*zero_point as i32]);
            }
            QParams::PerChannel {
                scales,
                zero_points,
                ..
            } => {
                self.scale = Tensor::from_fn(&[scales.len()], |i| scales[i] as f32);
                let zf: Vec<f32> = zero_points.iter().map(|&z| z as f32).collect();
                let zi: Vec<i32> = zero_points.iter().map(|&z| z as i32).collect();
                self.zero_point = self.int_or_float(&zf, &zi);
            }
            QParams::PerChannelFloat {
                scales,
                zero_points,
                ..
            } => {
                self.scale = Tensor::from_fn(&[scales.len()], |i| scales[i]);
                let zi: Vec<i32> = zero_points.iter().map(|&z| z as i32).collect();
                self.zero_point = self.int_or_float(zero_points, &zi);
            }
        }
    }

    /// Zero points in the buffer's dtype (`.copy_` into an int32 or float32 buffer).
    fn int_or_float(&self, as_float: &[f32], as_int: &[i32]) -> ZeroPoints {
        match self.zero_point {
            ZeroPoints::Float(_) => {
                ZeroPoints::Float(Tensor::from_fn(&[as_float.len()], |i| as_float[i]))
            }
            ZeroPoints::Int(_) => ZeroPoints::Int(Tensor::from_fn(&[as_int.len()], |i| as_int[i])),
        }
    }

    fn fake_quantize(&self, x: &Tensor<f32>) -> Result<FakeQuantOutput> {
        let (qmin, qmax) = self.quant_range;
        let (output, mask) = match (self.ch_axis, &self.zero_point) {
            (Some(axis), ZeroPoints::Int(zp)) if self.qscheme.is_per_channel() => {
                fake_quantize_per_channel_affine(x, self.scale.data(), zp.data(), axis, qmin, qmax)?
            }
            (Some(axis), ZeroPoints::Float(zp)) if self.qscheme.is_per_channel() => {
                fake_quantize_per_channel_affine_float_zp(
                    x,
                    self.scale.data(),
                    zp.data(),
                    axis,
                    qmin,
                    qmax,
                )?
            }
            (_, ZeroPoints::Int(zp)) => {
                let (Some(&s), Some(&z)) = (self.scale.data().first(), zp.data().first()) else {
                    return Err(self.bad_buffers());
                };
                fake_quantize_per_tensor_affine(x, f64::from(s), i64::from(z), qmin, qmax)?
            }
            (_, ZeroPoints::Float(_)) => return Err(self.bad_buffers()),
        };
        Ok(FakeQuantOutput {
            output,
            mask: Some(mask),
        })
    }

    fn bad_buffers(&self) -> QnnError {
        QnnError::InvalidQParams {
            module: NAME,
            reason: format!(
                "scale {:?} / zero_point {:?} do not fit the {:?} scheme",
                self.scale.shape(),
                self.zero_point,
                self.qscheme
            ),
        }
    }
}

impl FakeQuant for FakeQuantize {
    fn apply(&mut self, x: &Tensor<f32>) -> Result<FakeQuantOutput> {
        if self.observer_enabled() {
            self.observer.observe(x)?;
            let qparams = self.observer.calculate_qparams()?;
            self.store_qparams(&qparams);
            if let Some(state) = &mut self.state {
                state.refresh(self.observer.as_ref());
            }
        }
        if self.fake_quant_enabled() {
            self.fake_quantize(x)
        } else {
            Ok(FakeQuantOutput {
                output: x.clone(),
                mask: None,
            })
        }
    }

    fn calculate_qparams(&self) -> Result<QParams> {
        Ok(self.observer.calculate_qparams()?)
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
        self.qscheme
    }

    fn quant_range(&self) -> (i64, i64) {
        self.quant_range
    }

    fn ch_axis(&self) -> Option<usize> {
        self.ch_axis
    }

    fn spec(&self) -> FakeQuantSpec {
        FakeQuantSpec::FakeQuantize {
            observer: self.observer_spec.clone(),
        }
    }

    fn box_clone(&self) -> Box<dyn FakeQuant> {
        Box::new(self.clone())
    }

    fn expect_channels(&mut self, channels: usize) {
        if !self.qscheme.is_per_channel() {
            return;
        }
        if self.scale.numel() != channels {
            self.scale = Tensor::from_fn(&[channels], |_| 1.0);
            self.zero_point = match self.zero_point {
                ZeroPoints::Float(_) => ZeroPoints::Float(Tensor::zeros(&[channels])),
                ZeroPoints::Int(_) => ZeroPoints::Int(Tensor::zeros(&[channels])),
            };
        }
        // The running range is sized even when the scale already has `channels` entries (one
        // channel: a fresh scale is `[1]` too), so that a trained state dict always fits.
        if let Some(state) = &mut self.state {
            state.expect_channels(channels);
        }
    }
}

impl Module for FakeQuantize {
    fn kind(&self) -> ModuleKind {
        ModuleKind::FakeQuantize
    }

    /// PyTorch's `FakeQuantize.extra_repr` (`ch_axis=-1` for per-tensor observers; `quant_min`
    /// / `quant_max` after `reduce_range`, as the observer holds them).
    fn extra_repr(&self) -> String {
        use crate::repr::{per_channel_range, torch_qdtype, torch_qscheme};
        let unobserved = self.qscheme.is_per_channel()
            && per_channel_range(self.observer.as_ref())
                .is_none_or(|(lo, hi)| range_unobserved(lo, hi));
        let (scale, zero_point) = qparams_repr(&self.scale, &self.zero_point, unobserved);
        format!(
            "fake_quant_enabled={}, observer_enabled={}, quant_min={}, quant_max={}, dtype={}, \
             qscheme={}, ch_axis={}, scale={scale}, zero_point={zero_point}",
            flag_repr(&self.fake_quant_enabled),
            flag_repr(&self.observer_enabled),
            self.quant_range.0,
            self.quant_range.1,
            torch_qdtype(self.dtype),
            torch_qscheme(self.qscheme),
            self.ch_axis.map_or(-1, |a| a as i64),
        )
    }

    /// `(activation_post_process)`: the observer with its current range.
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
        match &self.zero_point {
            ZeroPoints::Int(z) => f("zero_point", BufferRef::I32(z)),
            ZeroPoints::Float(z) => f("zero_point", BufferRef::F32(z)),
        }
        if let Some(state) = &self.state {
            state.visit("activation_post_process.", f);
        }
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
        match &mut self.zero_point {
            ZeroPoints::Int(z) => f("zero_point", BufferMut::I32(z)),
            ZeroPoints::Float(z) => f("zero_point", BufferMut::F32(z)),
        }
        if let Some(state) = &mut self.state {
            state.visit_mut("activation_post_process.", f);
        }
    }

    fn after_load(&mut self) -> Result<()> {
        if let Some(state) = &self.state {
            self.observer = state.restore(&self.observer_spec)?;
        }
        Ok(())
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}
