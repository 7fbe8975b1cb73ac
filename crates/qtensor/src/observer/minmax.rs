//! `MinMaxObserver`: the running minimum and maximum of everything observed.

use std::any::Any;

use crate::dtype::QDType;
use crate::error::Result;
use crate::qscheme::{QParams, QScheme};
use crate::tensor::Tensor;

use super::uniform::{SchemeFamily, UniformBase, aminmax, nan_max, nan_min};
use super::{Observer, ObserverConfig, ObserverSpec};

/// PyTorch's `MinMaxObserver`: `min_val = min(min_val, min(x))`, `max_val = max(max_val,
/// max(x))`, starting from `(+inf, -inf)`.
///
/// NaN follows torch: a NaN anywhere in an observed tensor makes both buffers NaN for good, and
/// `calculate_qparams` then fails with `Unsupported` (torch returns a NaN scale). Infinities
/// are kept in the buffers as torch keeps them, and an infinite range fails the same way; a
/// finite range too wide for an `f32` scale (beyond `f32::MAX`) is `InvalidScale`.
/// Empty tensors are ignored.
///
/// ```
/// use qtensor::observer::{MinMaxObserver, Observer, ObserverConfig};
/// use qtensor::{QDType, QParams, QScheme, Tensor};
///
/// let mut obs = MinMaxObserver::new(ObserverConfig::new(QDType::QUInt8, QScheme::PerTensorAffine))?;
/// obs.observe(&Tensor::new(&[3], vec![-1.0, 0.5, 3.0])?)?;
/// assert_eq!(obs.min_max(), Some((-1.0, 3.0)));
/// let QParams::PerTensor { scale, zero_point } = obs.calculate_qparams()? else { unreachable!() };
/// assert_eq!((scale, zero_point), (f64::from(4.0f32 / 255.0), 64));
/// # Ok::<(), qtensor::QTensorError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MinMaxObserver {
    base: UniformBase,
    min_val: f32,
    max_val: f32,
}

impl MinMaxObserver {
    /// Validates `config` as PyTorch's constructor does: a per-tensor scheme, a valid custom
    /// range, and not symmetric + `reduce_range` + quint8.
    pub fn new(config: ObserverConfig) -> Result<Self> {
        Ok(MinMaxObserver {
            base: UniformBase::new("MinMaxObserver", config, SchemeFamily::PerTensor, true)?,
            min_val: f32::INFINITY,
            max_val: f32::NEG_INFINITY,
        })
    }

    /// The integer range used for the qparams (`quant_min`, `quant_max` after `reduce_range`).
    pub fn quant_range(&self) -> (i64, i64) {
        (self.base.qmin, self.base.qmax)
    }

    /// PyTorch's `reset_min_max_vals`: back to `(+inf, -inf)`.
    pub fn reset_min_max_vals(&mut self) {
        self.min_val = f32::INFINITY;
        self.max_val = f32::NEG_INFINITY;
    }
}

impl Observer for MinMaxObserver {
    fn observe(&mut self, x: &Tensor<f32>) -> Result<()> {
        if x.numel() == 0 {
            return Ok(());
        }
        let (lo, hi) = aminmax(x.data());
        self.min_val = nan_min(lo, self.min_val);
        self.max_val = nan_max(hi, self.max_val);
        Ok(())
    }

    fn calculate_qparams(&self) -> Result<QParams> {
        self.base.per_tensor_qparams(self.min_val, self.max_val)
    }

    fn dtype(&self) -> Option<QDType> {
        Some(self.base.config.dtype)
    }

    fn qscheme(&self) -> QScheme {
        self.base.config.qscheme
    }

    fn spec(&self) -> ObserverSpec {
        ObserverSpec::MinMax(self.base.config.clone())
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
