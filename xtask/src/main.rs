//! `cargo xtask` — project automation for qstack, written with the standard library only.
//!
//! Subcommands (run `cargo xtask help` for the options):
//! - `ci`: the README's test command — fmt check, clippy with `-D warnings`, workspace tests.
//! - `cross-test`: the test suites for aarch64 under qemu-user, once per CPU model (each model
//!   selects one int8 dispatch level), and optionally the x86 AVX2/scalar levels under
//!   `qemu-x86_64`.
//! - `golden`: regenerates the PyTorch golden vectors (`tools/golden/generate.py`).
//! - `bench-vs-torch`: runs the Rust and PyTorch benchmark suites and prints a comparison.
//! - `fuzz`, `miri`, `asan`: the hardening runs (cargo-fuzz targets, Miri, AddressSanitizer).

mod args;
mod bench_json;
mod bench_table;
mod bench_vs_torch;
mod ci;
mod cross_test;
mod golden;
mod hardening;
mod prereqs;
mod python;
mod run;
mod x86_levels;

use std::process::ExitCode;

/// Every failure of a subcommand, as a message for the user.
pub type Result<T = ()> = std::result::Result<T, String>;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  ci [fmt] [clippy] [test]
      cargo fmt --check, cargo clippy -D warnings, cargo test --workspace
      (all three unless some are named); stops at the first failure.
  cross-test [--cpu cortex-a72|cortex-a53|neoverse-n1|max|all] [--x86-levels] [--release]
      aarch64 tests under qemu-aarch64, once per CPU model (default: --cpu all =
      cortex-a72, neoverse-n1, max), asserting each model's int8 dispatch level;
      --x86-levels runs the host tests under qemu-x86_64 -cpu max (avx2) and
      -cpu Nehalem (scalar) instead (together with --cpu: both).
      Skips loudly when the tools are missing, unless QSTACK_CROSS_REQUIRED is set.
  golden [topics...] [--python PATH] [-- extra args for generate.py]
      runs tools/golden/generate.py with pinned PyTorch.
  bench-vs-torch [--suite NAME]... [--quick] [--pin] [--python PATH]
      Rust vs PyTorch timings as Markdown tables (suites: quantize, gemm, conv,
      lstm); --pin binds each worker thread to its own CPU on both sides.
  fuzz [--seconds N] [targets...]
      every cargo-fuzz target under fuzz/ (or the named ones) for N seconds each
      (default 60) on nightly, seeded from fuzz/corpus/<target>.
  miri
      cargo +nightly miri test over qtensor and qkernels' scalar paths.
  asan
      the qkernels tests (SIMD kernels included) under AddressSanitizer, on nightly.
  help
      this text.

python resolution (golden, bench-vs-torch): --python, else $QSTACK_TORCH_PYTHON,
else ./.venv-torch/bin/python, else /work/torch-venv/bin/python.";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = argv.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if let Err(err) = run::enter_workspace_root() {
        eprintln!("xtask: {err}");
        return ExitCode::FAILURE;
    }
    let outcome = match command.as_str() {
        "ci" => ci::main(rest),
        "cross-test" => cross_test::main(rest),
        "golden" => golden::main(rest),
        "bench-vs-torch" => bench_vs_torch::main(rest),
        "fuzz" => hardening::fuzz(rest),
        "miri" => hardening::miri(rest),
        "asan" => hardening::asan(rest),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask {command}: FAILED: {err}");
            ExitCode::FAILURE
        }
    }
}
