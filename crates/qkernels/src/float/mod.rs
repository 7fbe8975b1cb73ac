//! Float (f32 and f16) matrix multiplication: the one place that wraps the float GEMM crate.
//!
//! Every float matmul and convolution of the workspace goes through here, so that the fp32
//! baseline the int8 kernels are compared against is strong, and so that swapping the crate
//! touches one folder.
//!
//! - [`sgemm`]: `C = alpha * A * B + beta * C` in f32 on strided views ([`MatRef`], [`MatMut`]);
//!   `beta = 0` overwrites `C` without reading it, `beta = 1` accumulates.
//! - [`hgemm`]: the same with f16 storage and f32 accumulation (the crate's f16 kernel).
//! - [`gemm_mixed`]: f32 result where either operand may be stored as f16 (f16 weights times f32
//!   activations); f16 operands are widened exactly, then [`sgemm`] runs.
//!   One-row products with a transposed f16 weight (a halved Linear at batch 1) take
//!   [`gemv_f16`], which widens in registers (F16C + FMA on AVX2 CPUs, a scalar oracle in the
//!   same summation order elsewhere) instead of widening the weight into a buffer first.
//!   One-row products with a transposed f32 weight (the fp32 Linear at batch 1) take
//!   [`gemv_f32`] on AVX2 CPUs: the same order, the output rows split over the pool with each
//!   thread taking the same rows on every call (same bits for any pool).
//! - [`reference_sgemm`]: the naive oracle the above are tested against.
//! - [`conv2d`]: f32 convolution on NCHW data, one group. Direct (implicit-GEMM,
//!   [`conv2d_with`]): no column matrix, 6 × 16 AVX2 + FMA tiles reading zero-padded input
//!   planes, bit-equal to [`reference_conv2d`]. 3 × 3 stride-1 kernels with ≥ 16 channels take
//!   Winograd F(2×2, 3×3) instead ([`ConvAlgorithm`], [`winograd_conv2d_with`], bit-equal to
//!   [`reference_winograd_conv2d`], within float rounding of the direct sum).
//! - [`depthwise_conv2d`]: direct f32 depthwise convolution on NCHW planes (one filter per
//!   channel), AVX2 + FMA along the output rows, bit-equal to [`reference_depthwise_conv2d`].
//!   Both take their sliding window (sizes, stride, padding, dilation) as one [`ConvWindow`].
//!
//! Views check their bounds when built, so the `unsafe` call into the crate (in `call.rs`, the only
//! one) needs no further checks.
//!
//! # Why the `gemm` crate
//!
//! Chosen by measurement against `matrixmultiply` 0.3.11 (default features, AVX-512 enabled),
//! single thread, release build, on this project's development machine (Xeon, Sapphire/Emerald
//! Rapids class, shared by other jobs, so a few percent is noise). Best of many runs, in µs;
//! `M x K x N`, A row-major, B row-major (`NN`) or B = Wᵀ of a row-major `N x K` weight (`NT`):
//!
//! | shape | layout | matrixmultiply | gemm 0.19 (AVX2 only) | gemm 0.19 + `x86-v4` |
//! |---|---|---:|---:|---:|
//! | 64 x 800 x 500 | NN | 397 | 667 | 363 |
//! | 64 x 800 x 500 | NT | 464 | 783 | 441 |
//! | 64 x 256 x 120 | NN | 44 | 49 | 28 |
//! | 64 x 256 x 120 | NT | 35 | 56 | 36 |
//! | 64 x 500 x 10 | NT | 14 | 14 | 17 |
//! | 1024 x 1024 x 1024 | NN | 15148 | 25855 | 13012 |
//! | 16 x 150 x 4096 (im2col conv) | NN | 312 | 381 | 180 |
//! | 6 x 25 x 50176 (im2col conv) | NN | 633 | 251 | 239 |
//!
//! With its AVX-512 kernels (`x86-v4` feature, detected at run time; AVX2/FMA machines fall back
//! to the AVX2 kernels, aarch64 uses NEON) `gemm` matches or beats `matrixmultiply` on every shape
//! but the tiny `64 x 500 x 10`, is far ahead on the wide, short im2col products of convolutions,
//! and it has an f16 GEMM (`matrixmultiply` has none). f16 timings (f16 in and out, f32
//! accumulation, f16 output): 64 x 800 x 500 NN 613 µs, 1024³ 20.0 ms.
//!
//! # f16 weights
//!
//! [`gemm_mixed`] widens the f16 operand one column block (≈ 256 KiB of f32) at a time with
//! [`widen_f16_slice`] (F16C, 8 lanes per instruction; `half`'s per-chunk conversion was ≈ 0.4
//! ns per element, which made the first version 2.6x slower than f32). `y = x Wᵀ` with f16 `W`,
//! single thread, best of many runs on the shared machine:
//!
//! | M x K x N | sgemm f32 | gemm_mixed (f16 W) | hgemm (f16 x and W) |
//! |---|---:|---:|---:|
//! | 64 x 800 x 500 | 441 µs | 535 µs (1.21x) | 1472 µs (3.3x) |
//! | 64 x 256 x 120 | 37 µs | 43 µs (1.16x) | 134 µs (3.6x) |
//! | 64 x 400 x 120 | 49 µs | 60 µs (1.23x) | 200 µs (4.1x) |
//! | 1 x 800 x 500 | 28 µs | 88 µs (3.2x) | 28 µs (1.0x) |
//!
//! So f16 weights with f32 activations cost ≈ 1.2x of f32 at batch 64. Reusing one per-thread
//! widening buffer across calls (no allocation, no zeroing) brought these shapes to ≈ 1.05–1.15x
//! (min of 60 calls, three runs, machine loaded: 64 x 800 x 500 0.94–1.15x, 64 x 256 x 120
//! 1.05–1.26x, 64 x 400 x 120 0.91–1.07x, 64 x 120 x 84 1.05–1.25x); a steady 1.1x likely needs
//! the widening fused into the GEMM's packing (not done). On LeNet5 at batch 64, the halved
//! model's forward is within noise of the f32 one.
//!
//! The crate picks its kernel by CPU detection and ignores the `QSTACK_ISA` cap; float results may
//! differ across ISAs in the last bits (summation order). Bit-exactness across ISAs is a property
//! of the int8 paths only.
//!
//! ```
//! use qkernels::float::{sgemm, MatMut, MatRef, Threads};
//! // x: 2 x 3 activations, w: 2 x 3 weight (out x in, row-major) -> y = x wᵀ : 2 x 2
//! let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
//! let w = [1.0f32, 0.0, 0.0, 0.0, 1.0, 1.0];
//! let mut y = [0.0f32; 4];
//! sgemm(
//!     1.0,
//!     MatRef::row_major(&x, 2, 3)?,
//!     MatRef::row_major(&w, 2, 3)?.t(),
//!     0.0,
//!     MatMut::row_major(&mut y, 2, 2)?,
//!     Threads::Single,
//! )?;
//! assert_eq!(y, [1.0, 5.0, 4.0, 11.0]);
//! # Ok::<(), qkernels::float::FloatGemmError>(())
//! ```

mod call;
mod conv2d;
mod conv_tasks;
mod depthwise;
mod direct_kernel;
mod error;
mod gemv_f16;
mod gemv_f32;
mod hgemm;
mod pair_split;
mod phases;
mod reference;
mod row_split;
mod sgemm;
mod threads;
mod view;
mod widen;
mod window;

#[cfg(test)]
mod tests;

pub use conv2d::{
    CONV2D_PAR_MIN_MACS, Conv2dGeom, ConvAlgorithm, conv2d, conv2d_using, conv2d_with,
    reference_conv2d, reference_winograd_conv2d, winograd_conv2d_with,
};
pub use depthwise::{
    DEPTHWISE_PAR_MIN_MACS, DepthwiseGeom, depthwise_conv2d, depthwise_conv2d_vec,
    depthwise_conv2d_with, reference_depthwise_conv2d,
};
pub use direct_kernel::DirectConvKernel;
pub use error::{FloatGemmError, Result};
pub use gemv_f16::{Gemv, GemvF16, GemvF16Kernel, gemv_f16};
pub use gemv_f32::{GEMV_F32_PAR_MIN_MACS, GemvF32, GemvF32Kernel, gemv_f32};
pub use hgemm::{FloatMat, gemm_mixed, hgemm};
pub use reference::reference_sgemm;
pub use sgemm::sgemm;
pub use threads::Threads;
pub use view::{MatMut, MatRef};
pub use widen::widen_f16_slice;
pub use window::ConvWindow;
