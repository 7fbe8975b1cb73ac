//! [`KernelKind`]: the GEMM kernel families, which ones this process may run, and the best one.

use crate::isa::{self, Isa};

/// A GEMM kernel family. Packed weights record the family they were packed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KernelKind {
    /// Portable Rust (the scalar kernel; the oracle in `reference` is separate code).
    Scalar,
    /// x86-64 AVX2, exact: operands widened to i16, then `vpmaddwd` (no saturation).
    Avx2,
    /// x86-64 AVX2 `vpmaddubsw` pairs saturating to i16, bit for bit like fbgemm on CPUs
    /// without VNNI. Opt-in only, never chosen by [`KernelKind::best`]: it is exact (and
    /// faster than [`KernelKind::Avx2`]) when activations stay in 0..=127 (PyTorch's
    /// `reduce_range=True`, the default of its fbgemm/x86 qconfig and of dynamic Linear),
    /// because then `2·127·128 = 32512` fits in i16. With full-range activations it
    /// saturates exactly where fbgemm does on an AVX2-only CPU, in Linear and in every
    /// convolution path (checked against goldens from such a CPU: `tests/gemm_golden_avx2.rs`,
    /// `tests/conv_golden_avx2.rs`).
    Avx2Saturating,
    /// x86-64 AVX-VNNI: VEX `vpdpbusd` on ymm.
    AvxVnni,
    /// x86-64 AVX-512 VNNI: `vpdpbusd` on zmm.
    Avx512Vnni,
    /// x86-64 Intel AMX: `tdpbusd` on 16-row tiles, with the weight layout of
    /// [`KernelKind::Avx512Vnni`] and its AVX-512 epilogues and convolution paths.
    Amx,
    /// aarch64 Advanced SIMD widening multiply-accumulate.
    Neon,
    /// aarch64 `sdot`/`udot`.
    DotProd,
    /// aarch64 `usmmla`.
    I8mm,
}

impl KernelKind {
    /// Every kernel family, lowest first within each architecture.
    pub const ALL: [KernelKind; 9] = [
        KernelKind::Scalar,
        KernelKind::Avx2,
        KernelKind::Avx2Saturating,
        KernelKind::AvxVnni,
        KernelKind::Avx512Vnni,
        KernelKind::Amx,
        KernelKind::Neon,
        KernelKind::DotProd,
        KernelKind::I8mm,
    ];

    /// The dispatch level whose instructions the family needs.
    pub fn isa(self) -> Isa {
        match self {
            KernelKind::Scalar => Isa::Scalar,
            KernelKind::Avx2 | KernelKind::Avx2Saturating => Isa::Avx2,
            KernelKind::AvxVnni => Isa::AvxVnni,
            KernelKind::Avx512Vnni => Isa::Avx512Vnni,
            KernelKind::Amx => Isa::Amx,
            KernelKind::Neon => Isa::Neon,
            KernelKind::DotProd => Isa::DotProd,
            KernelKind::I8mm => Isa::I8mm,
        }
    }

    /// The lowercase name used in reports and errors.
    pub fn name(self) -> &'static str {
        match self {
            KernelKind::Scalar => "scalar",
            KernelKind::Avx2 => "avx2",
            KernelKind::Avx2Saturating => "avx2-saturating",
            KernelKind::AvxVnni => "avxvnni",
            KernelKind::Avx512Vnni => "avx512vnni",
            KernelKind::Amx => "amx",
            KernelKind::Neon => "neon",
            KernelKind::DotProd => "dotprod",
            KernelKind::I8mm => "i8mm",
        }
    }

    /// Whether the family saturates int16 pair sums (only [`KernelKind::Avx2Saturating`]).
    pub fn saturates_pairs(self) -> bool {
        self == KernelKind::Avx2Saturating
    }

    /// Whether the family's weights use the AVX-512 VNNI panel layout and its CPUs have
    /// AVX-512 F/BW/VL + VNNI ([`KernelKind::Avx512Vnni`] and [`KernelKind::Amx`]): the
    /// convolution forms and epilogues written for AVX-512 serve both.
    pub fn has_avx512_vnni(self) -> bool {
        matches!(self, KernelKind::Avx512Vnni | KernelKind::Amx)
    }

    /// The exact family for a dispatch level (pure; [`KernelKind::best`] applies it to
    /// [`isa::detect`]).
    pub fn best_for(level: Isa) -> KernelKind {
        match level {
            Isa::Scalar => KernelKind::Scalar,
            Isa::Avx2 => KernelKind::Avx2,
            Isa::AvxVnni => KernelKind::AvxVnni,
            Isa::Avx512Vnni => KernelKind::Avx512Vnni,
            Isa::Amx => KernelKind::Amx,
            Isa::Neon => KernelKind::Neon,
            Isa::DotProd => KernelKind::DotProd,
            Isa::I8mm => KernelKind::I8mm,
        }
    }

    /// The best exact family for this process: [`isa::detect`] (cached, capped by
    /// `QSTACK_ISA`) mapped by [`KernelKind::best_for`], falling back to scalar if that
    /// family has no kernel compiled in.
    pub fn best() -> KernelKind {
        let kind = KernelKind::best_for(isa::detect());
        if kind.is_runnable() {
            kind
        } else {
            KernelKind::Scalar
        }
    }

    /// Whether this process may run the family: compiled for this architecture, supported
    /// by the CPU, and not above the `QSTACK_ISA` cap.
    pub fn is_runnable(self) -> bool {
        let level = self.isa();
        super::microkernel::kernel_compiled(self)
            && level.is_supported()
            && isa::env_cap().is_none_or(|cap| level.is_at_most(cap))
    }

    /// Every family this process may run, lowest first (tests check each against the oracle).
    pub fn all_runnable() -> Vec<KernelKind> {
        KernelKind::ALL
            .into_iter()
            .filter(|k| k.is_runnable())
            .collect()
    }
}

impl std::fmt::Display for KernelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_for_respects_every_cap() {
        for cap in Isa::ALL {
            let level = isa::best_supported_at_most(Some(cap));
            let kind = KernelKind::best_for(level);
            assert!(kind.isa().is_at_most(cap), "{kind} above cap {cap}");
            assert!(kind.isa().is_supported());
            assert!(!kind.saturates_pairs());
        }
        assert_eq!(KernelKind::best_for(Isa::Scalar), KernelKind::Scalar);
    }

    #[test]
    fn best_is_runnable_and_scalar_always_is() {
        assert!(KernelKind::best().is_runnable());
        assert!(KernelKind::all_runnable().contains(&KernelKind::Scalar));
        assert!(KernelKind::all_runnable().contains(&KernelKind::best()));
    }
}
