//! What every QAT layer shares: its weight fake-quant (with the mask of the last forward, for
//! the straight-through backward), the ReLU some of them end with, and state-dict prefixing.

use qtensor::{QParams, Tensor};

use super::FakeQuantSpec;
use super::fake_quant::{FakeQuant, ste_backward};
use crate::error::{QnnError, Result};
use crate::param::{BufferMut, BufferRef};

/// The weight fake-quant of a QAT layer and the mask its last forward produced.
#[derive(Clone, Debug)]
pub(crate) struct WeightFakeQuant {
    pub(crate) fq: Box<dyn FakeQuant>,
    mask: Option<Tensor<u8>>,
}

impl WeightFakeQuant {
    /// A fresh weight fake-quant with per-channel buffers sized for `out_channels`.
    pub(crate) fn new(spec: &FakeQuantSpec, out_channels: usize) -> Result<Self> {
        let mut fq = spec.build()?;
        fq.expect_channels(out_channels);
        Ok(Self { fq, mask: None })
    }

    /// `weight_fake_quant(w)`, keeping the mask for [`WeightFakeQuant::backward`].
    pub(crate) fn forward(&mut self, w: &Tensor<f32>) -> Result<Tensor<f32>> {
        let out = self.fq.apply(w)?;
        self.mask = out.mask;
        Ok(out.output)
    }

    /// The gradient with respect to the weight given the one with respect to the fake-quantized
    /// weight (straight-through: zero where the last forward clamped).
    pub(crate) fn backward(&self, grad: &Tensor<f32>) -> Result<Tensor<f32>> {
        ste_backward(grad, self.mask.as_ref())
    }

    /// PyTorch's convert path: `weight_post_process(weight)` (another observation when the
    /// observer is enabled), then `calculate_qparams()`.
    pub(crate) fn convert_qparams(&mut self, weight: &Tensor<f32>) -> Result<QParams> {
        self.fq.apply(weight)?;
        self.fq.calculate_qparams()
    }

    /// `("weight_fake_quant", tree)` for the layer's [`crate::Module::repr_children`].
    pub(crate) fn repr_child(&self) -> (String, crate::repr::ReprTree) {
        let fq: &dyn crate::module::Module = self.fq.as_ref();
        (
            "weight_fake_quant".to_string(),
            crate::repr::ReprTree::of(fq),
        )
    }

    pub(crate) fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        self.fq
            .visit_buffers(&mut |name, b| f(&format!("weight_fake_quant.{name}"), b));
    }

    pub(crate) fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        self.fq
            .visit_buffers_mut(&mut |name, b| f(&format!("weight_fake_quant.{name}"), b));
    }
}

/// `relu(y)` in place.
pub(crate) fn relu_in_place(y: &mut Tensor<f32>) {
    for v in y.data_mut() {
        *v = v.max(0.0);
    }
}

/// ReLU's backward as PyTorch's `threshold_backward(grad, result, 0)`: the gradient where the
/// output is positive, zero elsewhere (both row-major, same shape).
pub(crate) fn relu_backward(grad: &Tensor<f32>, out: &Tensor<f32>) -> Result<Tensor<f32>> {
    let data = grad
        .data()
        .iter()
        .zip(out.data())
        .map(|(&g, &y)| if y > 0.0 { g } else { 0.0 })
        .collect();
    Ok(Tensor::new(grad.shape(), data)?)
}

/// `dst += src` elementwise (shapes already agree).
pub(crate) fn accumulate(dst: &mut Tensor<f32>, src: &Tensor<f32>) {
    for (d, s) in dst.data_mut().iter_mut().zip(src.data()) {
        *d += s;
    }
}

/// `InvalidConfig` for a halved float layer given to a QAT constructor.
pub(crate) fn not_halved(module: &'static str, halved: bool) -> Result<()> {
    if halved {
        Err(QnnError::InvalidConfig {
            module,
            reason: "cannot build a QAT layer from a halved (f16) layer".into(),
        })
    } else {
        Ok(())
    }
}
