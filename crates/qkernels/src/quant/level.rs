//! The kernel families and the only way to get one: a SIMD family exists only after its CPU
//! features were detected (each holds a proof token with a private field).

use std::mem::MaybeUninit;
use std::sync::OnceLock;

#[cfg(target_arch = "aarch64")]
use super::aarch64;
use super::portable;
#[cfg(target_arch = "x86_64")]
use super::x86_64;
use crate::isa::{self, Isa};

/// A quantize/dequantize kernel family this CPU can run.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Level {
    /// `qtensor`'s scalar definitions.
    Portable,
    /// AVX2, 32 elements per step.
    #[cfg(target_arch = "x86_64")]
    Avx2(x86_64::Avx2Checked),
    /// AVX-512 F/BW, 64 elements per step.
    #[cfg(target_arch = "x86_64")]
    Avx512(x86_64::Avx512Checked),
    /// NEON, 16 elements per step.
    #[cfg(target_arch = "aarch64")]
    Neon(aarch64::NeonChecked),
}

impl Level {
    /// The family used at dispatch level `isa`: AVX2 for `avx2`/`avxvnni`, AVX-512 for
    /// `avx512vnni` and `amx`, NEON for every aarch64 level, portable for `scalar`. Falls back to a lower
    /// family if the CPU lacks the features (callers check runnability first).
    pub(crate) fn for_isa(isa: Isa) -> Level {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni | Isa::Amx => x86_64::Avx512Checked::new()
                .map_or_else(|| Level::for_isa(Isa::Avx2), Level::Avx512),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::AvxVnni => {
                x86_64::Avx2Checked::new().map_or(Level::Portable, Level::Avx2)
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon | Isa::DotProd | Isa::I8mm => {
                aarch64::NeonChecked::new().map_or(Level::Portable, Level::Neon)
            }
            _ => Level::Portable,
        }
    }

    /// The family of [`isa::detect`], chosen once.
    pub(crate) fn detected() -> Level {
        static LEVEL: OnceLock<Level> = OnceLock::new();
        *LEVEL.get_or_init(|| Level::for_isa(isa::detect()))
    }

    /// Whether this is the portable family.
    pub(crate) fn is_portable(self) -> bool {
        matches!(self, Level::Portable)
    }

    /// `(min, max)` of a non-empty `src` (see [`super::min_max`]).
    pub(crate) fn min_max(self, src: &[f32]) -> (f32, f32) {
        match self {
            #[cfg(target_arch = "x86_64")]
            Level::Avx2(cpu) => x86_64::avx2::min_max(cpu, src),
            #[cfg(target_arch = "x86_64")]
            Level::Avx512(cpu) => x86_64::avx512::min_max(cpu, src),
            // NEON is part of the aarch64 baseline, so the portable loop already uses it.
            _ => super::min_max::lanes(src),
        }
    }

    /// Writes every element of `dst` (same length as `src`): the quantized values as bytes,
    /// two's complement when `SIGNED` (qint8), else quint8. `stream` asks for non-temporal
    /// stores (x86 families; for large outputs that are not read back soon).
    pub(crate) fn quantize<const SIGNED: bool>(
        self,
        src: &[f32],
        inv_scale: f32,
        zero_point: i32,
        dst: &mut [MaybeUninit<u8>],
        stream: bool,
    ) {
        let _ = stream; // only the x86 families stream
        assert_eq!(src.len(), dst.len(), "quantize slices of different lengths");
        match self {
            Level::Portable => portable::quantize::<SIGNED>(src, inv_scale, zero_point, dst),
            #[cfg(target_arch = "x86_64")]
            Level::Avx2(cpu) => {
                x86_64::avx2::quantize::<SIGNED>(cpu, src, inv_scale, zero_point, dst, stream)
            }
            #[cfg(target_arch = "x86_64")]
            Level::Avx512(cpu) => {
                x86_64::avx512::quantize::<SIGNED>(cpu, src, inv_scale, zero_point, dst, stream)
            }
            #[cfg(target_arch = "aarch64")]
            Level::Neon(cpu) => aarch64::quantize::<SIGNED>(cpu, src, inv_scale, zero_point, dst),
        }
    }

    /// Writes every element of `dst` (same length as `src`): `scale * (q - zero_point)` with
    /// `q` read as `i8` when `SIGNED`, else as `u8`. `stream` as for [`Level::quantize`].
    pub(crate) fn dequantize<const SIGNED: bool>(
        self,
        src: &[u8],
        scale: f32,
        zero_point: i32,
        dst: &mut [MaybeUninit<f32>],
        stream: bool,
    ) {
        let _ = stream; // only the x86 families stream
        assert_eq!(
            src.len(),
            dst.len(),
            "dequantize slices of different lengths"
        );
        match self {
            Level::Portable => portable::dequantize::<SIGNED>(src, scale, zero_point, dst),
            #[cfg(target_arch = "x86_64")]
            Level::Avx2(cpu) => {
                x86_64::avx2::dequantize::<SIGNED>(cpu, src, scale, zero_point, dst, stream)
            }
            #[cfg(target_arch = "x86_64")]
            Level::Avx512(cpu) => {
                x86_64::avx512::dequantize::<SIGNED>(cpu, src, scale, zero_point, dst, stream)
            }
            #[cfg(target_arch = "aarch64")]
            Level::Neon(cpu) => aarch64::dequantize::<SIGNED>(cpu, src, scale, zero_point, dst),
        }
    }
}
