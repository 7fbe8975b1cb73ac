//! `MovingAverageMinMaxObserver`: an exponential moving average of each batch's min and max.

use std::any::Any;

use crate::dtype::QDType;
use crate::error::Result;
use crate::qscheme::{QParams, QScheme};
use crate::tensor::Tensor;

use super::uniform::{SchemeFamily, UniformBase, aminmax, moving_average};
use super::{Observer, ObserverConfig, ObserverSpec};

/// PyTorch's `MovingAverageMinMaxObserver`: the first non-empty batch sets `(min, max)` to its
/// `aminmax`; later batches move them by `m + c * (cur - m)` in `f32` (numerics §2.3).
///
/// "First" means the buffers are still exactly `(+inf, -inf)`, as in torch. NaN propagates
/// (the buffers stay NaN and `calculate_qparams` fails with `Unsupported`, where torch returns
/// a NaN scale). Empty tensors are ignored.
///
/// ```
/// use qtensor::observer::{MovingAverageMinMaxObserver, Observer, ObserverConfig};
/// use qtensor::{QDType, QScheme, Tensor};
///
/// let config = ObserverConfig::new(QDType::QUInt8, QScheme::PerTensorAffine);
/// let mut obs = MovingAverageMinMaxObserver::new(config, 0.5)?;
/// obs.observe(&Tensor::new(&[2], vec![0.0, 2.0])?)?;
/// obs.observe(&Tensor::new(&[2], vec![-2.0, 4.0])?)?;
/// assert_eq!(obs.min_max(), Some((-1.0, 3.0)));
/// # Ok::<(), qtensor::QTensorError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MovingAverageMinMaxObserver {
    base: UniformBase,
    averaging_constant: f32,
    min_val: f32,
    max_val: f32,
}

impl MovingAverageMinMaxObserver {
    /// Validates `config` as PyTorch's constructor does (the `MinMaxObserver` checks);
    /// any `averaging_constant` is accepted, as in torch.
    pub fn new(config: ObserverConfig, averaging_constant: f32) -> Result<Self> {
        Ok(MovingAverageMinMaxObserver {
            base: UniformBase::new(
                "MovingAverageMinMaxObserver",
                config,
                SchemeFamily::PerTensor,
                true,
            )?,
            averaging_constant,
            min_val: f32::INFINITY,
            max_val: f32::NEG_INFINITY,
        })
    }

    /// The averaging constant `c`.
    pub fn averaging_constant(&self) -> f32 {
        self.averaging_constant
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

impl Observer for MovingAverageMinMaxObserver {
    fn observe(&mut self, x: &Tensor<f32>) -> Result<()> {
        if x.numel() == 0 {
            return Ok(());
        }
        let (lo, hi) = aminmax(x.data());
        if self.min_val == f32::INFINITY && self.max_val == f32::NEG_INFINITY {
            (self.min_val, self.max_val) = (lo, hi);
        } else {
            let c = self.averaging_constant;
            self.min_val = moving_average(self.min_val, lo, c);
            self.max_val = moving_average(self.max_val, hi, c);
        }
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
        ObserverSpec::MovingAverageMinMax {
            config: self.base.config.clone(),
            averaging_constant: self.averaging_constant,
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
