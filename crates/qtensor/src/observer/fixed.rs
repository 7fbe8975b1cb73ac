//! `FixedQParamsObserver`: always the same scale and zero point (sigmoid, tanh, softmax, …).

use std::any::Any;

use crate::dtype::QDType;
use crate::error::{QTensorError, Result};
use crate::qscheme::{QParams, QScheme};
use crate::tensor::Tensor;

use super::{Observer, ObserverSpec};

/// PyTorch's `FixedQParamsObserver`: records nothing and answers its fixed parameters as torch
/// stores them, the scale rounded to `f32` (`torch.tensor([scale], dtype=torch.float)`) and the
/// zero point as `int32`.
///
/// Stricter than torch, which accepts anything: the `f32` scale must be finite and positive
/// (`InvalidScale`), `quant_min < quant_max` (`InvalidQuantRange`) and the zero point must lie
/// in `[quant_min, quant_max]` (`ZeroPointOutOfRange`).
///
/// ```
/// use qtensor::observer::{FixedQParamsObserver, Observer};
/// use qtensor::{QDType, QParams};
///
/// // torch's default_fixed_qparams_range_neg1to1_observer (tanh)
/// let obs = FixedQParamsObserver::new(2.0 / 256.0, 128, QDType::QUInt8, 0, 255)?;
/// assert_eq!(obs.calculate_qparams()?, QParams::PerTensor { scale: 0.0078125, zero_point: 128 });
/// # Ok::<(), qtensor::QTensorError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FixedQParamsObserver {
    scale: f64,
    zero_point: i64,
    dtype: QDType,
    quant_min: i64,
    quant_max: i64,
}

impl FixedQParamsObserver {
    /// Checks the parameters (see the type docs) and keeps them.
    pub fn new(
        scale: f64,
        zero_point: i64,
        dtype: QDType,
        quant_min: i64,
        quant_max: i64,
    ) -> Result<Self> {
        let stored = scale as f32;
        if !(stored.is_finite() && stored > 0.0) {
            return Err(QTensorError::InvalidScale { scale });
        }
        if quant_min >= quant_max {
            return Err(QTensorError::InvalidQuantRange {
                qmin: quant_min,
                qmax: quant_max,
                reason: "qmin must be strictly less than qmax",
            });
        }
        if !(quant_min..=quant_max).contains(&zero_point) || i32::try_from(zero_point).is_err() {
            return Err(QTensorError::ZeroPointOutOfRange {
                zero_point,
                qmin: quant_min,
                qmax: quant_max,
            });
        }
        Ok(FixedQParamsObserver {
            scale,
            zero_point,
            dtype,
            quant_min,
            quant_max,
        })
    }

    /// `(quant_min, quant_max)` as given.
    pub fn quant_range(&self) -> (i64, i64) {
        (self.quant_min, self.quant_max)
    }
}

impl Observer for FixedQParamsObserver {
    fn observe(&mut self, _x: &Tensor<f32>) -> Result<()> {
        Ok(())
    }

    fn calculate_qparams(&self) -> Result<QParams> {
        Ok(QParams::PerTensor {
            scale: f64::from(self.scale as f32),
            zero_point: self.zero_point,
        })
    }

    fn dtype(&self) -> Option<QDType> {
        Some(self.dtype)
    }

    fn qscheme(&self) -> QScheme {
        QScheme::PerTensorAffine
    }

    fn spec(&self) -> ObserverSpec {
        ObserverSpec::FixedQParams {
            scale: self.scale,
            zero_point: self.zero_point,
            dtype: self.dtype,
            quant_min: self.quant_min,
            quant_max: self.quant_max,
        }
    }

    fn box_clone(&self) -> Box<dyn Observer> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
