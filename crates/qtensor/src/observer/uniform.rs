//! What every uniform-quantization observer shares (PyTorch's
//! `UniformQuantizationObserverBase`): the validated [`ObserverConfig`], the integer range it
//! implies, `torch.aminmax` over a tensor or per channel, and the `_calculate_qparams` step
//! turned into [`QParams`].

use crate::choose_qparams::{ObserverQParams, calculate_qparams};
use crate::dtype::{QDType, calculate_qmin_qmax};
use crate::error::{QTensorError, Result};
use crate::qscheme::{QParams, QScheme};
use crate::tensor::{Tensor, channel_blocks};

use super::ObserverConfig;

/// Which qschemes an observer class accepts (its constructor's `is_per_tensor` /
/// `is_per_channel` check).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SchemeFamily {
    /// `per_tensor_affine` / `per_tensor_symmetric`.
    PerTensor,
    /// The three per-channel schemes.
    PerChannel,
}

/// A config that passed PyTorch's constructor checks, with the integer range it implies.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct UniformBase {
    /// The config as given.
    pub config: ObserverConfig,
    /// `quant_min` after `calculate_qmin_qmax`.
    pub qmin: i64,
    /// `quant_max` after `calculate_qmin_qmax`.
    pub qmax: i64,
    /// Both `quant_min` and `quant_max` were given (`has_customized_qrange`).
    pub has_custom_range: bool,
}

impl UniformBase {
    /// PyTorch's constructor checks, in its order:
    ///
    /// * the qscheme must belong to `family` (`NotImplementedError` in torch);
    /// * a custom range (only when *both* `quant_min` and `quant_max` are given, as in torch;
    ///   a lone bound is ignored) must include 0, have `qmin < qmax` and fit the dtype
    ///   (`calculate_qmin_qmax`); `reduce_range` then halves it;
    /// * `reject_symmetric_reduced_quint8`: MinMax-family and per-channel observers refuse a
    ///   symmetric scheme with `reduce_range` for quint8 (HistogramObserver does not check).
    ///
    /// Every failure is a typed error: `Unsupported` for a scheme or combination torch does not
    /// implement, `InvalidQuantRange` for a bad custom range.
    pub fn new(
        observer: &str,
        config: ObserverConfig,
        family: SchemeFamily,
        reject_symmetric_reduced_quint8: bool,
    ) -> Result<Self> {
        let scheme_ok = match family {
            SchemeFamily::PerTensor => !config.qscheme.is_per_channel(),
            SchemeFamily::PerChannel => config.qscheme.is_per_channel(),
        };
        if !scheme_ok {
            return Err(QTensorError::Unsupported(format!(
                "{observer} does not support qscheme {:?}",
                config.qscheme
            )));
        }
        let custom = match (config.quant_min, config.quant_max) {
            (Some(lo), Some(hi)) => Some((lo, hi)),
            _ => None,
        };
        let (qmin, qmax) = calculate_qmin_qmax(config.dtype, config.reduce_range, custom)?;
        if reject_symmetric_reduced_quint8
            && config.qscheme.is_symmetric()
            && config.reduce_range
            && config.dtype == QDType::QUInt8
        {
            return Err(QTensorError::Unsupported(format!(
                "{observer}: cannot reduce range for symmetric quantization for quint8"
            )));
        }
        Ok(UniformBase {
            config,
            qmin,
            qmax,
            has_custom_range: custom.is_some(),
        })
    }

    /// `_calculate_qparams` for one `(min, max)` pair. Where torch would answer a NaN or
    /// infinite scale or zero point, this is an error instead: `Unsupported` naming the range
    /// when the observed range itself holds NaN or an infinity (the uninitialised `(+inf,
    /// -inf)` excepted: it gives torch's `(1.0, 0)`), `InvalidScale` when a finite range is too
    /// wide for an `f32` scale.
    pub fn qparams_one(&self, min: f32, max: f32) -> Result<ObserverQParams> {
        let uninitialised = min == f32::INFINITY && max == f32::NEG_INFINITY;
        let finite = min.is_finite() && max.is_finite();
        if !(uninitialised || finite) {
            return Err(QTensorError::Unsupported(format!(
                "observed range [{min}, {max}] is not finite (NaN or infinite input): \
                 no quantization parameters"
            )));
        }
        let c = &self.config;
        let p = calculate_qparams(
            min,
            max,
            c.qscheme,
            c.dtype,
            self.qmin,
            self.qmax,
            c.eps,
            self.has_custom_range,
        )?;
        if !p.scale.is_finite() || !p.zero_point.is_finite() {
            return Err(QTensorError::InvalidScale {
                scale: f64::from(p.scale),
            });
        }
        Ok(p)
    }

    /// Per-tensor parameters for the running range `(min, max)`.
    pub fn per_tensor_qparams(&self, min: f32, max: f32) -> Result<QParams> {
        let p = self.qparams_one(min, max)?;
        Ok(QParams::PerTensor {
            scale: f64::from(p.scale),
            // Integral and inside [qmin, qmax] for the per-tensor schemes.
            zero_point: p.zero_point as i64,
        })
    }

    /// Per-channel parameters along `axis`; empty buffers (never observed) give torch's
    /// default one-element `([1.0], [0])`.
    pub fn per_channel_qparams(&self, mins: &[f32], maxs: &[f32], axis: usize) -> Result<QParams> {
        let pairs: Vec<ObserverQParams> = if mins.is_empty() {
            vec![ObserverQParams {
                scale: 1.0,
                zero_point: 0.0,
            }]
        } else {
            mins.iter()
                .zip(maxs)
                .map(|(&lo, &hi)| self.qparams_one(lo, hi))
                .collect::<Result<_>>()?
        };
        Ok(
            if self.config.qscheme == QScheme::PerChannelAffineFloatQParams {
                QParams::PerChannelFloat {
                    scales: pairs.iter().map(|p| p.scale).collect(),
                    // an f32 value widened by calculate_qparams: narrowing is exact
                    zero_points: pairs.iter().map(|p| p.zero_point as f32).collect(),
                    axis,
                }
            } else {
                QParams::PerChannel {
                    scales: pairs.iter().map(|p| f64::from(p.scale)).collect(),
                    zero_points: pairs.iter().map(|p| p.zero_point as i64).collect(),
                    axis,
                }
            },
        )
    }
}

/// `torch.min` / `torch.max` of two values: NaN wins.
pub(crate) fn nan_min(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.min(b)
    }
}

/// See [`nan_min`].
pub(crate) fn nan_max(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

/// `torch.aminmax` of a non-empty slice: NaN anywhere makes both results NaN.
pub(crate) fn aminmax(data: &[f32]) -> (f32, f32) {
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for &v in data {
        if v.is_nan() {
            return (f32::NAN, f32::NAN);
        }
        lo = lo.min(v);
        hi = hi.max(v);
    }
    (lo, hi)
}

/// Per-channel `torch.aminmax` along `axis` (PyTorch permutes `axis` to the front, flattens the
/// rest and reduces along dim 1). `AxisOutOfRange` for a missing axis (torch's `permute`
/// `IndexError`), including every axis of a 0-d tensor.
pub(crate) fn aminmax_per_channel(x: &Tensor<f32>, axis: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    if axis >= x.ndim() {
        return Err(QTensorError::AxisOutOfRange {
            axis,
            ndim: x.ndim(),
        });
    }
    let (outer, channels, inner) = channel_blocks(x.shape(), x.layout(), axis);
    let mut mins = vec![f32::INFINITY; channels];
    let mut maxs = vec![f32::NEG_INFINITY; channels];
    let data = x.data();
    for o in 0..outer {
        for c in 0..channels {
            let start = (o * channels + c) * inner;
            let (lo, hi) = aminmax(&data[start..start + inner]);
            mins[c] = nan_min(mins[c], lo);
            maxs[c] = nan_max(maxs[c], hi);
        }
    }
    Ok((mins, maxs))
}

/// One moving-average step as torch evaluates it on f32 tensors:
/// `m + f32(c * f32(cur - m))`.
pub(crate) fn moving_average(m: f32, cur: f32, c: f32) -> f32 {
    m + c * (cur - m)
}
