//! [`ObserverSpec::build`]: a fresh observer from its spec (PyTorch's `with_args(...)()`).

use crate::error::Result;

use super::{
    FixedQParamsObserver, HistogramObserver, MinMaxObserver, MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver, NoopObserver, Observer, ObserverConfig, ObserverSpec,
    PerChannelMinMaxObserver, PlaceholderObserver, RecordingObserver,
};

impl ObserverSpec {
    /// A fresh observer with the spec's arguments, validated as PyTorch's constructor
    /// validates them (bad qscheme, custom range or combination → typed error).
    ///
    /// ```
    /// use qtensor::observer::{ObserverConfig, ObserverSpec};
    /// use qtensor::{QDType, QScheme, Tensor};
    ///
    /// // torch's default_weight_observer
    /// let spec = ObserverSpec::MinMax(ObserverConfig::new(QDType::QInt8, QScheme::PerTensorSymmetric));
    /// let mut obs = spec.build()?;
    /// obs.observe(&Tensor::new(&[2], vec![-0.5, 1.0])?)?;
    /// assert_eq!(obs.min_max(), Some((-0.5, 1.0)));
    /// assert_eq!(obs.spec(), spec);
    /// // symmetric + reduce_range + quint8 is rejected as in torch
    /// let mut bad = ObserverConfig::new(QDType::QUInt8, QScheme::PerTensorSymmetric);
    /// bad.reduce_range = true;
    /// assert!(ObserverSpec::MinMax(bad).build().is_err());
    /// # Ok::<(), qtensor::QTensorError>(())
    /// ```
    pub fn build(&self) -> Result<Box<dyn Observer>> {
        Ok(match self {
            ObserverSpec::MinMax(config) => Box::new(MinMaxObserver::new(config.clone())?),
            ObserverSpec::MovingAverageMinMax {
                config,
                averaging_constant,
            } => Box::new(MovingAverageMinMaxObserver::new(
                config.clone(),
                *averaging_constant,
            )?),
            ObserverSpec::PerChannelMinMax { config, ch_axis } => {
                Box::new(PerChannelMinMaxObserver::new(config.clone(), *ch_axis)?)
            }
            ObserverSpec::MovingAveragePerChannelMinMax {
                config,
                ch_axis,
                averaging_constant,
            } => Box::new(MovingAveragePerChannelMinMaxObserver::new(
                config.clone(),
                *ch_axis,
                *averaging_constant,
            )?),
            ObserverSpec::Histogram {
                config,
                bins,
                upsample_rate,
            } => Box::new(HistogramObserver::new(
                config.clone(),
                *bins,
                *upsample_rate,
            )?),
            ObserverSpec::Placeholder { dtype, is_dynamic } => {
                Box::new(PlaceholderObserver::new(*dtype, *is_dynamic))
            }
            ObserverSpec::Noop { dtype } => Box::new(NoopObserver::new(*dtype)),
            ObserverSpec::FixedQParams {
                scale,
                zero_point,
                dtype,
                quant_min,
                quant_max,
            } => Box::new(FixedQParamsObserver::new(
                *scale,
                *zero_point,
                *dtype,
                *quant_min,
                *quant_max,
            )?),
            ObserverSpec::Recording { dtype } => Box::new(RecordingObserver::new(*dtype)),
        })
    }

    /// The uniform-quantization arguments, for the specs that have them.
    pub fn config(&self) -> Option<&ObserverConfig> {
        match self {
            ObserverSpec::MinMax(config)
            | ObserverSpec::MovingAverageMinMax { config, .. }
            | ObserverSpec::PerChannelMinMax { config, .. }
            | ObserverSpec::MovingAveragePerChannelMinMax { config, .. }
            | ObserverSpec::Histogram { config, .. } => Some(config),
            _ => None,
        }
    }
}
