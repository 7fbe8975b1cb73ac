//! `FusedMovingAvgObsFakeQuantize`: a moving-average min/max range and fake-quant in one op
//! (PyTorch `torch.ao.quantization.FusedMovingAvgObsFakeQuantize`, ATen
//! `fused_moving_avg_obs_fake_quant`).

use qtensor::observer::{Observer, ObserverSpec};
use qtensor::{
    QDType, QParams, QScheme, Tensor, calculate_qmin_qmax, calculate_qparams,
    choose_qparams_fbgemm, fake_quantize_per_channel_affine, fake_quantize_per_tensor_affine,
};

use super::FakeQuantSpec;
use super::fake_quant::{FakeQuant, FakeQuantOutput, SavedMask, ZeroPoints};
use super::observer_args::check_in_dtype;
use crate::error::{QnnError, Result};
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef};
use crate::value::Value;

const NAME: &str = "FusedMovingAvgObsFakeQuantize";

/// `FusedMovingAvgObsFakeQuantize(observer=MovingAverage[PerChannel]MinMaxObserver, quant_min=0,
/// quant_max=255, ...)`.
///
/// Forward, as ATen's `fused_moving_avg_obs_fake_quant`:
/// 1. if the observer is enabled, `running = isinf(running) ? cur : running + c * (cur - running)`
///    with `cur` the input's min/max (per channel along axis 0 for the per-channel scheme);
/// 2. if fake-quant is enabled, `scale`/`zero_point` from fbgemm's `ChooseQuantizationParams`
///    on the running range (symmetric schemes preserve sparsity), then fake-quant with them;
///    otherwise the input passes unchanged.
///
/// [`FakeQuant::calculate_qparams`] is the Python observer formula on the same range, as
/// PyTorch's convert uses it. A spec without a custom range gets PyTorch's defaults 0..255
/// (which qint8 rejects, as PyTorch does). The enable flags are int64 `[1]` buffers here.
#[derive(Clone, Debug)]
pub struct FusedMovingAvgObsFakeQuantize {
    observer_spec: ObserverSpec,
    dtype: QDType,
    qscheme: QScheme,
    quant_range: (i64, i64),
    ch_axis: Option<usize>,
    averaging_constant: f32,
    eps: Tensor<f32>,
    fake_quant_enabled: Vec<i64>,
    observer_enabled: Vec<i64>,
    scale: Tensor<f32>,
    zero_point: ZeroPoints,
    min_val: Tensor<f32>,
    max_val: Tensor<f32>,
    saved: SavedMask,
    training: bool,
}

/// NaN-propagating `(min, max)` of a slice, `None` when empty (as `torch.aminmax`).
fn aminmax(v: &[f32]) -> Option<(f32, f32)> {
    let first = *v.first()?;
    Some(v.iter().fold((first, first), |(lo, hi), &x| {
        if lo.is_nan() || x.is_nan() {
            (f32::NAN, f32::NAN)
        } else {
            (lo.min(x), hi.max(x))
        }
    }))
}

/// One moving-average step of the fused kernel (scalar f32 arithmetic).
fn moving_average(running: f32, cur: f32, c: f32) -> f32 {
    if running.is_infinite() {
        cur
    } else {
        running + c * (cur - running)
    }
}

impl FusedMovingAvgObsFakeQuantize {
    /// A fresh module from a `MovingAverageMinMax` or `MovingAveragePerChannelMinMax` spec
    /// (`InvalidQParams` for any other observer or a range outside the dtype).
    pub fn new(observer: &ObserverSpec) -> Result<Self> {
        let (config, ch_axis, averaging_constant) = match observer {
            ObserverSpec::MovingAverageMinMax {
                config,
                averaging_constant,
            } => (config, None, *averaging_constant),
            ObserverSpec::MovingAveragePerChannelMinMax {
                config,
                ch_axis,
                averaging_constant,
            } => (config, Some(*ch_axis), *averaging_constant),
            other => {
                return Err(QnnError::InvalidQParams {
                    module: NAME,
                    reason: format!(
                        "the fused module only works with moving-average min/max observers, got {other:?}"
                    ),
                });
            }
        };
        if config.qscheme.is_per_channel() != ch_axis.is_some()
            || config.qscheme == QScheme::PerChannelAffineFloatQParams
        {
            return Err(QnnError::InvalidQParams {
                module: NAME,
                reason: format!(
                    "scheme {:?} does not fit observer {observer:?}",
                    config.qscheme
                ),
            });
        }
        let custom = (
            config.quant_min.unwrap_or(0),
            config.quant_max.unwrap_or(255),
        );
        check_in_dtype(NAME, config.dtype, custom.0, custom.1)?;
        let quant_range = calculate_qmin_qmax(config.dtype, config.reduce_range, Some(custom))?;
        let (min_val, max_val) = match ch_axis {
            None => (
                Tensor::scalar(f32::INFINITY),
                Tensor::scalar(f32::NEG_INFINITY),
            ),
            Some(_) => (Tensor::zeros(&[0]), Tensor::zeros(&[0])),
        };
        Ok(Self {
            observer_spec: observer.clone(),
            dtype: config.dtype,
            qscheme: config.qscheme,
            quant_range,
            ch_axis,
            averaging_constant,
            eps: Tensor::from_fn(&[1], |_| config.eps),
            fake_quant_enabled: vec![1],
            observer_enabled: vec![1],
            scale: Tensor::from_fn(&[1], |_| 1.0),
            zero_point: ZeroPoints::Int(Tensor::zeros(&[1])),
            min_val,
            max_val,
            saved: SavedMask::default(),
            training: true,
        })
    }

    /// The running minimum (0-d per tensor, one per channel).
    pub fn min_val(&self) -> &Tensor<f32> {
        &self.min_val
    }

    /// The running maximum.
    pub fn max_val(&self) -> &Tensor<f32> {
        &self.max_val
    }

    /// ATen's first-call resize of the per-channel buffers (running range `inf` / `-inf`).
    fn resize_channels(&mut self, c: usize) {
        self.min_val = Tensor::from_fn(&[c], |_| f32::INFINITY);
        self.max_val = Tensor::from_fn(&[c], |_| f32::NEG_INFINITY);
        self.scale = Tensor::from_fn(&[c], |_| 1.0);
        self.zero_point = ZeroPoints::Int(Tensor::zeros(&[c]));
    }

    /// Per-channel `(min, max)` of `x` along axis 0 (after the axis check).
    fn channel_minmax(x: &Tensor<f32>) -> Result<Vec<(f32, f32)>> {
        let x = x.to_row_major()?;
        let c = x.shape().first().copied().unwrap_or(0);
        let inner = x.numel() / c.max(1);
        (0..c)
            .map(|i| aminmax(&x.data()[i * inner..(i + 1) * inner]).ok_or_else(empty_input))
            .collect()
    }

    fn observe(&mut self, x: &Tensor<f32>) -> Result<()> {
        let c = self.averaging_constant;
        let cur = match self.ch_axis {
            None => vec![aminmax(x.data()).ok_or_else(empty_input)?],
            Some(_) => Self::channel_minmax(x)?,
        };
        if cur.len() != self.min_val.numel() {
            return Err(QnnError::ShapeMismatch {
                what: format!("{NAME} channels of the input vs the running range"),
                expected: vec![self.min_val.numel()],
                got: vec![cur.len()],
            });
        }
        for (i, (lo, hi)) in cur.into_iter().enumerate() {
            let mn = &mut self.min_val.data_mut()[i];
            *mn = moving_average(*mn, lo, c);
            let mx = &mut self.max_val.data_mut()[i];
            *mx = moving_average(*mx, hi, c);
        }
        Ok(())
    }

    /// fbgemm's qparams for the running range, into the buffers.
    fn choose_qparams(&mut self) {
        let (qmin, qmax) = self.quant_range;
        let symmetric = self.qscheme.is_symmetric();
        let (scales, zps): (Vec<f32>, Vec<i32>) = self
            .min_val
            .data()
            .iter()
            .zip(self.max_val.data())
            .map(|(&lo, &hi)| {
                choose_qparams_fbgemm(lo, hi, qmin as i32, qmax as i32, symmetric, false)
            })
            .unzip();
        let n = scales.len();
        self.scale = Tensor::from_fn(&[n], |i| scales[i]);
        self.zero_point = ZeroPoints::Int(Tensor::from_fn(&[n], |i| zps[i]));
    }

    fn int_zero_points(&self) -> Result<&Tensor<i32>> {
        match &self.zero_point {
            ZeroPoints::Int(z) if z.numel() == self.scale.numel() => Ok(z),
            other => Err(QnnError::InvalidQParams {
                module: NAME,
                reason: format!(
                    "zero_point {other:?} does not match scale {:?}",
                    self.scale.shape()
                ),
            }),
        }
    }
}

fn empty_buffers() -> QnnError {
    QnnError::InvalidQParams {
        module: NAME,
        reason: "the scale / running range buffers are empty".into(),
    }
}

fn empty_input() -> QnnError {
    QnnError::InvalidConfig {
        module: NAME,
        reason: "cannot compute the min/max of an empty tensor (or channel)".into(),
    }
}

impl FakeQuant for FusedMovingAvgObsFakeQuantize {
    fn apply(&mut self, x: &Tensor<f32>) -> Result<FakeQuantOutput> {
        if let Some(axis) = self.ch_axis {
            if axis >= x.ndim() {
                return Err(QnnError::DimOutOfRange {
                    module: NAME,
                    dim: axis as isize,
                    ndim: x.ndim(),
                });
            }
            if axis != 0 {
                return Err(QnnError::InvalidQParams {
                    module: NAME,
                    reason: format!(
                        "per-channel fused fake-quant supports only ch_axis 0, got {axis}"
                    ),
                });
            }
            if self.min_val.numel() == 0 {
                self.resize_channels(x.shape()[0]);
            }
        }
        if self.observer_enabled() {
            self.observe(x)?;
        }
        if !self.fake_quant_enabled() {
            return Ok(FakeQuantOutput {
                output: x.clone(),
                mask: None,
            });
        }
        self.choose_qparams();
        let (qmin, qmax) = self.quant_range;
        let zp = self.int_zero_points()?;
        let (output, mask) = match self.ch_axis {
            Some(axis) => {
                fake_quantize_per_channel_affine(x, self.scale.data(), zp.data(), axis, qmin, qmax)?
            }
            None => {
                let (Some(&scale), Some(&z)) = (self.scale.data().first(), zp.data().first())
                else {
                    return Err(empty_buffers());
                };
                fake_quantize_per_tensor_affine(x, f64::from(scale), i64::from(z), qmin, qmax)?
            }
        };
        Ok(FakeQuantOutput {
            output,
            mask: Some(mask),
        })
    }

    fn calculate_qparams(&self) -> Result<QParams> {
        let (qmin, qmax) = self.quant_range;
        let eps = self.eps.data().first().copied().unwrap_or(f32::EPSILON);
        let one = |lo: f32, hi: f32| {
            calculate_qparams(lo, hi, self.qscheme, self.dtype, qmin, qmax, eps, true)
        };
        match self.ch_axis {
            None => {
                let (Some(&lo), Some(&hi)) =
                    (self.min_val.data().first(), self.max_val.data().first())
                else {
                    return Err(empty_buffers());
                };
                let p = one(lo, hi)?;
                Ok(QParams::PerTensor {
                    scale: f64::from(p.scale),
                    zero_point: p.zero_point as i64,
                })
            }
            Some(axis) if self.min_val.numel() == 0 => Ok(QParams::PerChannel {
                scales: vec![1.0],
                zero_points: vec![0],
                axis,
            }),
            Some(axis) => {
                let (scales, zero_points) = self
                    .min_val
                    .data()
                    .iter()
                    .zip(self.max_val.data())
                    .map(|(&lo, &hi)| {
                        one(lo, hi).map(|p| (f64::from(p.scale), p.zero_point as i64))
                    })
                    .collect::<qtensor::Result<Vec<_>>>()?
                    .into_iter()
                    .unzip();
                Ok(QParams::PerChannel {
                    scales,
                    zero_points,
                    axis,
                })
            }
        }
    }

    fn fake_quant_enabled(&self) -> bool {
        self.fake_quant_enabled.first() == Some(&1)
    }

    fn observer_enabled(&self) -> bool {
        self.observer_enabled.first() == Some(&1)
    }

    fn enable_fake_quant(&mut self, enabled: bool) {
        self.fake_quant_enabled = vec![i64::from(enabled)];
    }

    fn enable_observer(&mut self, enabled: bool) {
        self.observer_enabled = vec![i64::from(enabled)];
    }

    fn scale(&self) -> &Tensor<f32> {
        &self.scale
    }

    fn zero_point(&self) -> &ZeroPoints {
        &self.zero_point
    }

    fn observer(&self) -> Option<&dyn Observer> {
        None
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
        FakeQuantSpec::FusedMovingAvgObs {
            observer: self.observer_spec.clone(),
        }
    }

    fn box_clone(&self) -> Box<dyn FakeQuant> {
        Box::new(self.clone())
    }

    fn expect_channels(&mut self, channels: usize) {
        if self.ch_axis.is_some() && self.min_val.numel() == 0 {
            self.resize_channels(channels);
        }
    }
}

impl Module for FusedMovingAvgObsFakeQuantize {
    fn kind(&self) -> ModuleKind {
        ModuleKind::FusedMovingAvgObsFakeQuantize
    }

    fn extra_repr(&self) -> String {
        use crate::repr::{py_bool, torch_qdtype, torch_qscheme, torch_tensor_i64};
        let unobserved = self.ch_axis.is_some()
            && super::fake_quant::range_unobserved(self.min_val.data(), self.max_val.data());
        let (scale, zero_point) =
            super::fake_quant::qparams_repr(&self.scale, &self.zero_point, unobserved);
        let reduce_range = matches!(
            &self.observer_spec,
            ObserverSpec::MovingAverageMinMax { config, .. }
                | ObserverSpec::MovingAveragePerChannelMinMax { config, .. }
                if config.reduce_range
        );
        format!(
            "fake_quant_enabled={}, observer_enabled={}, scale={scale}, zero_point={zero_point}, \
             dtype={}, quant_min={}, quant_max={}, qscheme={}, reduce_range={}",
            torch_tensor_i64(&self.fake_quant_enabled),
            torch_tensor_i64(&self.observer_enabled),
            torch_qdtype(self.dtype),
            self.quant_range.0,
            self.quant_range.1,
            torch_qscheme(self.qscheme),
            py_bool(reduce_range)
        )
    }

    /// `(activation_post_process)`: PyTorch's moving-average observer, whose `min_val` /
    /// `max_val` buffers the fused op updates (here: the module's running range).
    fn repr_children(&self) -> Vec<(String, crate::repr::ReprTree)> {
        let class = crate::repr::observer_class(&self.observer_spec);
        let extra = if self.ch_axis.is_some() {
            // PyTorch's per-channel range is empty until the first forward.
            let unobserved =
                super::fake_quant::range_unobserved(self.min_val.data(), self.max_val.data());
            let (lo, hi) = if unobserved {
                (&[][..], &[][..])
            } else {
                (self.min_val.data(), self.max_val.data())
            };
            crate::repr::per_channel_min_max_repr(lo, hi)
        } else {
            let first = |t: &Tensor<f32>, empty: f32| t.data().first().copied().unwrap_or(empty);
            crate::repr::min_max_repr(
                first(&self.min_val, f32::INFINITY),
                first(&self.max_val, f32::NEG_INFINITY),
            )
        };
        vec![(
            "activation_post_process".to_string(),
            crate::repr::ReprTree::leaf(class, extra),
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
            BufferRef::I64s(&self.fake_quant_enabled),
        );
        f("observer_enabled", BufferRef::I64s(&self.observer_enabled));
        f("scale", BufferRef::F32(&self.scale));
        if let ZeroPoints::Int(z) = &self.zero_point {
            f("zero_point", BufferRef::I32(z));
        }
        f("activation_post_process.eps", BufferRef::F32(&self.eps));
        f(
            "activation_post_process.min_val",
            BufferRef::F32(&self.min_val),
        );
        f(
            "activation_post_process.max_val",
            BufferRef::F32(&self.max_val),
        );
    }

    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        f(
            "fake_quant_enabled",
            BufferMut::I64s(&mut self.fake_quant_enabled),
        );
        f(
            "observer_enabled",
            BufferMut::I64s(&mut self.observer_enabled),
        );
        f("scale", BufferMut::F32(&mut self.scale));
        if let ZeroPoints::Int(z) = &mut self.zero_point {
            f("zero_point", BufferMut::I32(z));
        }
        f("activation_post_process.eps", BufferMut::F32(&mut self.eps));
        f(
            "activation_post_process.min_val",
            BufferMut::F32(&mut self.min_val),
        );
        f(
            "activation_post_process.max_val",
            BufferMut::F32(&mut self.max_val),
        );
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}
