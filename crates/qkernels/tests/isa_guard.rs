//! Guard for the cross-test matrix: when `QSTACK_EXPECT_ISA` is set (by `cargo xtask
//! cross-test` or CI), the detected dispatch level must be exactly that level, so a CPU model
//! whose features silently changed fails loudly instead of testing the wrong kernels.

use qkernels::gemm::KernelKind;
use qkernels::isa::{self, Isa};

#[test]
fn detected_level_matches_expectation() {
    let detected = isa::detect();
    eprintln!(
        "qkernels: detected {detected} (uncapped {}), runnable {:?}",
        isa::detect_uncapped(),
        isa::runnable()
    );
    let Ok(expected) = std::env::var("QSTACK_EXPECT_ISA") else {
        return;
    };
    let expected = Isa::parse(&expected)
        .unwrap_or_else(|| panic!("QSTACK_EXPECT_ISA={expected:?} is not a known level"));
    assert_eq!(
        detected, expected,
        "dispatch level differs from the CPU model's"
    );
    // The level must also have its own GEMM family compiled in and chosen: a family that
    // silently fell back to scalar would otherwise pass every oracle test unnoticed.
    assert_eq!(
        KernelKind::best(),
        KernelKind::best_for(expected),
        "the {expected} level has no GEMM kernel family registered"
    );
}
