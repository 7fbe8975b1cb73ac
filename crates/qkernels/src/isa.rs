//! Instruction-set detection: one detection per process, cached, with an environment cap.
//!
//! [`detect`] answers "which int8 dispatch level may this process use?". It checks the CPU
//! once (with `is_x86_feature_detected!` / `is_aarch64_feature_detected!`), lowers the answer
//! to the cap in `QSTACK_ISA` if one is set, and caches the result for the life of the process.
//!
//! `QSTACK_ISA` takes one of the names of [`Isa::name`] (`scalar`, `avx2`, `avxvnni`,
//! `avx512vnni`, `amx`, `neon`, `dotprod`, `i8mm`). A cap can only lower the level: asking for a level
//! the CPU lacks gives the best level the CPU has below it. An unknown name is reported once on
//! stderr and ignored.

use std::sync::OnceLock;

/// The environment variable that caps the dispatch level (for tests and benches).
pub const ISA_ENV: &str = "QSTACK_ISA";

/// An int8 dispatch level. Levels of one architecture are ordered: a higher level implies
/// every lower one on real CPUs (the detection checks each level's own features anyway).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// Portable Rust; the oracle every other level is tested against.
    Scalar,
    /// x86-64 AVX2 + FMA (`vpmaddwd` on widened operands).
    Avx2,
    /// x86-64 AVX-VNNI: VEX-encoded `vpdpbusd` on ymm.
    AvxVnni,
    /// x86-64 AVX-512 F/BW/VL + VNNI: `vpdpbusd` on zmm.
    Avx512Vnni,
    /// x86-64 Intel AMX (AMX-TILE + AMX-INT8, `tdpbusd` on tile registers) on top of
    /// [`Isa::Avx512Vnni`]; needs the OS to enable the tile state (XCR0) and grant this
    /// process its use (Linux `arch_prctl(ARCH_REQ_XCOMP_PERM)`, requested once by the
    /// detection). See [`crate::isa_amx`].
    Amx,
    /// aarch64 Advanced SIMD (`smlal`/`umlal` widening multiply-accumulate).
    Neon,
    /// aarch64 FEAT_DotProd (`sdot`/`udot`).
    DotProd,
    /// aarch64 FEAT_I8MM (`usmmla`/`smmla`).
    I8mm,
}

impl Isa {
    /// Every level, lowest first within each architecture.
    pub const ALL: [Isa; 8] = [
        Isa::Scalar,
        Isa::Avx2,
        Isa::AvxVnni,
        Isa::Avx512Vnni,
        Isa::Amx,
        Isa::Neon,
        Isa::DotProd,
        Isa::I8mm,
    ];

    /// The lowercase name used by `QSTACK_ISA` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::AvxVnni => "avxvnni",
            Isa::Avx512Vnni => "avx512vnni",
            Isa::Amx => "amx",
            Isa::Neon => "neon",
            Isa::DotProd => "dotprod",
            Isa::I8mm => "i8mm",
        }
    }

    /// Parses a name of [`Isa::name`] (case-insensitive, `-`/`_` ignored, so `AVX512_VNNI`
    /// and `DotProd` work too).
    pub fn parse(name: &str) -> Option<Isa> {
        let norm: String = name
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Isa::ALL.into_iter().find(|isa| isa.name() == norm)
    }

    /// Whether this CPU can execute the level's instructions (ignores the cap).
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::AvxVnni => {
                Isa::Avx2.is_supported() && std::arch::is_x86_feature_detected!("avxvnni")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                Isa::Avx2.is_supported()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Amx => Isa::Avx512Vnni.is_supported() && crate::isa_amx::usable(),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[cfg(target_arch = "aarch64")]
            Isa::DotProd => {
                Isa::Neon.is_supported() && std::arch::is_aarch64_feature_detected!("dotprod")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::I8mm => {
                Isa::DotProd.is_supported() && std::arch::is_aarch64_feature_detected!("i8mm")
            }
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Whether `self` belongs to the same family as `other` and is not above it
    /// (`Scalar` is below every level of every architecture).
    pub fn is_at_most(self, cap: Isa) -> bool {
        if self == Isa::Scalar {
            return true;
        }
        let x86 = |i: Isa| matches!(i, Isa::Avx2 | Isa::AvxVnni | Isa::Avx512Vnni | Isa::Amx);
        let arm = |i: Isa| matches!(i, Isa::Neon | Isa::DotProd | Isa::I8mm);
        ((x86(self) && x86(cap)) || (arm(self) && arm(cap))) && self <= cap
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The best level this CPU supports, ignoring any cap.
pub fn detect_uncapped() -> Isa {
    Isa::ALL
        .into_iter()
        .rev()
        .find(|isa| isa.is_supported())
        .unwrap_or(Isa::Scalar)
}

/// The highest supported level at or below `cap` (or the best supported level with no cap).
pub fn best_supported_at_most(cap: Option<Isa>) -> Isa {
    Isa::ALL
        .into_iter()
        .rev()
        .filter(|isa| isa.is_supported())
        .find(|isa| cap.is_none_or(|c| isa.is_at_most(c)))
        .unwrap_or(Isa::Scalar)
}

/// Every level this process may run: supported by the CPU and not above the `QSTACK_ISA` cap,
/// lowest first. Tests iterate it to check each runnable kernel against the oracle.
pub fn runnable() -> Vec<Isa> {
    let cap = env_cap();
    Isa::ALL
        .into_iter()
        .filter(|isa| isa.is_supported() && cap.is_none_or(|c| isa.is_at_most(c)))
        .collect()
}

/// The cap read from `QSTACK_ISA`, if it is set to a known name (read once, cached).
pub fn env_cap() -> Option<Isa> {
    static CAP: OnceLock<Option<Isa>> = OnceLock::new();
    *CAP.get_or_init(|| {
        let raw = std::env::var(ISA_ENV).ok()?;
        let raw = raw.trim();
        if raw.is_empty() {
            return None;
        }
        let parsed = Isa::parse(raw);
        if parsed.is_none() {
            let names: Vec<&str> = Isa::ALL.iter().map(|i| i.name()).collect();
            eprintln!(
                "qkernels: ignoring {ISA_ENV}={raw:?}: not one of {}",
                names.join(", ")
            );
        }
        parsed
    })
}

/// The dispatch level for this process: detected once, capped by `QSTACK_ISA`, cached.
pub fn detect() -> Isa {
    static LEVEL: OnceLock<Isa> = OnceLock::new();
    *LEVEL.get_or_init(|| best_supported_at_most(env_cap()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for isa in Isa::ALL {
            assert_eq!(Isa::parse(isa.name()), Some(isa));
        }
        assert_eq!(Isa::parse("AVX512_VNNI"), Some(Isa::Avx512Vnni));
        assert_eq!(Isa::parse("DotProd"), Some(Isa::DotProd));
        assert_eq!(Isa::parse("AMX"), Some(Isa::Amx));
        assert_eq!(Isa::parse("sse9"), None);
    }

    #[test]
    fn caps_stay_within_an_architecture() {
        assert!(Isa::Avx2.is_at_most(Isa::Avx512Vnni));
        assert!(!Isa::Avx512Vnni.is_at_most(Isa::Avx2));
        assert!(Isa::Avx512Vnni.is_at_most(Isa::Amx));
        assert!(!Isa::Amx.is_at_most(Isa::Avx512Vnni));
        assert!(!Isa::Amx.is_at_most(Isa::I8mm));
        assert!(!Isa::Neon.is_at_most(Isa::Avx512Vnni));
        assert!(Isa::Scalar.is_at_most(Isa::Neon));
        assert!(Isa::Scalar.is_at_most(Isa::Scalar));
        assert!(!Isa::Avx2.is_at_most(Isa::Scalar));
    }

    #[test]
    fn capped_detection_never_exceeds_cap_or_cpu() {
        for cap in Isa::ALL {
            let got = best_supported_at_most(Some(cap));
            assert!(got.is_supported());
            assert!(got.is_at_most(cap), "{got} above cap {cap}");
        }
        assert_eq!(best_supported_at_most(None), detect_uncapped());
        assert_eq!(best_supported_at_most(Some(Isa::Scalar)), Isa::Scalar);
    }

    #[test]
    fn detect_is_runnable_and_highest() {
        let level = detect();
        let all = runnable();
        assert_eq!(all.last().copied(), Some(level));
        assert!(all.contains(&Isa::Scalar));
    }
}
