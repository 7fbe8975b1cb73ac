//! `HistogramObserver`: a running histogram of everything observed, and qparams from the L2
//! quantization-error search over it (numerics §2.5).

use std::any::Any;

use crate::dtype::QDType;
use crate::error::{QTensorError, Result};
use crate::qscheme::{QParams, QScheme};
use crate::tensor::Tensor;

use super::torch_ops::{cumsum, div_floor, histc, linspace, sum};
use super::uniform::{SchemeFamily, UniformBase, aminmax};
use super::{Observer, ObserverConfig, ObserverSpec};

/// PyTorch's `HistogramObserver` (torch 2.15): `bins` bins over the running `[min_val,
/// max_val]`, rebinned with `_combine_histograms` (each old bin split into `upsample_rate`
/// pieces placed by their midpoints) when the range grows; `calculate_qparams` runs
/// `_non_linear_param_search` and then the MinMax formula on the range it finds.
///
/// Every step reproduces torch's `f32` tensor arithmetic: `histc`'s bin index, `linspace`'s
/// fused multiply-adds, `bucketize`/`bincount`, the cascade order of `torch.sum` (8-lane
/// vectors, as with torch's AVX2 CPU capability; an AVX-512 torch may differ in the last bit of
/// a norm), and the Python-double / tensor-`f32` mix of the search (thresholds compared in
/// `f32`, the error norm's bin widths in `f32`, `dst_nbins = 2^bits` = 256 for 8-bit dtypes even
/// with a reduced range). The goldens match torch bit for bit.
///
/// Inputs: empty tensors are ignored; ±inf elements are dropped (as torch does, and a tensor of
/// only infinities is ignored); NaN is an `Unsupported` error that leaves the observer
/// unchanged (torch's `histc` raises, after having set the buffers to NaN on a first call).
///
/// ```
/// use qtensor::observer::{HistogramObserver, Observer, ObserverConfig};
/// use qtensor::{QDType, QParams, QScheme, Tensor};
///
/// let config = ObserverConfig::new(QDType::QUInt8, QScheme::PerTensorAffine);
/// let mut obs = HistogramObserver::new(config, 2048, 16)?;
/// obs.observe(&Tensor::new(&[4], vec![-1.0, 0.0, 0.5, 3.0])?)?;
/// obs.observe(&Tensor::new(&[2], vec![-2.0, 1.0])?)?; // wider range: rebinned
/// assert_eq!(obs.min_max(), Some((-2.0, 3.0)));
/// assert!(matches!(obs.calculate_qparams()?, QParams::PerTensor { .. }));
/// # Ok::<(), qtensor::QTensorError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramObserver {
    base: UniformBase,
    bins: usize,
    upsample_rate: usize,
    /// `2 ** torch.iinfo(dtype).bits`.
    dst_nbins: f64,
    histogram: Vec<f32>,
    min_val: f32,
    max_val: f32,
}

impl HistogramObserver {
    /// Validates `config` as PyTorch's constructor does (a per-tensor scheme and a valid custom
    /// range; unlike MinMax it accepts symmetric + `reduce_range` + quint8). `bins` and
    /// `upsample_rate` must be positive (torch 2.15 fixes `upsample_rate` at 16).
    pub fn new(config: ObserverConfig, bins: usize, upsample_rate: usize) -> Result<Self> {
        let base = UniformBase::new("HistogramObserver", config, SchemeFamily::PerTensor, false)?;
        if bins == 0 || upsample_rate == 0 {
            return Err(QTensorError::Unsupported(format!(
                "HistogramObserver needs bins > 0 and upsample_rate > 0, got {bins} and \
                 {upsample_rate}"
            )));
        }
        let bits = match base.config.dtype {
            QDType::QInt32 => 32,
            // torch.iinfo(torch.quint4x2).bits is 8
            QDType::QUInt8 | QDType::QInt8 | QDType::QUInt4x2 => 8,
        };
        Ok(HistogramObserver {
            base,
            bins,
            upsample_rate,
            dst_nbins: 2f64.powi(bits),
            histogram: vec![0.0; bins],
            min_val: f32::INFINITY,
            max_val: f32::NEG_INFINITY,
        })
    }

    /// The histogram (`bins` counts over `[min_val, max_val]`; fractional after rebinning).
    pub fn histogram(&self) -> &[f32] {
        &self.histogram
    }

    /// The integer range used for the qparams (`quant_min`, `quant_max` after `reduce_range`).
    pub fn quant_range(&self) -> (i64, i64) {
        (self.base.qmin, self.base.qmax)
    }

    /// `(min_val, max_val)` as PyTorch's buffers hold them (`inf`, `-inf` before the first
    /// observation).
    pub fn range(&self) -> (f32, f32) {
        (self.min_val, self.max_val)
    }

    /// Replaces the recorded state (PyTorch's `_load_from_state_dict` of `histogram`,
    /// `min_val`, `max_val`), e.g. to resume calibration from a saved model. The histogram must
    /// have `bins` finite, non-negative counts and the range must be `(inf, -inf)` (nothing
    /// observed yet) or finite with `min_val <= max_val`; otherwise `Unsupported` and the
    /// observer is unchanged.
    pub fn set_state(&mut self, histogram: &[f32], min_val: f32, max_val: f32) -> Result<()> {
        if histogram.len() != self.bins {
            return Err(QTensorError::Unsupported(format!(
                "HistogramObserver: a histogram of {} bins for an observer with {}",
                histogram.len(),
                self.bins
            )));
        }
        if histogram.iter().any(|c| !(c.is_finite() && *c >= 0.0)) {
            return Err(QTensorError::Unsupported(
                "HistogramObserver: histogram counts must be finite and non-negative".into(),
            ));
        }
        let empty = min_val == f32::INFINITY && max_val == f32::NEG_INFINITY;
        let finite = min_val.is_finite() && max_val.is_finite() && min_val <= max_val;
        if !(empty || finite) {
            return Err(QTensorError::Unsupported(format!(
                "HistogramObserver: range [{min_val}, {max_val}] is not a finite range"
            )));
        }
        self.histogram = histogram.to_vec();
        (self.min_val, self.max_val) = (min_val, max_val);
        Ok(())
    }

    /// The range `_non_linear_param_search` picks (what the qparams are computed from), or
    /// `None` before the first observation.
    pub fn search_range(&self) -> Option<(f32, f32)> {
        (!self.uninitialised_for_qparams()).then(|| self.non_linear_param_search())
    }

    fn uninitialised_for_qparams(&self) -> bool {
        self.min_val == f32::INFINITY && self.max_val == f32::NEG_INFINITY
    }

    /// `torch.histc` over `[min, max]`; the edges are finite here (checked by the callers).
    /// A constant tensor so large that `x ± 1` rounds back to `x` (|x| ≳ 9e15) leaves no width
    /// for the bins: torch's kernel then casts a NaN bin position to an integer (undefined
    /// behaviour), so qstack refuses instead.
    fn histc(&self, x: &[f32], min: f32, max: f32) -> Result<Vec<f32>> {
        histc(x, self.bins, min, max).ok_or_else(|| {
            QTensorError::Unsupported(format!(
                "HistogramObserver: histogram range [{min}, {max}] is not finite or has no \
                 width (a constant tensor too large for the ±1 widening)"
            ))
        })
    }

    /// `_upscale_histogram`: the old histogram, split into `upsample_rate` pieces per bin,
    /// placed in the new range by the pieces' midpoints.
    fn upscale(&self, update_min: f32, update_max: f32) -> Vec<f32> {
        let (bins, up) = (self.bins, self.upsample_rate);
        let n = bins * up;
        let (orig_min, orig_max) = (self.min_val, self.max_val);
        let bin_size = (orig_max - orig_min) / n as f32;
        let half = 0.5 * bin_size;
        let mids = linspace(orig_min, orig_max, n + 1);
        let edges = linspace(update_min, update_max, bins + 1);
        let mut out = vec![0f32; bins];
        for (j, &m) in mids[..n].iter().enumerate() {
            let mid = m + half;
            let upper = edges.partition_point(|&e| e <= mid);
            let bucket = (upper as i64 - 1).clamp(0, bins as i64 - 1) as usize;
            out[bucket] += self.histogram[j / up] / up as f32;
        }
        out
    }

    /// `_combine_histograms` for a grown range.
    fn combine(&self, update: &[f32], new_min: f32, new_max: f32) -> Result<Vec<f32>> {
        if new_min == self.min_val && new_max == self.max_val {
            return Ok(self
                .histogram
                .iter()
                .zip(update)
                .map(|(a, b)| a + b)
                .collect());
        }
        if self.min_val == self.max_val {
            let bin_value = sum(&self.histogram);
            let single = self.histc(&[self.min_val], new_min, new_max)?;
            return Ok(single
                .iter()
                .zip(update)
                .map(|(h, u)| h * bin_value + u)
                .collect());
        }
        let old = self.upscale(new_min, new_max);
        Ok(update.iter().zip(&old).map(|(u, o)| u + o).collect())
    }

    /// `_compute_quantization_error(start, end)`: the L2 error of quantizing the histogram
    /// onto `dst_nbins` levels spanning source bins `start..=end` (an `f32` sum, widened).
    fn quantization_error(&self, start: usize, end: usize) -> f64 {
        let bin_width = (f64::from(self.max_val) - f64::from(self.min_val)) / self.bins as f64;
        let dst_bin_width = bin_width * (end as f64 - start as f64 + 1.0) / self.dst_nbins;
        if dst_bin_width == 0.0 {
            return 0.0;
        }
        let (bw, dbw) = (bin_width as f32, dst_bin_width as f32);
        let half_dst = (dst_bin_width / 2.0) as f32;
        let neg_half_dst = (-dst_bin_width / 2.0) as f32;
        let top = (self.dst_nbins - 1.0) as f32;
        let cube = |v: f32| v * v * v;
        // _get_norm(-dbw/2, dbw/2, density) without the density factor
        let middle = (cube(half_dst) - cube(neg_half_dst)) / 3.0;
        let norms: Vec<f32> = self
            .histogram
            .iter()
            .enumerate()
            .map(|(i, &h)| {
                let begin = (i as f32 - start as f32) * bw;
                let end_ = begin + bw;
                let db = div_floor(begin, dbw).clamp(0.0, top);
                let db_center = (db + 0.5) * dbw;
                let de = div_floor(end_, dbw).clamp(0.0, top);
                let density = h / bw;
                let first = density * ((cube(half_dst) - cube(begin - db_center)) / 3.0);
                let mid = (de - db - 1.0) * (density * middle);
                let de_center = de * dbw + half_dst;
                let last = density * ((cube(end_ - de_center) - cube(neg_half_dst)) / 3.0);
                0.0 + first + mid + last
            })
            .collect();
        f64::from(sum(&norms))
    }

    /// `_non_linear_param_search`: shrink `[start_bin, end_bin]` from the side whose quantile
    /// moved more, while the quantization error does not grow.
    fn non_linear_param_search(&self) -> (f32, f32) {
        let bin_width = (self.max_val - self.min_val) / self.bins as f32;
        let total = f64::from(sum(&self.histogram));
        let c_sum = cumsum(&self.histogram);
        let stepsize = 1e-5f64;
        let (mut alpha, mut beta) = (0.0f64, 1.0f64);
        let (mut start_bin, mut end_bin) = (0usize, self.bins - 1);
        let mut norm_min = f64::INFINITY;
        while alpha < beta {
            let next_alpha = alpha + stepsize;
            let next_beta = beta - stepsize;
            // tensor-vs-Python-float comparisons happen in f32
            let (lo_q, hi_q) = ((next_alpha * total) as f32, (next_beta * total) as f32);
            let mut l = start_bin;
            let mut r = end_bin;
            while l < end_bin && c_sum[l] < lo_q {
                l += 1;
            }
            while r > start_bin && c_sum[r] > hi_q {
                r -= 1;
            }
            let (mut next_start, mut next_end) = (start_bin, end_bin);
            if (l - start_bin) > (end_bin - r) {
                next_start = l;
                alpha = next_alpha;
            } else {
                next_end = r;
                beta = next_beta;
            }
            if next_start == start_bin && next_end == end_bin {
                continue;
            }
            let norm = self.quantization_error(next_start, next_end);
            if norm > norm_min {
                break;
            }
            norm_min = norm;
            start_bin = next_start;
            end_bin = next_end;
        }
        (
            self.min_val + bin_width * start_bin as f32,
            self.min_val + bin_width * (end_bin + 1) as f32,
        )
    }
}

impl Observer for HistogramObserver {
    fn observe(&mut self, x: &Tensor<f32>) -> Result<()> {
        if x.numel() == 0 {
            return Ok(());
        }
        let (mut lo, mut hi) = aminmax(x.data());
        if lo.is_nan() {
            return Err(QTensorError::Unsupported(
                "HistogramObserver: NaN in the observed tensor (torch.histc rejects it)"
                    .to_string(),
            ));
        }
        let finite: Vec<f32>;
        let mut data = x.data();
        if lo == f32::NEG_INFINITY || hi == f32::INFINITY {
            finite = data.iter().copied().filter(|v| v.is_finite()).collect();
            if finite.is_empty() {
                return Ok(());
            }
            data = &finite;
            (lo, hi) = aminmax(data);
        }
        if self.min_val == f32::INFINITY || self.max_val == f32::NEG_INFINITY {
            self.histogram = self.histc(data, lo, hi)?;
            (self.min_val, self.max_val) = (lo, hi);
            return Ok(());
        }
        let (new_min, new_max) = (self.min_val.min(lo), self.max_val.max(hi));
        let update = self.histc(data, new_min, new_max)?;
        if new_min == self.min_val && new_max == self.max_val {
            for (h, u) in self.histogram.iter_mut().zip(&update) {
                *h += u;
            }
        } else {
            self.histogram = self.combine(&update, new_min, new_max)?;
            (self.min_val, self.max_val) = (new_min, new_max);
        }
        Ok(())
    }

    fn calculate_qparams(&self) -> Result<QParams> {
        if self.uninitialised_for_qparams() {
            return Ok(QParams::PerTensor {
                scale: 1.0,
                zero_point: 0,
            });
        }
        let (new_min, new_max) = self.non_linear_param_search();
        self.base.per_tensor_qparams(new_min, new_max)
    }

    fn dtype(&self) -> Option<QDType> {
        Some(self.base.config.dtype)
    }

    fn qscheme(&self) -> QScheme {
        self.base.config.qscheme
    }

    fn spec(&self) -> ObserverSpec {
        ObserverSpec::Histogram {
            config: self.base.config.clone(),
            bins: self.bins,
            upsample_rate: self.upsample_rate,
        }
    }

    fn box_clone(&self) -> Box<dyn Observer> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn min_max(&self) -> Option<(f32, f32)> {
        Some((self.min_val, self.max_val))
    }
}
