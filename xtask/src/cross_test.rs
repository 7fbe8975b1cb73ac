//! `cargo xtask cross-test`: the test suites for aarch64 under qemu-user, once per CPU model.
//!
//! Each QEMU CPU model selects one int8 dispatch level (see
//! `shared/reference/cross-testing.md` §4): the test binaries are built once, then run under
//! every requested model with `QEMU_CPU=<model>` and `QSTACK_EXPECT_ISA=<level>`, which the
//! `qkernels` guard test (`tests/isa_guard.rs`) asserts. Plain cargo with the runner from
//! `.cargo/config.toml` is used; `cross` only when the host tools cannot be had and a container
//! engine answers. When nothing can run, the command skips loudly (a failure when
//! `QSTACK_CROSS_REQUIRED` is set).

use crate::Result;
use crate::args::Args;
use crate::prereqs::{self, Probe, Tool};
use crate::run::{cargo, run, step};
use std::process::Command;

/// The aarch64 target triple.
pub const AARCH64: &str = "aarch64-unknown-linux-gnu";

/// Packages whose tests run under emulation: tensors, kernels and the layers (qnn's suite takes
/// seconds under qemu and catches platform differences in the float GEMM crate).
pub const EMULATED_PACKAGES: &[&str] = &["qtensor", "qkernels", "qnn"];

/// `PROPTEST_CASES` under emulation, unless the caller set one.
pub const EMULATED_PROPTEST_CASES: &str = "32";

/// QEMU aarch64 CPU models and the dispatch level `qkernels::isa::detect` must pick on each.
pub const AARCH64_MODELS: &[(&str, &str)] = &[
    ("cortex-a72", "neon"),
    ("cortex-a53", "neon"),
    ("neoverse-n1", "dotprod"),
    ("max", "i8mm"),
];

/// What `--cpu all` runs: one model per aarch64 dispatch level.
pub const ALL_MODELS: &[&str] = &["cortex-a72", "neoverse-n1", "max"];

/// The tools the plain-cargo aarch64 loop needs, with the Debian packages providing them.
const AARCH64_TOOLS: &[Tool] = &[
    Tool {
        what: "aarch64-linux-gnu-gcc",
        probe: Probe::Program("aarch64-linux-gnu-gcc"),
        package: "gcc-aarch64-linux-gnu",
    },
    Tool {
        what: "the aarch64 glibc sysroot (/usr/aarch64-linux-gnu)",
        probe: Probe::File("/usr/aarch64-linux-gnu/lib/crt1.o"),
        package: "libc6-dev-arm64-cross",
    },
    Tool {
        what: "qemu-aarch64",
        probe: Probe::Program("qemu-aarch64"),
        package: "qemu-user",
    },
];

/// One emulated run: a label, the environment that selects the CPU, and the level to expect.
#[derive(Clone, Debug, PartialEq)]
pub struct Leg {
    /// Shown in the step banner (`aarch64 neoverse-n1`).
    pub label: String,
    /// Environment selecting the emulated CPU (`QEMU_CPU`, or a cargo runner).
    pub env: Vec<(String, String)>,
    /// The dispatch level name the guard test must see.
    pub expect: &'static str,
}

/// How the test binaries are built: `--profile ci-test` (default) or `--release`.
pub fn profile_args(release: bool) -> [&'static str; 2] {
    if release {
        ["--release", ""]
    } else {
        ["--profile", "ci-test"]
    }
}

/// The options of `cross-test`.
#[derive(Debug, PartialEq)]
struct Options {
    models: Vec<&'static str>,
    x86_levels: bool,
    release: bool,
}

fn parse(raw: &[String]) -> Result<Options> {
    let mut args = Args::new(raw);
    let release = args.flag("--release");
    let x86_levels = args.flag("--x86-levels");
    let cpu_values = args.values("--cpu")?;
    args.finish()?;
    let mut models: Vec<&'static str> = Vec::new();
    let requested: Vec<&str> = cpu_values.iter().flat_map(|v| v.split(',')).collect();
    let requested = if requested.is_empty() && !x86_levels {
        vec!["all"]
    } else {
        requested
    };
    for name in requested {
        let names: Vec<&'static str> = if name == "all" {
            ALL_MODELS.to_vec()
        } else {
            let known = AARCH64_MODELS.iter().find(|(m, _)| *m == name);
            vec![known.map(|(m, _)| *m).ok_or_else(|| {
                let list: Vec<&str> = AARCH64_MODELS.iter().map(|(m, _)| *m).collect();
                format!(
                    "unknown CPU model {name:?}: expected {} or all",
                    list.join(", ")
                )
            })?]
        };
        for model in names {
            if !models.contains(&model) {
                models.push(model);
            }
        }
    }
    Ok(Options {
        models,
        x86_levels,
        release,
    })
}

/// The dispatch level expected under an aarch64 model.
fn expected_level(model: &str) -> &'static str {
    AARCH64_MODELS
        .iter()
        .find(|(m, _)| *m == model)
        .map_or("neon", |(_, level)| *level)
}

fn aarch64_legs(models: &[&'static str]) -> Vec<Leg> {
    models
        .iter()
        .map(|model| Leg {
            label: format!("aarch64 {model}"),
            env: vec![("QEMU_CPU".to_string(), model.to_string())],
            expect: expected_level(model),
        })
        .collect()
}

/// The program that runs the tests (`cargo`, or `cross`) and the environment it needs.
#[derive(Clone, Debug)]
pub struct Tester {
    /// `cargo` or the path of `cross`.
    pub program: std::ffi::OsString,
    /// Extra environment for every invocation (e.g. `CROSS_CONFIG`).
    pub env: Vec<(String, String)>,
}

impl Tester {
    /// Plain cargo (the one that started xtask).
    pub fn cargo() -> Tester {
        Tester {
            program: cargo().get_program().to_owned(),
            env: Vec::new(),
        }
    }

    /// `<program> test [--target T] <profile> -p <package>…`, the argument list shared by the
    /// build and every run.
    pub fn test(&self, target: Option<&str>, release: bool, packages: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.arg("test");
        if let Some(triple) = target {
            cmd.args(["--target", triple]);
        }
        cmd.args(profile_args(release).into_iter().filter(|a| !a.is_empty()));
        for package in packages {
            cmd.args(["-p", package]);
        }
        cmd
    }
}

/// Sets what selects and checks one leg: the CPU environment, the expected level, the
/// emulated proptest case count, and no `QSTACK_ISA` cap (a caller's cap would mask the model).
fn apply_leg(cmd: &mut Command, leg: &Leg) {
    cmd.env_remove(ISA_CAP_ENV);
    cmd.env("QSTACK_EXPECT_ISA", leg.expect);
    if std::env::var_os("PROPTEST_CASES").is_none() {
        cmd.env("PROPTEST_CASES", EMULATED_PROPTEST_CASES);
    }
    cmd.envs(leg.env.iter().map(|(k, v)| (k, v)));
}

/// Builds the test binaries once, then runs them for every leg: first the guard test with its
/// output shown (it prints the detected dispatch levels), then the whole emulated suite.
/// Every leg runs even when an earlier one fails; the error lists the failed legs.
pub fn build_and_run(tester: &Tester, target: Option<&str>, release: bool, legs: &[Leg]) -> Result {
    let what = target.unwrap_or("host");
    step(&format!("cross-test: build test binaries ({what})"), || {
        run(tester
            .test(target, release, EMULATED_PACKAGES)
            .args(["--lib", "--tests", "--no-run"]))
    })?;
    let mut failed = Vec::new();
    for leg in legs {
        let outcome = step(
            &format!("cross-test: {} (expect {})", leg.label, leg.expect),
            || {
                let mut guard = tester.test(target, release, &["qkernels"]);
                guard.args(["--test", "isa_guard", "--", "--nocapture"]);
                apply_leg(&mut guard, leg);
                run(&mut guard)?;
                let mut suite = tester.test(target, release, EMULATED_PACKAGES);
                suite.args(["--lib", "--tests", "--no-fail-fast"]);
                apply_leg(&mut suite, leg);
                run(&mut suite)
            },
        );
        if let Err(err) = outcome {
            failed.push(format!("{}: {err}", leg.label));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("\n"))
    }
}

/// The `qkernels` dispatch cap variable (`qkernels::isa::ISA_ENV`).
const ISA_CAP_ENV: &str = "QSTACK_ISA";

/// Chooses how to run aarch64 binaries: plain cargo when the host tools are (or can be made)
/// present, else `cross` with an answering container engine; `Err` is the skip reason.
fn aarch64_tester() -> Result<Tester> {
    let plain =
        prereqs::ensure_rust_target(AARCH64).and_then(|()| prereqs::ensure_tools(AARCH64_TOOLS));
    let reason = match plain {
        Ok(()) => {
            // The qemu version, for the log.
            let _ = run(Command::new("qemu-aarch64").arg("--version"));
            return Ok(Tester::cargo());
        }
        Err(reason) => reason,
    };
    let Some(cross) = prereqs::cross_usable() else {
        return Err(format!(
            "{reason} (and no `cross` with an answering container engine)"
        ));
    };
    println!(
        "host tools unavailable ({reason}); using {} with a container engine (unverified path)",
        cross.display()
    );
    let config = crate::run::workspace_root().join("xtask/Cross.toml");
    Ok(Tester {
        program: cross.into_os_string(),
        env: vec![("CROSS_CONFIG".to_string(), config.display().to_string())],
    })
}

/// Entry point of `cargo xtask cross-test`.
pub fn main(raw: &[String]) -> Result {
    let options = parse(raw)?;
    let mut failures = Vec::new();
    if !options.models.is_empty() {
        println!("\n==> cross-test: aarch64 prerequisites");
        match aarch64_tester() {
            Err(reason) => prereqs::skip(&format!("aarch64 tests not run: {reason}"))?,
            Ok(tester) => {
                println!("<== ready: {}", tester.program.to_string_lossy());
                let legs = aarch64_legs(&options.models);
                if let Err(err) = build_and_run(&tester, Some(AARCH64), options.release, &legs) {
                    failures.push(err);
                }
            }
        }
    }
    if options.x86_levels
        && let Err(err) = crate::x86_levels::run_levels(options.release)
    {
        failures.push(err);
    }
    if failures.is_empty() {
        println!("\ncross-test: done, all legs passed");
        Ok(())
    } else {
        Err(format!("failed legs:\n{}", failures.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> Result<Options> {
        let owned: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        parse(&owned)
    }

    #[test]
    fn default_is_all_models_and_all_has_one_model_per_level() {
        let o = opts(&[]).unwrap();
        assert_eq!(o.models, ALL_MODELS);
        assert!(!o.x86_levels && !o.release);
        let levels: Vec<&str> = ALL_MODELS.iter().map(|m| expected_level(m)).collect();
        assert_eq!(levels, ["neon", "dotprod", "i8mm"]);
    }

    #[test]
    fn models_map_to_the_documented_levels() {
        assert_eq!(expected_level("cortex-a72"), "neon");
        assert_eq!(expected_level("cortex-a53"), "neon");
        assert_eq!(expected_level("neoverse-n1"), "dotprod");
        assert_eq!(expected_level("max"), "i8mm");
    }

    #[test]
    fn cpu_lists_dedupe_and_unknown_models_fail() {
        let o = opts(&["--cpu", "max,cortex-a53", "--cpu=max", "--release"]).unwrap();
        assert_eq!(o.models, ["max", "cortex-a53"]);
        assert!(o.release);
        let err = opts(&["--cpu", "cortex-a710"]).unwrap_err();
        assert!(err.contains("cortex-a710"), "{err}");
    }

    #[test]
    fn x86_levels_alone_runs_no_aarch64_model() {
        let o = opts(&["--x86-levels"]).unwrap();
        assert!(o.models.is_empty() && o.x86_levels);
        let both = opts(&["--x86-levels", "--cpu", "max"]).unwrap();
        assert_eq!(both.models, ["max"]);
    }

    #[test]
    fn legs_set_qemu_cpu_and_expectation() {
        let legs = aarch64_legs(&["neoverse-n1"]);
        assert_eq!(
            legs[0].env,
            [("QEMU_CPU".to_string(), "neoverse-n1".to_string())]
        );
        assert_eq!(legs[0].expect, "dotprod");
    }

    #[test]
    fn test_command_restricts_packages_and_uses_ci_profile() {
        let tester = Tester {
            program: "cargo".into(),
            env: Vec::new(),
        };
        let cmd = tester.test(Some(AARCH64), false, EMULATED_PACKAGES);
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "test",
                "--target",
                AARCH64,
                "--profile",
                "ci-test",
                "-p",
                "qtensor",
                "-p",
                "qkernels",
                "-p",
                "qnn"
            ]
        );
        let release = tester.test(None, true, &["qkernels"]);
        assert!(release.get_args().any(|a| a == "--release"));
    }
}
