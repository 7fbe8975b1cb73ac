//! Dynamic quantized modules (PyTorch `torch.ao.nn.quantized.dynamic`): int8 or f16 weights
//! packed once at construction, f32 activations in and out, and for qint8 weights the
//! activation qparams chosen on every call from the input's range (fbgemm's dynamic linear,
//! numerics §2.10: `reduce_range`, quint8 `0..=127`).
//!
//! - [`Linear`], [`LinearReLU`]: bit-exact with PyTorch's fbgemm `linear_dynamic` /
//!   `linear_relu_dynamic` (qint8, per-tensor or per-channel weights) and with
//!   `linear_dynamic_fp16` (f16 weights, within a few ulp: see [`qkernels::fp16`], whose
//!   packed f16 GEMM runs an AVX2+FMA+F16C microkernel where the CPU has one).
//! - [`Lstm`], [`Gru`] (multi-layer, bidirectional, batch_first) and [`LSTMCell`],
//!   [`GRUCell`], [`RNNCell`]: every gate GEMM is a dynamic linear (bit-exact GEMMs), the
//!   input projection of a whole sequence is one GEMM per layer and direction as in PyTorch
//!   (so its qparams span the sequence), the gate math is ATen's op order in f32.
//!
//! Construction (what qflow's `quantize_dynamic` pass calls): `from_float(&float_layer,
//! &weight_qparams)` with the qparams the weight observer produced, or `from_float_fp16`.
//! State goes through `visit_buffers` (int8 weights, f64 scales, i64 zero points, the axis,
//! f32 biases); [`crate::Module::after_load`] validates it and repacks for this CPU.
//!
//! ```
//! use qnn::dynamic::Linear;
//! use qnn::float;
//! use qnn::init::Rng;
//! use qnn::qtensor::{QParams, Tensor};
//!
//! let f = float::Linear::new(4, 3, true, &mut Rng::new(0));
//! let mut q = Linear::from_float(&f, &QParams::PerTensor { scale: 0.01, zero_point: 0 })?;
//! let y = q.apply(&Tensor::from_fn(&[2, 4], |i| i as f32 / 8.0))?;
//! assert_eq!(y.shape(), &[2, 3]);
//! # Ok::<(), qnn::QnnError>(())
//! ```

mod cell_weights;
mod cells;
// (the float recurrent layers run the same gate pass)
pub(crate) mod gates;
mod input_quant;
mod linear;
mod recurrent;
mod weight;

pub use cells::{GRUCell, LSTMCell, RNNCell};
pub use linear::{Linear, LinearReLU};
pub use recurrent::{Gru, Lstm};
pub use weight::WeightDType;
