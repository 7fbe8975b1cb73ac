//! # qkernels — int8 compute on slices and packed buffers
//!
//! SIMD int8 GEMM and convolution kernels for x86-64 (AVX2, AVX-512 VNNI, AVX-VNNI, AMX) and
//! aarch64 (NEON, dotprod, i8mm), chosen at run time, each tested bit for bit against a scalar
//! oracle. All of the workspace's `unsafe` lives in this crate, one `// SAFETY:` line per block.
//!
//! ```
//! use qkernels::isa::{self, Isa};
//! let level = isa::detect(); // detected once and cached; capped by QSTACK_ISA
//! assert!(isa::runnable().contains(&Isa::Scalar));
//! println!("int8 dispatch level: {level}");
//! ```
//!
//! [`gemm`] multiplies quint8 activations by qint8 weights packed once per kernel family
//! ([`gemm::PackedWeights`]) and fuses fbgemm-exact requantization, dequantization to f32 or
//! raw i32 output; [`gemm::reference`] is its scalar oracle. Errors are [`GemmError`].
//!
//! [`fp16`] multiplies f32 activations by f16 weights packed once ([`fp16::PackedF16`]) with
//! f32 fused multiply-add chains in fbgemm's order (AVX2+FMA+F16C microkernel or portable
//! Rust, bit-identical; [`fp16::reference_fp16_gemm`] is the oracle).

pub mod conv;
pub mod eltwise;
pub mod error;
pub mod float;
pub mod fp16;
pub mod gates;
pub mod gemm;
pub mod isa;
#[cfg(target_arch = "x86_64")]
mod isa_amx;
pub mod par;
pub mod pin;
pub mod pool;
pub mod quant;

pub use error::GemmError;
