//! `cargo xtask cross-test --x86-levels`: the host (x86-64) test binaries under `qemu-x86_64`,
//! which emulates no AVX-512 and no AVX-VNNI. `-cpu max` therefore proves the AVX2 dispatch
//! level and `-cpu Nehalem` the scalar one, even on an AVX-512 machine
//! (`shared/reference/cross-testing.md` §5).

use crate::Result;
use crate::cross_test::{Leg, Tester, build_and_run};
use crate::prereqs::{self, Probe, Tool};
use crate::run::run;
use std::process::Command;

/// QEMU x86-64 CPU models and the dispatch level expected on each.
pub const X86_MODELS: &[(&str, &str)] = &[("max", "avx2"), ("Nehalem", "scalar")];

const X86_TOOLS: &[Tool] = &[Tool {
    what: "qemu-x86_64",
    probe: Probe::Program("qemu-x86_64"),
    package: "qemu-user",
}];

/// The cargo runner variable for the host target.
const HOST_RUNNER_ENV: &str = "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER";

fn legs() -> Vec<Leg> {
    X86_MODELS
        .iter()
        .map(|(model, level)| Leg {
            label: format!("x86_64 qemu -cpu {model}"),
            env: vec![(
                HOST_RUNNER_ENV.to_string(),
                format!("qemu-x86_64 -cpu {model}"),
            )],
            expect: level,
        })
        .collect()
}

/// Runs the host tests under every model of [`X86_MODELS`] (skipping loudly without qemu).
pub fn run_levels(release: bool) -> Result {
    if std::env::consts::ARCH != "x86_64" || std::env::consts::OS != "linux" {
        return prereqs::skip("--x86-levels needs an x86_64 Linux host");
    }
    if let Err(reason) = prereqs::ensure_tools(X86_TOOLS) {
        return prereqs::skip(&format!("x86 level tests not run: {reason}"));
    }
    let _ = run(Command::new("qemu-x86_64").arg("--version"));
    build_and_run(&Tester::cargo(), None, release, &legs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_prove_avx2_and_scalar_through_the_host_runner() {
        let legs = legs();
        assert_eq!(legs.len(), 2);
        assert_eq!(legs[0].expect, "avx2");
        assert_eq!(
            legs[0].env,
            [(
                HOST_RUNNER_ENV.to_string(),
                "qemu-x86_64 -cpu max".to_string()
            )]
        );
        assert_eq!(legs[1].expect, "scalar");
        assert!(legs[1].env[0].1.ends_with("-cpu Nehalem"));
    }
}
