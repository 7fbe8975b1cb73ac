//! # int8 GEMM: quint8 activations × packed qint8 weights, with fused output pipelines
//!
//! `out[m, n] = pipeline(Σ_k (A[m,k] − za)·(W[n,k] − zw[n]))` where A is `M × K` u8
//! (any row stride), W is PyTorch's Linear weight `N × K` i8 packed once into
//! [`PackedWeights`], and the pipeline is one of [`Output`]: requantize to quint8 with
//! fbgemm's exact float rules, dequantize to f32 (dynamic Linear), or raw i32.
//!
//! ```
//! use qkernels::gemm::{self, Activations, Output, PackedWeights, Requantize, WeightQParams};
//! // 2 × 3 activations (zero point 3), 2 output channels.
//! let a = [3u8, 4, 5, 6, 7, 8];
//! let w = [1i8, 0, -1, 2, 2, 2];
//! let packed = PackedWeights::pack_best(&w, 2, 3, WeightQParams::PerTensor { scale: 0.5, zero_point: 0 })?;
//! let mut raw = [0i32; 4];
//! let acts = Activations { data: &a, rows: 2, row_stride: 3, zero_point: 3 };
//! gemm::gemm_u8s8(acts, &packed, Output::I32 { out: &mut raw, ldc: 2 })?;
//! assert_eq!(raw, [-2, 6, -2, 24]);
//! let mut q = [0u8; 4];
//! let params = Requantize { act_scale: 0.1, out_scale: 0.05, out_zero_point: 10, bias: None, activation: Default::default() };
//! gemm::gemm_u8s8(acts, &packed, Output::QUInt8 { params, out: &mut q, ldc: 2 })?;
//! assert_eq!(q, [8, 16, 8, 34]);
//! # Ok::<(), qkernels::GemmError>(())
//! ```
//!
//! ## Dispatch
//! [`KernelKind::best`] maps the cached [`crate::isa::detect`] (capped by `QSTACK_ISA`) to an
//! exact kernel family. [`PackedWeights::pack`] takes an explicit [`KernelKind`] to force one;
//! the packed data records it and [`gemm_u8s8`] runs that family (and returns it), while
//! [`gemm_u8s8_with`] rejects a different family with [`GemmError::FamilyMismatch`].
//! [`kernel_runs`] counts the calls each family's kernel object actually executed.
//!
//! ## Overflow
//! Kernels accumulate in i32 with wrapping arithmetic, so the result is exact iff the true
//! value fits. Before running, `K·max(za, 255 − za)·max|W − zw|` is checked against
//! `i32::MAX`; if it could overflow the call fails with [`GemmError::AccumulatorOverflow`]
//! (K = 65536 passes with symmetric weights: `65536·255·128 < 2³¹`).
//!
//! ## Threads
//! Above about 0.5M multiply-accumulates the tiles are spread over rayon's current pool. Each
//! output is computed by one tile over the full K, so results are identical for any thread
//! count.
//!
//! ## Adding a kernel family (the interface for new ISAs)
//! A family is one file implementing the crate-private `Microkernel` trait
//! (`gemm/microkernel.rs`) plus one arm in `microkernel::kernel_for` and
//! `microkernel::kernel_compiled`:
//! * `layout() -> PanelLayout { nr, kr }`: weights are packed generically as panels of `nr`
//!   columns, each `[K/kr][nr][kr]` i8 (K zero-padded). `kr = 4` suits `vpdpbusd`/`sdot`
//!   (`[k/4][nr][4]`), `kr = 8` suits `usmmla` (two columns × 8 k = one 16-byte operand),
//!   `kr = 1` a widening `smlal` kernel.
//! * `tile_shape(m) -> TileShape { rows, panels }`: the register tile; may depend on M
//!   (small-M tiles are wider so weights stream once).
//! * `a_row_stride`/`a_tile_bytes`/`pack_a`: the family's packed-A format for one tile
//!   (default row-major u8 with stride `kp`, K zero-padded; the x86 families pad the stride by
//!   64 bytes against L1 set aliasing); `a_offset()` declares a constant the kernel subtracts
//!   from A (128 for an XOR-0x80 `sdot` kernel); the driver adds `a_offset·Σ_k W[n,k]` back.
//! * `k_block()`: the K block the driver iterates in (default 512): for each N tile, for
//!   each K block, for each M tile of the task, so the weight block stays in L1.
//! * `compute(TileJob)`: for the K block `k0..k0+kc` (multiples of `kr`),
//!   `acc[r·acc_ld + c] (+)= Σ_k (A[r,k] − a_offset)·B[k,c]` for the tile's rows and
//!   `panels·nr` columns (wrapping i32), overwriting when `accumulate` is false. Call
//!   `TileJob::assert_valid` first; then call the `#[target_feature]` code in an `unsafe`
//!   block whose `// SAFETY:` names the CPU check of the family's `kernel()` constructor.
//! * optional `finish` / `finish_fixed`: a vectorized epilogue (`finish_fixed` also receives
//!   the per-row zero-point correction `RowFix` so it can be fused); the default scalar
//!   `Stage::finish_scalar` is the definition every epilogue must equal bit for bit.
//!
//! The constructor is a `fn kernel() -> Option<&'static dyn Microkernel>` returning a value
//! of a type with a private field only when `Isa::is_supported()` holds, so holding the
//! object proves the CPU check. Everything else (zero points, row sums, tiling, threads,
//! epilogue, bounds) is shared.

#[cfg(target_arch = "aarch64")]
mod aarch64;
mod aligned;
mod driver;
mod kind;
mod microkernel;
mod pack;
mod pipeline;
mod prepared;
pub mod reference;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::amx_config;

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

pub use driver::Activations;
pub use kind::KernelKind;
pub use pack::{PackedWeights, WeightQParams};
pub use pipeline::{
    Activation, Dequantize, Output, Requantize, VecOutput, cvt_rne_x86, dequantize_one,
    quantized_six, requantize_one,
};
pub use prepared::PreparedRequantize;

use crate::error::{GemmError, Result};

// Crate-private hooks for the convolution drivers (crate::conv), which feed their own
// gathered A tiles to the same micro-kernels and epilogues.
pub(crate) use aligned::AlignedBuf;
pub(crate) use driver::check_matrix;
pub(crate) use microkernel::{Microkernel, TileJob, kernel_for};
#[cfg(target_arch = "x86_64")]
pub(crate) use pipeline::RowFix;
pub(crate) use pipeline::{OutRow, Stage};

static RUNS: [AtomicU64; KernelKind::ALL.len()] =
    [const { AtomicU64::new(0) }; KernelKind::ALL.len()];

/// The single-thread `vpdpbusd` ceiling of this CPU in GOP/s (2 ops per multiply-accumulate),
/// from a register-only loop of `iterations × 16` zmm instructions; `None` without AVX-512
/// VNNI. Benchmarks report GEMM throughput as a fraction of it.
pub fn vpdpbusd_peak_gops(iterations: u64) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        x86_64::peak::vpdpbusd_zmm(iterations).map(|(ops, secs)| ops / secs / 1e9)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = iterations;
        None
    }
}

/// The rate in GB/s at which one thread streams an L2-resident buffer of `bytes` bytes
/// (rounded up to 768) through `vpdpbusd` in the small-M tile's load pattern: the ceiling of
/// a batch-1 GEMM whose weight fits L2 (best of `passes` after as many warm-up passes).
/// `None` without AVX-512 VNNI, or for an empty buffer.
pub fn vpdpbusd_stream_gbps(bytes: usize, passes: usize) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        let len = bytes.checked_next_multiple_of(768)?;
        if len == 0 {
            return None;
        }
        // 64-byte aligned, as packed weights are.
        let mut buf = AlignedBuf::zeroed(len);
        let data: &[i8] = bytemuck::cast_slice(buf.bytes(len));
        x86_64::peak::vpdpbusd_stream(data, passes)?;
        let secs = x86_64::peak::vpdpbusd_stream(data, passes.max(1))?;
        Some(len as f64 / secs / 1e9)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (bytes, passes);
        None
    }
}

/// How many GEMM calls the kernel object of `kind` has executed in this process.
pub fn kernel_runs(kind: KernelKind) -> u64 {
    let i = KernelKind::ALL.iter().position(|&k| k == kind).unwrap_or(0);
    RUNS[i].load(Ordering::Relaxed)
}

/// Multiplies `a` by the packed weights through the pipeline of `out`, on the family the
/// weights were packed for. Returns the family whose kernel ran.
///
/// Errors: bad activation or output shapes/strides, activation zero point outside 0..=255,
/// invalid pipeline scales or zero point, bias length ≠ N, a possible i32 overflow
/// ([`GemmError::AccumulatorOverflow`]), or a family this process cannot run.
pub fn gemm_u8s8(
    a: Activations<'_>,
    weights: &PackedWeights,
    out: Output<'_>,
) -> Result<KernelKind> {
    gemm_u8s8_with(weights.kind(), a, weights, out)
}

/// [`gemm_u8s8`] on an explicitly requested family; the weights must have been packed for it.
pub fn gemm_u8s8_with(
    kind: KernelKind,
    a: Activations<'_>,
    weights: &PackedWeights,
    out: Output<'_>,
) -> Result<KernelKind> {
    let kernel = checked_kernel(kind, &a, weights)?;
    let (m, n) = (a.rows, weights.n());
    match out {
        Output::QUInt8 { params, out, ldc } => {
            driver::check_matrix("output", out.len(), m, n, ldc)?;
            let stage = Stage::requant(params.prepare(weights)?);
            driver::run(kernel, &a, weights, &stage, None, out, ldc);
        }
        Output::QUInt8Prepared { params, out, ldc } => {
            driver::check_matrix("output", out.len(), m, n, ldc)?;
            params.check(weights, a.zero_point)?;
            let stage = Stage::Requant(Cow::Borrowed(&params.vecs));
            driver::run(kernel, &a, weights, &stage, Some(&params.corr), out, ldc);
        }
        Output::F32 { params, out, ldc } => {
            driver::check_matrix("output", out.len(), m, n, ldc)?;
            let stage = Stage::Dequant(params.prepare(weights)?);
            driver::run(kernel, &a, weights, &stage, None, out, ldc);
        }
        Output::I32 { out, ldc } => {
            driver::check_matrix("output", out.len(), m, n, ldc)?;
            driver::run(kernel, &a, weights, &Stage::Raw, None, out, ldc);
        }
    }
    Ok(count_run(kernel))
}

/// [`gemm_u8s8`] into a `Vec`: `out` is cleared and refilled with the `M × N` result (row
/// stride N), reusing its capacity. The elements are never zeroed by the caller: each part
/// of the result is first touched by the thread that computes it, so a fresh output costs no
/// serial zeroing pass and no cache lines moved between cores (on 2 threads a zeroed
/// 128 × 3072 f32 output cost a dynamic Linear a third of its time). Same bits as
/// [`gemm_u8s8`] with the matching [`Output`]. On an error `out` is left empty.
///
/// ```
/// use qkernels::gemm::{self, Activations, Dequantize, PackedWeights, VecOutput, WeightQParams};
/// let a = [3u8, 4, 5, 6, 7, 8];
/// let w = [1i8, 0, -1, 2, 2, 2];
/// let packed = PackedWeights::pack_best(&w, 2, 3, WeightQParams::PerTensor { scale: 0.5, zero_point: 0 })?;
/// let acts = Activations { data: &a, rows: 2, row_stride: 3, zero_point: 3 };
/// let mut y = Vec::new();
/// let params = Dequantize { act_scale: 0.25, bias: None, relu: false };
/// gemm::gemm_u8s8_into_vec(acts, &packed, VecOutput::F32 { params, out: &mut y })?;
/// assert_eq!(y, [-0.25, 0.75, -0.25, 3.0]);
/// # Ok::<(), qkernels::GemmError>(())
/// ```
pub fn gemm_u8s8_into_vec(
    a: Activations<'_>,
    weights: &PackedWeights,
    mut out: VecOutput<'_>,
) -> Result<KernelKind> {
    match &mut out {
        VecOutput::QUInt8 { out, .. } | VecOutput::QUInt8Prepared { out, .. } => out.clear(),
        VecOutput::F32 { out, .. } => out.clear(),
    }
    let kernel = checked_kernel(weights.kind(), &a, weights)?;
    match out {
        VecOutput::QUInt8 { params, out } => {
            let stage = Stage::requant(params.prepare(weights)?);
            fill_vec(kernel, &a, weights, &stage, None, out)?;
        }
        VecOutput::QUInt8Prepared { params, out } => {
            params.check(weights, a.zero_point)?;
            let stage = Stage::Requant(Cow::Borrowed(&params.vecs));
            fill_vec(kernel, &a, weights, &stage, Some(&params.corr), out)?;
        }
        VecOutput::F32 { params, out } => {
            let stage = Stage::Dequant(params.prepare(weights)?);
            fill_vec(kernel, &a, weights, &stage, None, out)?;
        }
    }
    Ok(count_run(kernel))
}

/// Runs the driver into the empty `out`'s spare capacity and sets its length to `M·N`.
fn fill_vec<T: driver::OutElem>(
    kernel: &dyn Microkernel,
    a: &Activations<'_>,
    w: &PackedWeights,
    stage: &Stage<'_>,
    corr: Option<&[i32]>,
    out: &mut Vec<T>,
) -> Result<()> {
    let too_large = GemmError::OutputTooLarge {
        rows: a.rows,
        cols: w.n(),
    };
    let len = a.rows.checked_mul(w.n()).ok_or_else(|| too_large.clone())?;
    out.try_reserve(len).map_err(|_| too_large)?;
    let spare = &mut out.spare_capacity_mut()[..len];
    let written = driver::run_uninit(kernel, a, w, stage, corr, spare);
    assert_eq!(written, len, "the GEMM tiles must cover the whole output");
    // SAFETY: `out` was empty and its first `len` spare elements were all initialized: the
    // driver zeroes each row segment before its epilogue writes it, the segments are disjoint
    // (the tiles partition the output) and `written` (asserted above) counts them, so they
    // cover all `len` elements.
    unsafe { out.set_len(len) };
    Ok(())
}

/// The checks every call makes before running: the family matches the packed weights and
/// runs here, the activation zero point and shape, the overflow bound. Returns the kernel.
fn checked_kernel(
    kind: KernelKind,
    a: &Activations<'_>,
    weights: &PackedWeights,
) -> Result<&'static dyn Microkernel> {
    if kind != weights.kind() {
        return Err(GemmError::FamilyMismatch {
            packed: weights.kind(),
            requested: kind,
        });
    }
    let kernel = microkernel::kernel_for(kind)?;
    prepared::check_act_zero_point(a.zero_point)?;
    driver::check_matrix(
        "activations",
        a.data.len(),
        a.rows,
        weights.k(),
        a.row_stride,
    )?;
    driver::check_overflow(weights.k(), a.zero_point, weights)?;
    Ok(kernel)
}

/// Counts a call of `kernel`'s family in [`kernel_runs`]; returns the family.
fn count_run(kernel: &dyn Microkernel) -> KernelKind {
    let ran = kernel.kind();
    let i = KernelKind::ALL.iter().position(|&k| k == ran).unwrap_or(0);
    RUNS[i].fetch_add(1, Ordering::Relaxed);
    ran
}
