//! `PlaceholderObserver` and `NoopObserver`: observers that record nothing and only carry a
//! dtype to the conversion pass (dynamic quantization, float16).

use std::any::Any;

use crate::dtype::QDType;
use crate::error::{QTensorError, Result};
use crate::qscheme::{QParams, QScheme};
use crate::tensor::Tensor;

use super::{Observer, ObserverSpec, PlaceholderDtype};

/// The quantized dtype a placeholder stands for, `None` for the float ones.
fn quantized(dtype: PlaceholderDtype) -> Option<QDType> {
    match dtype {
        PlaceholderDtype::Quantized(d) => Some(d),
        PlaceholderDtype::Float16 | PlaceholderDtype::Float32 => None,
    }
}

/// The error PyTorch raises from these observers' `calculate_qparams`.
fn no_qparams(observer: &str) -> QTensorError {
    QTensorError::Unsupported(format!(
        "calculate_qparams should not be called for {observer}: it records no statistics, \
         so it has no quantization parameters"
    ))
}

/// PyTorch's `PlaceholderObserver`: passes its dtype (and `is_dynamic`) to the conversion;
/// `calculate_qparams` is an error, as in torch.
///
/// ```
/// use qtensor::observer::{Observer, PlaceholderDtype, PlaceholderObserver};
///
/// let obs = PlaceholderObserver::new(PlaceholderDtype::Float16, true);
/// assert_eq!(obs.dtype(), None);
/// assert!(obs.is_dynamic());
/// assert!(obs.calculate_qparams().is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct PlaceholderObserver {
    dtype: PlaceholderDtype,
    is_dynamic: bool,
}

impl PlaceholderObserver {
    /// A placeholder for `dtype`; `is_dynamic` marks dynamically quantized activations.
    pub fn new(dtype: PlaceholderDtype, is_dynamic: bool) -> Self {
        PlaceholderObserver { dtype, is_dynamic }
    }

    /// The dtype it stands for, float ones included.
    pub fn placeholder_dtype(&self) -> PlaceholderDtype {
        self.dtype
    }

    /// PyTorch's `is_dynamic`.
    pub fn is_dynamic(&self) -> bool {
        self.is_dynamic
    }
}

impl Observer for PlaceholderObserver {
    fn observe(&mut self, _x: &Tensor<f32>) -> Result<()> {
        Ok(())
    }

    fn calculate_qparams(&self) -> Result<QParams> {
        Err(no_qparams("PlaceholderObserver"))
    }

    fn dtype(&self) -> Option<QDType> {
        quantized(self.dtype)
    }

    fn qscheme(&self) -> QScheme {
        QScheme::PerTensorAffine
    }

    fn spec(&self) -> ObserverSpec {
        ObserverSpec::Placeholder {
            dtype: self.dtype,
            is_dynamic: self.is_dynamic,
        }
    }

    fn box_clone(&self) -> Box<dyn Observer> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// PyTorch's `NoopObserver` (float16 weights by default): records nothing;
/// `calculate_qparams` is an error, as in torch.
#[derive(Clone, Debug, PartialEq)]
pub struct NoopObserver {
    dtype: PlaceholderDtype,
}

impl NoopObserver {
    /// A no-op observer for `dtype`.
    pub fn new(dtype: PlaceholderDtype) -> Self {
        NoopObserver { dtype }
    }

    /// The dtype it stands for, float ones included.
    pub fn placeholder_dtype(&self) -> PlaceholderDtype {
        self.dtype
    }
}

impl Observer for NoopObserver {
    fn observe(&mut self, _x: &Tensor<f32>) -> Result<()> {
        Ok(())
    }

    fn calculate_qparams(&self) -> Result<QParams> {
        Err(no_qparams("NoopObserver"))
    }

    fn dtype(&self) -> Option<QDType> {
        quantized(self.dtype)
    }

    fn qscheme(&self) -> QScheme {
        QScheme::PerTensorAffine
    }

    fn spec(&self) -> ObserverSpec {
        ObserverSpec::Noop { dtype: self.dtype }
    }

    fn box_clone(&self) -> Box<dyn Observer> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
