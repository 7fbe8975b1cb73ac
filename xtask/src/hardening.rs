//! The hardening commands: `cargo xtask fuzz`, `cargo xtask miri` and `cargo xtask asan`.
//!
//! - `fuzz [--seconds N] [targets...]`: every cargo-fuzz target under `fuzz/` (or the named
//!   ones) for N seconds each (default 60), on nightly, with the committed seed corpus in
//!   `fuzz/corpus/<target>`; new corpus entries go to a scratch directory so the committed seeds
//!   stay small. Installs nothing: it says how to install cargo-fuzz when it is missing.
//! - `miri`: `cargo +nightly miri test` over the packages Miri can run (qtensor; the scalar
//!   kernel paths of qkernels with `QSTACK_ISA=scalar`), with few proptest cases.
//! - `asan`: the qkernels SIMD tests (which Miri cannot execute) built with AddressSanitizer.

use std::path::Path;
use std::process::Command;

use crate::Result;
use crate::args::Args;
use crate::run::{run, step, succeeds};

/// The fuzz targets, as `fuzz/Cargo.toml` names them.
pub const FUZZ_TARGETS: &[&str] = &[
    "qparams_quantize",
    "state_dict_safetensors",
    "idx_reader",
    "model_file",
    "graph_description",
];

/// The qtensor test binaries Miri runs (the golden suites are too large for its speed; they
/// run natively in every CI run, and the same code paths are covered here by proptests).
const MIRI_QTENSOR_TESTS: &[&str] = &["errors", "proptest_quantize", "proptest_fake_quant"];

/// The qkernels test binaries that exercise the scalar paths under Miri (fast enough there).
const MIRI_QKERNELS_TESTS: &[&str] = &[
    "gemm_oracle",
    "gemm_into_vec",
    "quant_oracle",
    "eltwise_props",
];

/// Miri flags for the qkernels suites. The GEMM driver asks rayon for its thread count, which
/// starts the global pool: its crossbeam-epoch violates Stacked Borrows in an intrusive list
/// (crossbeam-rs/crossbeam#545; crossbeam itself runs Miri under Tree Borrows), and its
/// worker threads outlive `main` (a leak Miri reports unless told to ignore it).
const QKERNELS_MIRIFLAGS: &str = "-Zmiri-disable-isolation -Zmiri-tree-borrows -Zmiri-ignore-leaks";

fn nightly_cargo() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg("+nightly");
    cmd
}

fn require_nightly() -> Result {
    if succeeds("cargo", &["+nightly", "--version"]) {
        Ok(())
    } else {
        Err("a nightly toolchain is needed: `rustup toolchain install nightly`".into())
    }
}

/// The fuzz command for one target: libFuzzer for `seconds`, seeds from the committed corpus,
/// new inputs into a scratch directory.
fn fuzz_command(target: &str, seconds: u64, scratch: &Path) -> Command {
    let mut cmd = nightly_cargo();
    cmd.args(["fuzz", "run", "--fuzz-dir", "fuzz", target])
        .arg(scratch)
        .arg(format!("fuzz/corpus/{target}"))
        .args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-print_final_stats=1",
        ]);
    cmd
}

/// Entry point of `cargo xtask fuzz [--seconds N] [targets...]`.
pub fn fuzz(raw: &[String]) -> Result {
    let mut args = Args::new(raw);
    let seconds = match args.value("--seconds")? {
        Some(s) => s
            .parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("--seconds {s:?}: expected a positive whole number"))?,
        None => 60,
    };
    let named = args.positionals()?;
    let targets = select_targets(&named)?;
    require_nightly()?;
    if !succeeds("cargo", &["+nightly", "fuzz", "--version"]) {
        return Err("cargo-fuzz is missing: `cargo install cargo-fuzz`".into());
    }
    for target in targets {
        let scratch = std::env::temp_dir().join(format!("qstack-fuzz-{target}"));
        std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        step(&format!("fuzz: {target} for {seconds}s"), || {
            run(&mut fuzz_command(target, seconds, &scratch))
        })?;
    }
    Ok(())
}

fn select_targets(named: &[String]) -> Result<Vec<&'static str>> {
    if named.is_empty() {
        return Ok(FUZZ_TARGETS.to_vec());
    }
    named
        .iter()
        .map(|n| {
            FUZZ_TARGETS
                .iter()
                .copied()
                .find(|t| t == n)
                .ok_or_else(|| format!("unknown fuzz target {n:?}; known: {FUZZ_TARGETS:?}"))
        })
        .collect()
}

/// Entry point of `cargo xtask miri`.
pub fn miri(raw: &[String]) -> Result {
    Args::new(raw).finish()?;
    require_nightly()?;
    if !succeeds("cargo", &["+nightly", "miri", "--version"]) {
        return Err(
            "Miri is missing: `rustup component add miri rust-src --toolchain nightly`".into(),
        );
    }
    step("miri: qtensor", || {
        let mut cmd = nightly_cargo();
        cmd.args(["miri", "test", "-p", "qtensor", "--lib"]);
        for test in MIRI_QTENSOR_TESTS {
            cmd.args(["--test", test]);
        }
        run(cmd
            .env("PROPTEST_CASES", "4")
            .env("MIRIFLAGS", "-Zmiri-disable-isolation"))
    })?;
    for test in MIRI_QKERNELS_TESTS {
        step(&format!("miri: qkernels --test {test} (scalar)"), || {
            run(nightly_cargo()
                .args(["miri", "test", "-p", "qkernels", "--test", test])
                .env("PROPTEST_CASES", "2")
                .env("QSTACK_ISA", "scalar")
                .env("MIRIFLAGS", QKERNELS_MIRIFLAGS))
        })?;
    }
    Ok(())
}

/// Entry point of `cargo xtask asan`.
pub fn asan(raw: &[String]) -> Result {
    Args::new(raw).finish()?;
    require_nightly()?;
    step("asan: qkernels tests with AddressSanitizer", || {
        run(nightly_cargo()
            .args([
                "test",
                "-p",
                "qkernels",
                "--target",
                "x86_64-unknown-linux-gnu",
                "--target-dir",
                "target/asan",
            ])
            .env("RUSTFLAGS", "-Zsanitizer=address")
            .env("RUSTDOCFLAGS", "-Zsanitizer=address")
            .env("PROPTEST_CASES", "64"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_targets_are_selected_by_name_and_unknown_names_fail() {
        assert_eq!(select_targets(&[]).unwrap(), FUZZ_TARGETS);
        assert_eq!(
            select_targets(&["state_dict_safetensors".into()]).unwrap(),
            ["state_dict_safetensors"]
        );
        assert!(
            select_targets(&["nope".into()])
                .unwrap_err()
                .contains("\"nope\"")
        );
    }

    #[test]
    fn fuzz_targets_match_the_fuzz_manifest() {
        let manifest = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/Cargo.toml"),
        )
        .unwrap();
        for t in FUZZ_TARGETS {
            assert!(manifest.contains(&format!("name = \"{t}\"")), "{t}");
            assert!(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join(format!("../fuzz/corpus/{t}"))
                    .is_dir(),
                "seed corpus for {t}"
            );
        }
    }

    #[test]
    fn the_fuzz_command_bounds_time_and_reads_the_committed_seeds() {
        let cmd = fuzz_command("qparams_quantize", 7, Path::new("/tmp/x"));
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "+nightly",
                "fuzz",
                "run",
                "--fuzz-dir",
                "fuzz",
                "qparams_quantize",
                "/tmp/x",
                "fuzz/corpus/qparams_quantize",
                "--",
                "-max_total_time=7",
                "-print_final_stats=1"
            ]
        );
    }
}
