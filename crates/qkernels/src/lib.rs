//! # qkernels — int8 compute on slices and packed buffers
//!
//! SIMD int8 GEMM and convolution kernels for x86-64 (AVX2, AVX-512 VNNI, AVX-VNNI) and
//! aarch64 (NEON, dotprod, i8mm), chosen at run time, each tested bit for bit against a scalar
//! oracle. All of the workspace's `unsafe` lives in this crate, one `// SAFETY:` line per block.
//!
//! ```
//! use qkernels::isa::{self, Isa};
//! let level = isa::detect(); // detected once and cached; capped by QSTACK_ISA
//! assert!(isa::runnable().contains(&Isa::Scalar));
//! println!("int8 dispatch level: {level}");
//! ```

pub mod float;
pub mod isa;
