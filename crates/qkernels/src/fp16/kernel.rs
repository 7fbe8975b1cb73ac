//! [`Fp16Kernel`]: the fp16-weight GEMM families, which ones this process may run, and the
//! best one.

use crate::isa::{self, Isa};

/// An fp16-weight GEMM kernel family. All families give identical results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fp16Kernel {
    /// Portable Rust (`f32::mul_add` chains over the packed panels).
    Scalar,
    /// x86-64 AVX2 + FMA + F16C: `vcvtph2ps` widening of the panel inside a 6 × 16 FMA tile.
    Avx2F16c,
    /// x86-64 AVX-512F: [`super::gemm_f32_rows`] runs 6 × 64 zmm tiles (four 16-row
    /// activation panels per broadcast weight row); the packed paths run the AVX2 tile.
    Avx512,
}

impl Fp16Kernel {
    /// Every family, lowest first.
    pub const ALL: [Fp16Kernel; 3] = [Fp16Kernel::Scalar, Fp16Kernel::Avx2F16c, Fp16Kernel::Avx512];

    /// The lowercase name used in reports and errors.
    pub fn name(self) -> &'static str {
        match self {
            Fp16Kernel::Scalar => "scalar",
            Fp16Kernel::Avx2F16c => "avx2-f16c",
            Fp16Kernel::Avx512 => "avx512",
        }
    }

    /// The int8 dispatch level whose instructions the family needs (F16C is checked on top).
    pub fn isa(self) -> Isa {
        match self {
            Fp16Kernel::Scalar => Isa::Scalar,
            Fp16Kernel::Avx2F16c => Isa::Avx2,
            Fp16Kernel::Avx512 => Isa::Avx512Vnni,
        }
    }

    /// Whether this process may run the family: compiled for this architecture, supported by
    /// the CPU, and not above the `QSTACK_ISA` cap.
    pub fn is_runnable(self) -> bool {
        let level = self.isa();
        let capped = isa::env_cap().is_none_or(|cap| level.is_at_most(cap));
        capped && level.is_supported() && self.cpu_has_extras()
    }

    /// Features beyond the level's own (F16C for the AVX2 and AVX-512 families).
    fn cpu_has_extras(self) -> bool {
        match self {
            Fp16Kernel::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Fp16Kernel::Avx2F16c | Fp16Kernel::Avx512 => {
                std::arch::is_x86_feature_detected!("f16c")
            }
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The fastest runnable family.
    pub fn best() -> Fp16Kernel {
        Fp16Kernel::ALL
            .into_iter()
            .rev()
            .find(|k| k.is_runnable())
            .unwrap_or(Fp16Kernel::Scalar)
    }

    /// Every family this process may run, lowest first (tests check each against the oracle).
    pub fn all_runnable() -> Vec<Fp16Kernel> {
        Fp16Kernel::ALL
            .into_iter()
            .filter(|k| k.is_runnable())
            .collect()
    }
}

impl std::fmt::Display for Fp16Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
