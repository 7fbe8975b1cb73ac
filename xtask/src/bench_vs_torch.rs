//! `cargo xtask bench-vs-torch [--suite NAME]... [--quick] [--python PATH]`: runs each suite's
//! Rust benchmark binary (release) and its PyTorch script, both printing result lines in the
//! format of [`crate::bench_json`], and prints one Markdown comparison table per suite.

use crate::Result;
use crate::args::Args;
use crate::bench_json::{Record, parse_records};
use crate::bench_table::{BytesMoved, markdown};
use crate::python;
use crate::run::{cargo, output, step};
use std::path::Path;
use std::process::{Command, Stdio};

/// One comparison: a Rust binary in `benches/src/bin/` and a PyTorch script measuring the same
/// operations on the same shapes.
#[derive(Clone, Copy, Debug)]
pub struct Suite {
    /// The `--suite` name.
    pub name: &'static str,
    /// What is compared, for the table heading.
    pub title: &'static str,
    /// The `[[bin]]` of the `qstack-benches` package.
    pub rust_bin: &'static str,
    /// The PyTorch script, relative to the workspace root.
    pub torch_script: &'static str,
    /// The fields that identify a measurement on both sides (extra fields are ignored).
    pub key_fields: &'static [&'static str],
    /// Memory traffic of one measurement, for the GB/s column.
    pub bytes: BytesMoved,
}

/// Quantize (f32 in, u8 out) and dequantize (u8 in, f32 out) both move 5 bytes per element.
fn quantize_bytes(record: &Record) -> Option<f64> {
    record.get("n")?.as_f64().map(|n| 5.0 * n)
}

/// Arguments both sides of every suite take for `--quick` (fewer timed repeats).
const QUICK_ARGS: &[&str] = &["--repeats", "5", "--warmup", "1"];

/// Every known suite, run in this order when no `--suite` is given.
pub const SUITES: &[Suite] = &[Suite {
    name: "quantize",
    title: "quantize_per_tensor -> quint8 and dequantize (f32, contiguous)",
    rust_bin: "vs_torch_quantize",
    torch_script: "tools/bench/torch_quantize.py",
    key_fields: &["op", "n", "threads"],
    bytes: quantize_bytes,
}];

fn select(names: &[String]) -> Result<Vec<Suite>> {
    if names.is_empty() {
        return Ok(SUITES.to_vec());
    }
    names
        .iter()
        .flat_map(|n| n.split(','))
        .map(|name| {
            SUITES
                .iter()
                .copied()
                .find(|s| s.name == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = SUITES.iter().map(|s| s.name).collect();
                    format!(
                        "unknown suite {name:?}: known suites are {}",
                        known.join(", ")
                    )
                })
        })
        .collect()
}

fn run_suite(suite: &Suite, quick: bool, python: &Path) -> Result {
    let quick_arg: &[&str] = if quick { QUICK_ARGS } else { &[] };
    if !Path::new(suite.torch_script).is_file() {
        return Err(format!(
            "{} does not exist in this checkout",
            suite.torch_script
        ));
    }
    let qstack_text = step(&format!("bench-vs-torch: {} (qstack)", suite.name), || {
        let mut cmd = cargo();
        cmd.args([
            "run",
            "--release",
            "--quiet",
            "-p",
            "qstack-benches",
            "--bin",
        ])
        .arg(suite.rust_bin)
        .arg("--")
        .args(quick_arg);
        echo_output(&mut cmd)
    })?;
    let torch_text = step(&format!("bench-vs-torch: {} (torch)", suite.name), || {
        echo_output(Command::new(python).arg(suite.torch_script).args(quick_arg))
    })?;
    let qstack = parse_records(&qstack_text)?;
    let torch = parse_records(&torch_text)?;
    println!("\n### {}: {}\n", suite.name, suite.title);
    print!(
        "{}",
        markdown(&torch, &qstack, suite.key_fields, suite.bytes)
    );
    println!(
        "\n(median ns per call; ratio > 1 means qstack is faster; GB/s = bytes read + written / time)"
    );
    Ok(())
}

/// Runs `cmd` capturing stdout, echoes the command line and its output, returns the output.
fn echo_output(cmd: &mut Command) -> Result<String> {
    println!("$ {}", crate::run::describe(cmd));
    let text = output(cmd.stderr(Stdio::inherit()))?;
    print!("{text}");
    Ok(text)
}

/// The CPU model and logical core count from `/proc/cpuinfo`, for the record.
fn machine_summary() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("unknown CPU", |(_, name)| name.trim());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{model}, {cores} logical cores available, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// Entry point of `cargo xtask bench-vs-torch`.
pub fn main(raw: &[String]) -> Result {
    let mut args = Args::new(raw);
    let quick = args.flag("--quick");
    let explicit = args.value("--python")?;
    let suites = select(&args.values("--suite")?)?;
    args.finish()?;
    let python = python::resolve(explicit.as_deref())?;
    println!("machine: {}", machine_summary());
    for suite in &suites {
        run_suite(suite, quick, &python)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_selects_every_suite_and_unknown_names_fail() {
        assert_eq!(select(&[]).unwrap().len(), SUITES.len());
        let picked = select(&["quantize".to_string()]).unwrap();
        assert_eq!(picked[0].rust_bin, "vs_torch_quantize");
        let err = select(&["conv".to_string()]).unwrap_err();
        assert!(
            err.contains("\"conv\"") && err.contains("quantize"),
            "{err}"
        );
    }

    #[test]
    fn quantize_moves_five_bytes_per_element() {
        let r =
            &parse_records("{\"op\":\"quantize\",\"n\":1000,\"threads\":1,\"ns\":1}").unwrap()[0];
        assert_eq!(quantize_bytes(r), Some(5000.0));
    }
}
