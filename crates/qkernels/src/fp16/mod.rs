//! # fp16-weight GEMM: f32 activations × packed f16 weights, f32 accumulation
//!
//! The product PyTorch's dynamic fp16 Linear and LSTM run (`fbgemm::cblas_gemm_compute` on a
//! `PackedGemmMatrixFP16`): `out[m, n] = Σ_k x[m, k]·w[n, k]` where `w` is an `N × K` weight
//! stored as f16 and `x` is f32. Every output is computed in fbgemm's order:
//! - K is cut into blocks of [`K_BLOCK`] (fbgemm's default `brow`);
//! - within a block, an f32 **fused** multiply-add chain over k in increasing order, starting
//!   from zero (`acc = fma(x[m, k], w[n, k], acc)`);
//! - the block sums are added in order (`((b₀ + b₁) + b₂) …`);
//! - then the optional bias (`out + bias[n]`, one rounding) and ReLU.
//!
//! Every kernel family computes exactly these operations, so all families give the same bits
//! as the scalar oracle [`reference_fp16_gemm`] (tests check bit equality on every runnable
//! family). This is fbgemm's order for its 3–6-row tiles; its 1–2-row tiles sum in another
//! order, so results may differ from PyTorch's there by an ulp or two.
//!
//! ## Dispatch
//! [`Fp16Kernel::best`] maps the cached [`crate::isa::detect`] (capped by `QSTACK_ISA`) to a
//! family: [`Fp16Kernel::Avx512`] at the `avx512vnni` level (with F16C), whose
//! [`gemm_f32_rows`] tile is 6 rows × 4 zmm panels and whose packed paths run the AVX2 tile;
//! [`Fp16Kernel::Avx2F16c`] on x86-64 levels from `avx2` up when the CPU also has F16C
//! (`vcvtph2ps` widens 8 weights per instruction inside the FMA microkernel), otherwise
//! [`Fp16Kernel::Scalar`] (portable Rust, `f32::mul_add`; aarch64 uses it too).
//!
//! [`gemm_f32_f32`] runs the same tiles on f32 panels ([`PackedF32`]): for products that
//! reuse one weight many times (the float LSTM's steps), where packing it once pays.
//!
//! [`gemm_f32_rows`] runs them on a weight used as stored (row-major, f32 or f16,
//! [`WeightRows`]) with the operands' roles swapped (`yᵀ = W xᵀ`: the few activation rows are
//! packed per call, the weight rows are the broadcast operand), so nothing is packed or cached
//! ahead: the float Linear's and attention's path from 4 rows up (up to 64 or 128 rows below
//! the AVX-512 family). Same bits as the packed paths.
//!
//! ## Layout
//! [`PackedF16`] stores the weight in panels of [`NR`] = 16 output columns, each panel
//! `[K][16]` f16 (N zero-padded), packed once. The microkernel keeps a tile of up to 6 rows ×
//! 16 columns in registers (12 ymm accumulators) for one K block, streaming the panel from L1.
//!
//! ```
//! use qkernels::fp16::{self, Fp16Epilogue, PackedF16};
//! // y = x wᵀ + b for x: 2 × 3, w: 2 × 3 (out × in), bias [0.5, -1]
//! let w = [1.0f32, 0.0, 0.5, -2.0, 1.0, 0.25];
//! let packed = PackedF16::from_f32(&w, 2, 3)?;
//! let x = [1.0f32, 2.0, 4.0, 0.5, 0.5, 0.5];
//! let mut y = [0.0f32; 4];
//! let epi = Fp16Epilogue { bias: Some(&[0.5, -1.0]), relu: false };
//! fp16::gemm_f32_f16(&x, 2, 3, &packed, &mut y, 2, epi)?;
//! assert_eq!(y, [3.5, 0.0, 1.25, -1.375]);
//! # Ok::<(), qkernels::GemmError>(())
//! ```

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
#[cfg(target_arch = "x86_64")]
mod avx512_transpose;
mod driver;
mod kernel;
mod pack;
mod reference;
mod rows;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use driver::{Fp16Epilogue, gemm_f32_f16, gemm_f32_f16_with, gemm_f32_f32, gemm_f32_f32_with};
pub use kernel::Fp16Kernel;
pub use pack::{PackedF16, PackedF32};
pub use reference::reference_fp16_gemm;
pub use rows::{M_CHUNK, PAR_MIN_MACS, WeightRows, gemm_f32_rows, gemm_f32_rows_with};

/// fbgemm's K block for packed fp16 matrices: each output sums one FMA chain per block.
pub const K_BLOCK: usize = 512;

/// Output columns per packed panel (two 8-lane f32 vectors).
pub const NR: usize = 16;
