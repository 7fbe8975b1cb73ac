//! The [`FakeQuant`] trait every fake-quant module implements, and the pieces they share:
//! zero-point storage, the straight-through backward, and the enable flags.

use qtensor::observer::Observer;
use qtensor::{QDType, QParams, QScheme, Tensor, fake_quantize_backward};

use super::FakeQuantSpec;
use crate::error::Result;
use crate::float::util::{f32_grad, f32_input};
use crate::module::Module;
use crate::value::Value;

/// The `zero_point` buffer: `int32` for integer schemes, `float32` for
/// `per_channel_affine_float_qparams` (as PyTorch's `FakeQuantize` registers it).
#[derive(Clone, Debug, PartialEq)]
pub enum ZeroPoints {
    /// Integer zero points (per-tensor: one value).
    Int(Tensor<i32>),
    /// Float zero points (float-qparams scheme).
    Float(Tensor<f32>),
}

impl ZeroPoints {
    /// Number of zero points.
    pub fn len(&self) -> usize {
        match self {
            ZeroPoints::Int(t) => t.numel(),
            ZeroPoints::Float(t) => t.numel(),
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a fake-quant forward produced: the output and the straight-through mask
/// (`None` when fake-quant is disabled, i.e. the identity with gradient 1 everywhere).
#[derive(Clone, Debug, PartialEq)]
pub struct FakeQuantOutput {
    /// The fake-quantized tensor (or the input unchanged).
    pub output: Tensor<f32>,
    /// 1 where the gradient passes (the rounded value before clamping is in range).
    pub mask: Option<Tensor<u8>>,
}

impl FakeQuantOutput {
    /// `grad * mask` (straight-through estimator), or `grad` itself without a mask.
    pub fn backward(&self, grad: &Tensor<f32>) -> Result<Tensor<f32>> {
        ste_backward(grad, self.mask.as_ref())
    }
}

/// `dx = dy * mask`, or `dy` without a mask.
pub(crate) fn ste_backward(grad: &Tensor<f32>, mask: Option<&Tensor<u8>>) -> Result<Tensor<f32>> {
    match mask {
        Some(m) => Ok(fake_quantize_backward(grad, m)?),
        None => Ok(grad.clone()),
    }
}

/// A fake-quant module (PyTorch's `FakeQuantizeBase`): it observes its input when the observer
/// is enabled, fake-quantizes it when fake-quant is enabled, and passes gradients straight
/// through where the value was in range.
///
/// As a [`Module`] it maps an f32 value to an f32 value; [`FakeQuant::apply`] is the same on a
/// tensor, returning the mask instead of keeping it (QAT layers use it for their weights).
pub trait FakeQuant: Module {
    /// Observes (if enabled) and fake-quantizes (if enabled) `x`.
    fn apply(&mut self, x: &Tensor<f32>) -> Result<FakeQuantOutput>;

    /// PyTorch's `calculate_qparams()`: what convert uses to quantize (for the fused module this
    /// is the Python observer formula on its running range, not the fbgemm one used in forward).
    fn calculate_qparams(&self) -> Result<QParams>;

    /// True when forward fake-quantizes (`fake_quant_enabled[0] == 1`).
    fn fake_quant_enabled(&self) -> bool;

    /// True when forward updates the statistics and qparams (`observer_enabled[0] == 1`).
    fn observer_enabled(&self) -> bool;

    /// `enable_fake_quant(enabled)`.
    fn enable_fake_quant(&mut self, enabled: bool);

    /// `enable_observer(enabled)`.
    fn enable_observer(&mut self, enabled: bool);

    /// `disable_fake_quant()`.
    fn disable_fake_quant(&mut self) {
        self.enable_fake_quant(false);
    }

    /// `disable_observer()`.
    fn disable_observer(&mut self) {
        self.enable_observer(false);
    }

    /// The `scale` buffer (f32; one value per tensor or per channel).
    fn scale(&self) -> &Tensor<f32>;

    /// The `zero_point` buffer.
    fn zero_point(&self) -> &ZeroPoints;

    /// The observer inside (`activation_post_process`), where the module keeps one as an
    /// [`Observer`]; the fused module keeps its running range itself and returns `None`.
    fn observer(&self) -> Option<&dyn Observer>;

    /// How many times one forward call applies the fake-quant, each time to the previous
    /// output (1 by default).
    fn applications_per_call(&self) -> u32;

    /// Sets how many times one forward call applies the fake-quant (at least once), each
    /// application observing and fake-quantizing the previous one's output. `prepare_qat` sets
    /// 2 after the fused modules PyTorch keeps as `nn.Sequential`s (ConvReLU1d, BNReLU2d): their
    /// `activation_post_process` runs as the last child and again, on that result, from the
    /// forward hook. [`FakeQuant::apply`] is always one application.
    fn set_applications_per_call(&mut self, n: u32);

    /// The dtype being emulated.
    fn dtype(&self) -> QDType;

    /// The scheme (per-tensor or per-channel, affine or symmetric).
    fn qscheme(&self) -> QScheme;

    /// The effective `(quant_min, quant_max)` (after `reduce_range`).
    fn quant_range(&self) -> (i64, i64);

    /// The channel axis for per-channel schemes.
    fn ch_axis(&self) -> Option<usize>;

    /// The spec that builds a fresh module like this one.
    fn spec(&self) -> FakeQuantSpec;

    /// A boxed copy with the same state.
    fn box_clone(&self) -> Box<dyn FakeQuant>;

    /// Sizes the per-channel buffers (`scale`, `zero_point`, the running range) for
    /// `channels` channels before the first observation, as PyTorch's `_load_from_state_dict`
    /// resizes them, so that a state dict saved after training loads into a fresh module (QAT
    /// layers call it with their output channels). Per-tensor modules ignore it.
    fn expect_channels(&mut self, _channels: usize) {}
}

impl Clone for Box<dyn FakeQuant> {
    fn clone(&self) -> Self {
        self.box_clone()
    }
}

impl std::fmt::Debug for dyn FakeQuant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeQuant")
            .field("spec", &self.spec())
            .field("scale", &self.scale().data())
            .field("zero_point", self.zero_point())
            .field("fake_quant_enabled", &self.fake_quant_enabled())
            .field("observer_enabled", &self.observer_enabled())
            .finish()
    }
}

/// The `Module::forward`/`backward` halves shared by the fake-quant modules: run
/// [`FakeQuant::apply`] (once, or again on its own output: see
/// [`FakeQuant::set_applications_per_call`]), keep the mask, and multiply the gradient by it.
#[derive(Clone, Debug, Default)]
pub(crate) struct SavedMask {
    saved: Option<(Vec<usize>, Option<Tensor<u8>>)>,
    /// Extra applications per forward call on the previous output (0: applied once).
    repeats: u32,
}

impl SavedMask {
    pub(crate) fn forward(
        &mut self,
        module: &'static str,
        input: &Value,
        mut apply: impl FnMut(&Tensor<f32>) -> Result<FakeQuantOutput>,
    ) -> Result<Value> {
        let x = f32_input(input, module)?;
        let shape = x.shape().to_vec();
        let mut out = apply(&x)?;
        for _ in 0..self.repeats {
            let next = apply(&out.output)?;
            // Two straight-through estimators in a row pass a gradient where both did.
            let mask = match (out.mask, next.mask) {
                (Some(a), Some(b)) => Some(Tensor::new(
                    a.shape(),
                    a.data().iter().zip(b.data()).map(|(p, q)| p & q).collect(),
                )?),
                (a, b) => a.or(b),
            };
            out = FakeQuantOutput {
                output: next.output,
                mask,
            };
        }
        self.saved = Some((shape, out.mask));
        Ok(Value::F32(out.output))
    }

    /// How many times each forward call applies the fake-quant (at least once).
    pub(crate) fn applications(&self) -> u32 {
        self.repeats + 1
    }

    pub(crate) fn set_applications(&mut self, n: u32) {
        self.repeats = n.max(1) - 1;
    }

    pub(crate) fn backward(&self, module: &'static str, grad_output: &Value) -> Result<Value> {
        let (shape, mask) = self
            .saved
            .as_ref()
            .ok_or(crate::QnnError::BackwardBeforeForward { module })?;
        let g = f32_grad(grad_output, module, shape)?;
        Ok(Value::F32(ste_backward(&g, mask.as_ref())?))
    }
}

/// A `[1]`-shaped flag tensor.
/// `(scale, zero_point)` as PyTorch prints them. A per-channel fake-quant that has not observed
/// anything yet (`unobserved`) prints PyTorch's one-element initial buffers: PyTorch resizes
/// them at the first forward, qstack when the layer is built (so that state dicts load).
pub(crate) fn qparams_repr(
    scale: &Tensor<f32>,
    zero_point: &ZeroPoints,
    unobserved: bool,
) -> (String, String) {
    if unobserved {
        let zp = match zero_point {
            ZeroPoints::Int(_) => "tensor([0], dtype=torch.int32)",
            ZeroPoints::Float(_) => "tensor([0.])",
        };
        return ("tensor([1.])".to_string(), zp.to_string());
    }
    (
        crate::repr::torch_tensor_f32(scale.data()),
        zero_point_repr(zero_point),
    )
}

/// True when a per-channel range holds no observation yet (empty, or all `±inf`).
pub(crate) fn range_unobserved(min_val: &[f32], max_val: &[f32]) -> bool {
    min_val.iter().chain(max_val).all(|v| v.is_infinite())
}

/// How PyTorch prints a zero-point buffer: `tensor([0], dtype=torch.int32)` or, for float
/// zero points, `tensor([0.])`.
pub(crate) fn zero_point_repr(zero_point: &ZeroPoints) -> String {
    match zero_point {
        ZeroPoints::Int(t) => crate::repr::torch_tensor_i32(t.data()),
        ZeroPoints::Float(t) => crate::repr::torch_tensor_f32(t.data()),
    }
}

/// How PyTorch prints a uint8 flag buffer: `tensor([1], dtype=torch.uint8)`.
pub(crate) fn flag_repr(flag: &Tensor<u8>) -> String {
    let parts: Vec<String> = flag.data().iter().map(|v| v.to_string()).collect();
    format!("tensor([{}], dtype=torch.uint8)", parts.join(", "))
}

pub(crate) fn flag_u8(on: bool) -> Tensor<u8> {
    Tensor::from_fn(&[1], |_| u8::from(on))
}
