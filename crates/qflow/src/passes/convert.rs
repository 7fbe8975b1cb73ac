//! `convert`: PyTorch's eager `torch.ao.quantization.convert` on a prepared [`Graph`].

use qnn::QnnError;
use qnn::qtensor::observer::ObserverSpec;
use qnn::qtensor::{QParams, Tensor};

use crate::error::{QflowError, Result};

/// PyTorch's weight path in `from_float`: a fresh observer from the QConfig's weight `spec`
/// observes `weight` once and answers its qparams.
pub(crate) fn observe_weight(node: &str, spec: &ObserverSpec, weight: &Tensor<f32>) -> Result<QParams> {
    let err = |e: qnn::qtensor::QTensorError| QflowError::Node {
        node: node.into(),
        source: QnnError::Tensor(e),
    };
    let mut obs = spec.build().map_err(err)?;
    obs.observe(weight).map_err(err)?;
    obs.calculate_qparams().map_err(err)
}
