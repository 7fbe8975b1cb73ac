//! `prepare_qat`: PyTorch's `torch.ao.quantization.prepare_qat` on a [`crate::Graph`], and the
//! QAT side of `convert`.

use qnn::qat::FakeQuantSpec;
use qnn::qtensor::{QDType, QParams};

use crate::error::{QflowError, Result};
use crate::graph::{Node, Op};

fn not_yet(node: &str) -> QflowError {
    QflowError::Unsupported {
        node: node.into(),
        reason: "QAT modules are not available in this build yet".into(),
    }
}

/// The fake-quant node for an activation spec.
pub(crate) fn fake_quant_node(node: &str, _spec: &FakeQuantSpec) -> Result<Op> {
    Err(not_yet(node))
}

/// The qparams and dtype of a fake-quant node.
pub(crate) fn fake_quant_qparams(node: &Node) -> Result<(QParams, Option<QDType>)> {
    Err(not_yet(node.name()))
}

/// The quantized module for a QAT module and its output qparams.
pub(crate) fn convert_qat_module(node: &Node, _scale: f64, _zp: i64) -> Result<Op> {
    Err(not_yet(node.name()))
}
