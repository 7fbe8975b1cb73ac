//! `prepare_qat`: PyTorch's `torch.ao.quantization.prepare_qat` on a [`crate::Graph`].

use qnn::qat::FakeQuantSpec;

use crate::error::{QflowError, Result};
use crate::graph::Op;

/// The fake-quant node for an activation spec.
pub(crate) fn fake_quant_node(node: &str, _spec: &FakeQuantSpec) -> Result<Op> {
    Err(QflowError::Unsupported {
        node: node.into(),
        reason: "fake-quant activation nodes are not available yet".into(),
    })
}
