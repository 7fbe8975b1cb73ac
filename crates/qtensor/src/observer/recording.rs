//! `RecordingObserver`: keeps a copy of every tensor it sees (debugging, numeric suites).

use std::any::Any;

use crate::dtype::QDType;
use crate::error::{QTensorError, Result};
use crate::qscheme::{QParams, QScheme};
use crate::tensor::Tensor;

use super::{Observer, ObserverSpec};

/// PyTorch's `RecordingObserver`: `observe` appends a clone of the tensor (empty ones too, as
/// torch does); `calculate_qparams` is an error, as in torch.
///
/// ```
/// use qtensor::observer::{Observer, RecordingObserver};
/// use qtensor::{QDType, Tensor};
///
/// let mut obs = RecordingObserver::new(QDType::QUInt8);
/// obs.observe(&Tensor::new(&[2], vec![1.0, 2.0])?)?;
/// assert_eq!(obs.tensor_values()[0].data(), &[1.0, 2.0]);
/// assert!(obs.calculate_qparams().is_err());
/// # Ok::<(), qtensor::QTensorError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RecordingObserver {
    dtype: QDType,
    tensor_val: Vec<Tensor<f32>>,
}

impl RecordingObserver {
    /// An empty recorder for `dtype`.
    pub fn new(dtype: QDType) -> Self {
        RecordingObserver {
            dtype,
            tensor_val: Vec::new(),
        }
    }

    /// Every tensor observed so far, in order (PyTorch's `get_tensor_value`).
    pub fn tensor_values(&self) -> &[Tensor<f32>] {
        &self.tensor_val
    }
}

impl Observer for RecordingObserver {
    fn observe(&mut self, x: &Tensor<f32>) -> Result<()> {
        self.tensor_val.push(x.clone());
        Ok(())
    }

    fn calculate_qparams(&self) -> Result<QParams> {
        Err(QTensorError::Unsupported(
            "calculate_qparams should not be called for RecordingObserver: it only records \
             tensors (read them with tensor_values)"
                .to_string(),
        ))
    }

    fn dtype(&self) -> Option<QDType> {
        Some(self.dtype)
    }

    fn qscheme(&self) -> QScheme {
        QScheme::PerTensorAffine
    }

    fn spec(&self) -> ObserverSpec {
        ObserverSpec::Recording { dtype: self.dtype }
    }

    fn box_clone(&self) -> Box<dyn Observer> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
