//! `PerChannelMinMaxObserver` and `MovingAveragePerChannelMinMaxObserver`: running (or moving
//! average) min and max for each slice along a channel axis (numerics §2.4).

use std::any::Any;

use crate::dtype::QDType;
use crate::error::{QTensorError, Result};
use crate::qscheme::{QParams, QScheme};
use crate::tensor::Tensor;

use super::uniform::{
    SchemeFamily, UniformBase, aminmax_per_channel, moving_average, nan_max, nan_min,
};
use super::{Observer, ObserverConfig, ObserverSpec};

/// Per-channel buffers shared by both per-channel observers: empty until the first non-empty
/// tensor, then one `(min, max)` per channel.
#[derive(Clone, Debug, PartialEq)]
struct ChannelRanges {
    base: UniformBase,
    ch_axis: usize,
    min_vals: Vec<f32>,
    max_vals: Vec<f32>,
}

impl ChannelRanges {
    fn new(observer: &str, config: ObserverConfig, ch_axis: usize) -> Result<Self> {
        Ok(ChannelRanges {
            base: UniformBase::new(observer, config, SchemeFamily::PerChannel, true)?,
            ch_axis,
            min_vals: Vec::new(),
            max_vals: Vec::new(),
        })
    }

    /// Computes this tensor's per-channel range and merges it into the buffers with
    /// `merge_min(old, new)` and `merge_max(old, new)`. Empty
    /// tensors are ignored; a missing axis is `AxisOutOfRange`; a channel count that differs
    /// from the buffers' is `ChannelMismatch` (torch fails the same way, except that it
    /// broadcasts a count of 1 against any other: qstack rejects that too).
    fn update(
        &mut self,
        x: &Tensor<f32>,
        merge_min: impl Fn(f32, f32) -> f32,
        merge_max: impl Fn(f32, f32) -> f32,
    ) -> Result<()> {
        if x.numel() == 0 {
            return Ok(());
        }
        let (mins, maxs) = aminmax_per_channel(x, self.ch_axis)?;
        if self.min_vals.is_empty() {
            (self.min_vals, self.max_vals) = (mins, maxs);
            return Ok(());
        }
        if mins.len() != self.min_vals.len() {
            return Err(QTensorError::ChannelMismatch {
                expected: self.min_vals.len(),
                got: mins.len(),
            });
        }
        for (m, cur) in self.min_vals.iter_mut().zip(mins) {
            *m = merge_min(*m, cur);
        }
        for (m, cur) in self.max_vals.iter_mut().zip(maxs) {
            *m = merge_max(*m, cur);
        }
        Ok(())
    }

    fn qparams(&self) -> Result<QParams> {
        self.base
            .per_channel_qparams(&self.min_vals, &self.max_vals, self.ch_axis)
    }
}

/// PyTorch's `PerChannelMinMaxObserver`: running per-channel min and max along `ch_axis`.
///
/// Schemes: `PerChannelAffine`, `PerChannelSymmetric`, `PerChannelAffineFloatQParams` (which
/// gives [`QParams::PerChannelFloat`]). Before any observation `calculate_qparams` returns
/// torch's one-element default `([1.0], [0])`. NaN in a channel makes that channel's buffers
/// NaN and `calculate_qparams` an `Unsupported` error.
///
/// ```
/// use qtensor::observer::{Observer, ObserverConfig, PerChannelMinMaxObserver};
/// use qtensor::{QDType, QParams, QScheme, Tensor};
///
/// let config = ObserverConfig::new(QDType::QInt8, QScheme::PerChannelSymmetric);
/// let mut obs = PerChannelMinMaxObserver::new(config, 0)?;
/// obs.observe(&Tensor::new(&[2, 2], vec![-1.0, 0.5, 2.0, 0.25])?)?;
/// assert_eq!((obs.min_vals(), obs.max_vals()), (&[-1.0, 0.25][..], &[0.5, 2.0][..]));
/// let QParams::PerChannel { scales, zero_points, axis } = obs.calculate_qparams()? else {
///     unreachable!()
/// };
/// assert_eq!((scales[1], zero_points, axis), (f64::from(2.0f32 / 127.5), vec![0, 0], 0));
/// # Ok::<(), qtensor::QTensorError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct PerChannelMinMaxObserver {
    ranges: ChannelRanges,
}

impl PerChannelMinMaxObserver {
    /// Validates `config` as PyTorch's constructor does: a per-channel scheme, a valid custom
    /// range, and not symmetric + `reduce_range` + quint8. The axis is checked per tensor.
    pub fn new(config: ObserverConfig, ch_axis: usize) -> Result<Self> {
        Ok(PerChannelMinMaxObserver {
            ranges: ChannelRanges::new("PerChannelMinMaxObserver", config, ch_axis)?,
        })
    }

    /// The channel axis.
    pub fn ch_axis(&self) -> usize {
        self.ranges.ch_axis
    }

    /// The per-channel `min_val` buffer (empty before the first observation).
    pub fn min_vals(&self) -> &[f32] {
        &self.ranges.min_vals
    }

    /// The per-channel `max_val` buffer (empty before the first observation).
    pub fn max_vals(&self) -> &[f32] {
        &self.ranges.max_vals
    }

    /// The integer range used for the qparams (`quant_min`, `quant_max` after `reduce_range`).
    pub fn quant_range(&self) -> (i64, i64) {
        (self.ranges.base.qmin, self.ranges.base.qmax)
    }

    /// PyTorch's `reset_min_max_vals`: back to empty buffers.
    pub fn reset_min_max_vals(&mut self) {
        self.ranges.min_vals.clear();
        self.ranges.max_vals.clear();
    }
}

/// PyTorch's `MovingAveragePerChannelMinMaxObserver`: the first non-empty tensor sets the
/// per-channel buffers, later ones move them by `m + c * (cur - m)` in `f32`. Otherwise as
/// [`PerChannelMinMaxObserver`].
#[derive(Clone, Debug, PartialEq)]
pub struct MovingAveragePerChannelMinMaxObserver {
    ranges: ChannelRanges,
    averaging_constant: f32,
}

impl MovingAveragePerChannelMinMaxObserver {
    /// Validates `config` as [`PerChannelMinMaxObserver::new`] does.
    pub fn new(config: ObserverConfig, ch_axis: usize, averaging_constant: f32) -> Result<Self> {
        Ok(MovingAveragePerChannelMinMaxObserver {
            ranges: ChannelRanges::new("MovingAveragePerChannelMinMaxObserver", config, ch_axis)?,
            averaging_constant,
        })
    }

    /// The channel axis.
    pub fn ch_axis(&self) -> usize {
        self.ranges.ch_axis
    }

    /// The averaging constant `c`.
    pub fn averaging_constant(&self) -> f32 {
        self.averaging_constant
    }

    /// The per-channel `min_val` buffer (empty before the first observation).
    pub fn min_vals(&self) -> &[f32] {
        &self.ranges.min_vals
    }

    /// The per-channel `max_val` buffer (empty before the first observation).
    pub fn max_vals(&self) -> &[f32] {
        &self.ranges.max_vals
    }

    /// The integer range used for the qparams (`quant_min`, `quant_max` after `reduce_range`).
    pub fn quant_range(&self) -> (i64, i64) {
        (self.ranges.base.qmin, self.ranges.base.qmax)
    }

    /// PyTorch's `reset_min_max_vals`: back to empty buffers.
    pub fn reset_min_max_vals(&mut self) {
        self.ranges.min_vals.clear();
        self.ranges.max_vals.clear();
    }
}

impl Observer for PerChannelMinMaxObserver {
    fn observe(&mut self, x: &Tensor<f32>) -> Result<()> {
        // torch.min(cur, running) / torch.max(cur, running): NaN wins either way.
        self.ranges
            .update(x, |m, cur| nan_min(cur, m), |m, cur| nan_max(cur, m))
    }

    fn calculate_qparams(&self) -> Result<QParams> {
        self.ranges.qparams()
    }

    fn dtype(&self) -> Option<QDType> {
        Some(self.ranges.base.config.dtype)
    }

    fn qscheme(&self) -> QScheme {
        self.ranges.base.config.qscheme
    }

    fn spec(&self) -> ObserverSpec {
        ObserverSpec::PerChannelMinMax {
            config: self.ranges.base.config.clone(),
            ch_axis: self.ranges.ch_axis,
        }
    }

    fn box_clone(&self) -> Box<dyn Observer> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Observer for MovingAveragePerChannelMinMaxObserver {
    fn observe(&mut self, x: &Tensor<f32>) -> Result<()> {
        let c = self.averaging_constant;
        let step = move |m: f32, cur: f32| moving_average(m, cur, c);
        self.ranges.update(x, step, step)
    }

    fn calculate_qparams(&self) -> Result<QParams> {
        self.ranges.qparams()
    }

    fn dtype(&self) -> Option<QDType> {
        Some(self.ranges.base.config.dtype)
    }

    fn qscheme(&self) -> QScheme {
        self.ranges.base.config.qscheme
    }

    fn spec(&self) -> ObserverSpec {
        ObserverSpec::MovingAveragePerChannelMinMax {
            config: self.ranges.base.config.clone(),
            ch_axis: self.ranges.ch_axis,
            averaging_constant: self.averaging_constant,
        }
    }

    fn box_clone(&self) -> Box<dyn Observer> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
