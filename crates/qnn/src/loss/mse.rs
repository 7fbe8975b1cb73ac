//! `nn.MSELoss(reduction='mean')`.

use qtensor::Tensor;

use crate::error::{QnnError, Result};

/// Mean of `(prediction - target)^2`; [`MseLoss::backward`] gives `2 (prediction - target) / numel`.
#[derive(Clone, Debug, Default)]
pub struct MseLoss {
    diff: Option<Tensor<f32>>,
}

impl MseLoss {
    /// A new loss.
    pub fn new() -> Self {
        Self::default()
    }

    /// The mean squared error; shapes must be equal.
    pub fn forward(&mut self, prediction: &Tensor<f32>, target: &Tensor<f32>) -> Result<f32> {
        if prediction.shape() != target.shape() {
            return Err(QnnError::ShapeMismatch {
                what: "MSELoss prediction vs target".into(),
                expected: target.shape().to_vec(),
                got: prediction.shape().to_vec(),
            });
        }
        let (p, t) = (prediction.to_row_major()?, target.to_row_major()?);
        let diff = Tensor::new(
            p.shape(),
            p.data().iter().zip(t.data()).map(|(a, b)| a - b).collect(),
        )?;
        let sum: f64 = diff.data().iter().map(|&d| (d as f64) * (d as f64)).sum();
        let n = diff.numel();
        self.diff = Some(diff);
        Ok(if n == 0 {
            f32::NAN
        } else {
            (sum / n as f64) as f32
        })
    }

    /// Gradient of the last forward's loss with respect to the prediction.
    pub fn backward(&self) -> Result<Tensor<f32>> {
        let diff = self
            .diff
            .as_ref()
            .ok_or(QnnError::BackwardBeforeForward { module: "MSELoss" })?;
        let k = 2.0 / diff.numel().max(1) as f32;
        Ok(diff.map(|d| k * d))
    }
}
