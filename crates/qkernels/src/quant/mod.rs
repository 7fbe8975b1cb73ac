//! Per-tensor quantize (f32 -> quint8/qint8) and dequantize at memory speed: runtime-dispatched
//! SIMD kernels that compute exactly `qtensor`'s scalar definitions
//! ([`qtensor::quantize_val`] with `inv_scale = 1 / scale`, and [`qtensor::dequantize_val`])
//! for every `f32` bit pattern and every zero point, torch's edge cases included (NaN and +inf
//! to qmax, the `min(t, 2147483520)` clip, the wrapping 32-bit zero-point add that sends NaN to
//! 0 when a quint8 zero point exceeds 127, ...).
//!
//! | [`Isa`] level | kernel family |
//! |---|---|
//! | `avx512vnni` | AVX-512 F/BW, 64 elements per step |
//! | `avx2`, `avxvnni` | AVX2, 32 elements per step |
//! | `neon`, `dotprod`, `i8mm` | NEON, 16 elements per step |
//! | `scalar` | `qtensor`'s scalar functions |
//!
//! The plain functions dispatch on [`isa::detect`] (so `QSTACK_ISA` caps them); the `_with`
//! variants force a level and fail with [`QuantError::NotRunnable`] if this process cannot run
//! it. Inputs of [`PAR_THRESHOLD`] elements or more are split over the rayon pool; every
//! element is computed by the same code whatever the thread count, so results never depend
//! on it. [`quantize_per_tensor_fast`], [`dequantize_fast`] and [`dequantize_into`] are the
//! [`qtensor::QTensor`]-level conveniences.
//!
//! ```
//! use qkernels::quant;
//! let mut q = [0u8; 4];
//! quant::quantize_u8(&[0.5, -1.0, f32::NAN, 1e9], 0.5, 10, &mut q)?;
//! assert_eq!(q, [11, 8, 255, 255]);
//! let mut x = [0.0f32; 4];
//! quant::dequantize_u8(&q, 0.5, 10, &mut x)?;
//! assert_eq!(x, [0.5, -1.0, 122.5, 122.5]);
//! # Ok::<(), quant::QuantError>(())
//! ```

#[cfg(target_arch = "aarch64")]
mod aarch64;
mod error;
mod huge_pages;
mod level;
mod min_max;
mod parallel;
mod portable;
mod tensor;
#[cfg(target_arch = "x86_64")]
mod x86_64;

use std::mem::MaybeUninit;

pub use error::{QuantError, Result};
pub use huge_pages::HUGE_PAGE_MIN_BYTES;
pub use parallel::PAR_THRESHOLD;
pub use tensor::{dequantize_fast, dequantize_into, quantize_per_tensor_fast};

#[cfg(test)]
mod tests;

use crate::isa::{self, Isa};
use level::Level;

/// Checks lengths, scale and zero point (`[min, max]` is the dtype's range).
fn check(src: usize, dst: usize, scale: f32, zero_point: i32, min: i32, max: i32) -> Result<()> {
    if src != dst {
        return Err(QuantError::LengthMismatch { src, dst });
    }
    if !(scale.is_finite() && scale > 0.0) {
        return Err(QuantError::InvalidScale { scale });
    }
    if !(min..=max).contains(&zero_point) {
        return Err(QuantError::ZeroPointOutOfRange {
            zero_point,
            min,
            max,
        });
    }
    Ok(())
}

/// The family for a forced level, if this process may run it.
fn forced(isa: Isa) -> Result<Level> {
    if isa::runnable().contains(&isa) {
        Ok(Level::for_isa(isa))
    } else {
        Err(QuantError::NotRunnable { isa })
    }
}

/// Views initialized memory as possibly-uninitialized memory. Sound because the kernels only
/// ever write initialized values through the view.
fn as_uninit<T>(dst: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: `MaybeUninit<T>` has the size, alignment and layout of `T`, and the view is only
    // handed to this module's kernels, which write initialized values and never de-initialize.
    unsafe { &mut *(dst as *mut [T] as *mut [MaybeUninit<T>]) }
}

/// Outputs of at least this many bytes written into caller buffers use non-temporal stores
/// on x86 (they bypass the caches and skip the read-for-ownership of the destination; measured
/// 1.6x faster at 16M-element dequantize into a reused buffer). Smaller outputs stay in the
/// last-level cache for their next reader: at 4 MiB (a 1M-element dequantize) streaming
/// measured 2.2x slower on a Zen 4 with 32 MiB of L3 (150 vs 67 µs). Fresh allocations stream
/// only when the allocator handed back memory that is already backed (reused heap memory): on
/// not-yet-faulted pages streaming stores measured slower (also with huge pages).
pub const STREAM_MIN_BYTES: usize = 16 << 20;

/// Whether an output of `len` elements of `T` written into a caller's buffer should stream.
fn stream_into<T>(len: usize) -> bool {
    len.saturating_mul(std::mem::size_of::<T>()) >= STREAM_MIN_BYTES
}

/// Quantizes over the pool; fills every element of `dst` (same length as `src`).
pub(crate) fn run_quantize<const SIGNED: bool>(
    level: Level,
    src: &[f32],
    inv_scale: f32,
    zero_point: i32,
    dst: &mut [MaybeUninit<u8>],
    stream: bool,
) {
    parallel::zip_chunks(src, dst, |s, d| {
        level.quantize::<SIGNED>(s, inv_scale, zero_point, d, stream)
    });
}

/// Dequantizes over the pool; fills every element of `dst` (same length as `src`).
pub(crate) fn run_dequantize<const SIGNED: bool>(
    level: Level,
    src: &[u8],
    scale: f32,
    zero_point: i32,
    dst: &mut [MaybeUninit<f32>],
    stream: bool,
) {
    parallel::zip_chunks(src, dst, |s, d| {
        level.dequantize::<SIGNED>(s, scale, zero_point, d, stream)
    });
}

fn quantize_u8_on(level: Level, src: &[f32], scale: f32, zp: i32, dst: &mut [u8]) -> Result<()> {
    check(src.len(), dst.len(), scale, zp, 0, 255)?;
    let stream = stream_into::<u8>(dst.len());
    run_quantize::<false>(level, src, 1.0 / scale, zp, as_uninit(dst), stream);
    Ok(())
}

fn quantize_i8_on(level: Level, src: &[f32], scale: f32, zp: i32, dst: &mut [i8]) -> Result<()> {
    check(src.len(), dst.len(), scale, zp, -128, 127)?;
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(dst);
    let stream = stream_into::<u8>(bytes.len());
    run_quantize::<true>(level, src, 1.0 / scale, zp, as_uninit(bytes), stream);
    Ok(())
}

fn dequantize_u8_on(level: Level, src: &[u8], scale: f32, zp: i32, dst: &mut [f32]) -> Result<()> {
    check(src.len(), dst.len(), scale, zp, 0, 255)?;
    let stream = stream_into::<f32>(dst.len());
    run_dequantize::<false>(level, src, scale, zp, as_uninit(dst), stream);
    Ok(())
}

fn dequantize_i8_on(level: Level, src: &[i8], scale: f32, zp: i32, dst: &mut [f32]) -> Result<()> {
    check(src.len(), dst.len(), scale, zp, -128, 127)?;
    let bytes: &[u8] = bytemuck::cast_slice(src);
    let stream = stream_into::<f32>(dst.len());
    run_dequantize::<true>(level, bytes, scale, zp, as_uninit(dst), stream);
    Ok(())
}

/// `(min, max)` of `src`, `(0, 0)` when empty: the input pass of dynamic quantization
/// (fbgemm's `FindMinMax`). Exact for inputs without NaN on every ISA and thread count (the
/// sign of a zero extreme aside); unspecified with NaN. Large inputs run on the rayon pool.
pub fn min_max(src: &[f32]) -> (f32, f32) {
    min_max::min_max_on(Level::detected(), src)
}

/// [`min_max`] on the kernel family of `isa`; [`QuantError::NotRunnable`] if this process
/// cannot run that level.
pub fn min_max_with(isa: Isa, src: &[f32]) -> Result<(f32, f32)> {
    Ok(min_max::min_max_on(forced(isa)?, src))
}

/// Per-tensor quantize to quint8: `dst[i] = quantize_val(src[i], 1 / scale, zero_point, 0,
/// 255)`, as torch's `quantize_per_tensor` (fbgemm) computes it. Errors on a scale that is
/// not finite and > 0, a zero point outside `0..=255`, or `dst.len() != src.len()`.
pub fn quantize_u8(src: &[f32], scale: f32, zero_point: i32, dst: &mut [u8]) -> Result<()> {
    quantize_u8_on(Level::detected(), src, scale, zero_point, dst)
}

/// [`quantize_u8`] on the kernel family of `isa`; [`QuantError::NotRunnable`] if this process
/// cannot run that level.
pub fn quantize_u8_with(
    isa: Isa,
    src: &[f32],
    scale: f32,
    zero_point: i32,
    dst: &mut [u8],
) -> Result<()> {
    quantize_u8_on(forced(isa)?, src, scale, zero_point, dst)
}

/// Per-tensor quantize to qint8: `dst[i] = quantize_val(src[i], 1 / scale, zero_point, -128,
/// 127)`. Errors on a scale that is not finite and > 0, a zero point outside `-128..=127`, or
/// `dst.len() != src.len()`.
pub fn quantize_i8(src: &[f32], scale: f32, zero_point: i32, dst: &mut [i8]) -> Result<()> {
    quantize_i8_on(Level::detected(), src, scale, zero_point, dst)
}

/// [`quantize_i8`] on the kernel family of `isa`; [`QuantError::NotRunnable`] if this process
/// cannot run that level.
pub fn quantize_i8_with(
    isa: Isa,
    src: &[f32],
    scale: f32,
    zero_point: i32,
    dst: &mut [i8],
) -> Result<()> {
    quantize_i8_on(forced(isa)?, src, scale, zero_point, dst)
}

/// Per-tensor dequantize of quint8 values: `dst[i] = dequantize_val(src[i], scale,
/// zero_point)` = `f32(scale * f32(q - zero_point))`. Same errors as [`quantize_u8`].
pub fn dequantize_u8(src: &[u8], scale: f32, zero_point: i32, dst: &mut [f32]) -> Result<()> {
    dequantize_u8_on(Level::detected(), src, scale, zero_point, dst)
}

/// [`dequantize_u8`] on the kernel family of `isa`; [`QuantError::NotRunnable`] if this
/// process cannot run that level.
pub fn dequantize_u8_with(
    isa: Isa,
    src: &[u8],
    scale: f32,
    zero_point: i32,
    dst: &mut [f32],
) -> Result<()> {
    dequantize_u8_on(forced(isa)?, src, scale, zero_point, dst)
}

/// Per-tensor dequantize of qint8 values: `dst[i] = f32(scale * f32(q - zero_point))`. Same
/// errors as [`quantize_i8`].
pub fn dequantize_i8(src: &[i8], scale: f32, zero_point: i32, dst: &mut [f32]) -> Result<()> {
    dequantize_i8_on(Level::detected(), src, scale, zero_point, dst)
}

/// [`dequantize_i8`] on the kernel family of `isa`; [`QuantError::NotRunnable`] if this
/// process cannot run that level.
pub fn dequantize_i8_with(
    isa: Isa,
    src: &[i8],
    scale: f32,
    zero_point: i32,
    dst: &mut [f32],
) -> Result<()> {
    dequantize_i8_on(forced(isa)?, src, scale, zero_point, dst)
}
