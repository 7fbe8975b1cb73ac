//! Under a `QSTACK_ISA` cap, `KernelKind::best()` and every runnable kernel respect the cap,
//! and packing for a kernel above it fails. The environment is read once per process, so this
//! file is its own test binary with a single test that sets the cap before anything reads it
//! (unless the caller already set one, which is then the cap under test).

use qkernels::GemmError;
use qkernels::fp16::Fp16Kernel;
use qkernels::gemm::{KernelKind, PackedWeights, WeightQParams};
use qkernels::isa::{self, Isa};

#[test]
fn best_kernel_respects_the_env_cap() {
    if std::env::var_os(isa::ISA_ENV).is_none() {
        let cap = if cfg!(target_arch = "x86_64") {
            "avx2"
        } else {
            "neon"
        };
        // SAFETY: this binary's only test runs before any other thread reads the environment.
        unsafe { std::env::set_var(isa::ISA_ENV, cap) };
    }
    let cap = isa::env_cap().expect("a known cap is set");
    let best = KernelKind::best();
    assert!(best.isa().is_at_most(cap), "best {best} above cap {cap}");
    // The family for the capped level, or scalar while that family has no kernel compiled in.
    let expected = KernelKind::best_for(isa::best_supported_at_most(Some(cap)));
    let expected = if expected.is_runnable() {
        expected
    } else {
        KernelKind::Scalar
    };
    assert_eq!(best, expected);
    for kind in KernelKind::all_runnable() {
        assert!(
            kind.isa().is_at_most(cap),
            "{kind} runnable above cap {cap}"
        );
    }
    let q = WeightQParams::PerTensor {
        scale: 1.0,
        zero_point: 0,
    };
    for kind in KernelKind::ALL {
        if kind.isa().is_supported() && !kind.isa().is_at_most(cap) {
            assert_eq!(
                PackedWeights::pack(&[1; 4], 1, 4, q, kind),
                Err(GemmError::UnsupportedKernel { kind })
            );
        }
    }
    if cap == Isa::Avx2 && Isa::Avx2.is_supported() {
        assert_eq!(best, KernelKind::Avx2);
    }
    // The fp16-weight GEMM families obey the same cap (scalar under `QSTACK_ISA=scalar`).
    for kind in Fp16Kernel::all_runnable() {
        assert!(
            kind.isa().is_at_most(cap),
            "fp16 {kind} runnable above cap {cap}"
        );
    }
    assert!(Fp16Kernel::best().isa().is_at_most(cap));
    if cap == Isa::Scalar {
        assert_eq!(Fp16Kernel::best(), Fp16Kernel::Scalar);
    }
}
