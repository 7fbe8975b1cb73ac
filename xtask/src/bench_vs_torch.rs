//! `cargo xtask bench-vs-torch [--suite NAME]... [--quick] [--pin] [--python PATH]`: runs each
//! suite's Rust benchmark binary (release) and its PyTorch script, both printing result lines in
//! the format of [`crate::bench_json`], and prints one Markdown comparison table per suite.
//!
//! `--pin` binds every worker thread to its own CPU on both sides: qstack's bench pools through
//! `QSTACK_BENCH_PIN=1` (`qkernels::pin::pinned_pool`), PyTorch's OpenMP threads through
//! `OMP_PROC_BIND=close OMP_PLACES=cores`. Without it neither side is pinned. Use it where the
//! scheduler packs woken threads onto a busy CPU (docs/PERFORMANCE.md, "Two threads").

use crate::Result;
use crate::args::Args;
use crate::bench_json::{Record, parse_records};
use crate::bench_table::{Throughput, markdown};
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
    /// The throughput column (memory traffic or arithmetic).
    pub throughput: Throughput,
}

/// Quantize (f32 in, u8 out) and dequantize (u8 in, f32 out) both move 5 bytes per element.
fn quantize_bytes(record: &Record) -> Option<f64> {
    record.get("n")?.as_f64().map(|n| 5.0 * n)
}

/// A GEMM line's operations: 2·M·N·K.
fn gemm_ops(record: &Record) -> Option<f64> {
    let dim = |name| record.get(name)?.as_f64();
    Some(2.0 * dim("m")? * dim("n")? * dim("k")?)
}

/// A conv line's operations from its `shape` `N,C,H,O,k,groups[,stride]` (H = W, stride 1
/// when absent, padding k/2, so the output is OH×OH with OH = (H + 2·(k/2) − k)/stride + 1):
/// 2·N·O·OH·OH·(C/groups)·k·k.
fn conv_ops(record: &Record) -> Option<f64> {
    let shape = record.get("shape")?.to_string();
    let d: Vec<usize> = shape
        .split(',')
        .map(|v| v.trim().parse().ok())
        .collect::<Option<_>>()?;
    let (n, c, h, o, k, g, s) = match d[..] {
        [n, c, h, o, k, g] => (n, c, h, o, k, g, 1),
        [n, c, h, o, k, g, s] => (n, c, h, o, k, g, s),
        _ => return None,
    };
    let oh = (h + 2 * (k / 2)).checked_sub(k)?.checked_div(s)? + 1;
    let per_group_in = c.checked_div(g)?;
    Some(2.0 * (n * o * oh * oh * per_group_in * k * k) as f64)
}

/// An LSTM line's operations from its `shape` `T,B,I,H,L` (one direction): the gate GEMMs,
/// 2·T·B·4H·(I + H) for the first layer and 2·T·B·4H·2H for each further one.
fn lstm_ops(record: &Record) -> Option<f64> {
    let shape = record.get("shape")?.to_string();
    let d: Vec<f64> = shape
        .split(',')
        .map(|v| v.trim().parse().ok())
        .collect::<Option<_>>()?;
    let [t, b, i, h, l] = d[..] else {
        return None;
    };
    Some(2.0 * t * b * 4.0 * h * ((i + h) + (l - 1.0) * 2.0 * h))
}

/// Arguments both sides of every suite take for `--quick` (fewer timed repeats).
const QUICK_ARGS: &[&str] = &["--repeats", "5", "--warmup", "1"];

/// Every known suite, run in this order when no `--suite` is given.
pub const SUITES: &[Suite] = &[
    Suite {
        name: "quantize",
        title: "quantize_per_tensor -> quint8 and dequantize (f32, contiguous)",
        rust_bin: "vs_torch_quantize",
        torch_script: "tools/bench/torch_quantize.py",
        key_fields: &["op", "n", "threads", "impl"],
        throughput: Throughput {
            unit: "GB/s",
            amount: quantize_bytes,
        },
    },
    Suite {
        name: "gemm",
        title: "quantized Linear: static (quint8 out) and dynamic (f32 out), fbgemm vs qkernels",
        rust_bin: "vs_torch_gemm",
        torch_script: "tools/bench/torch_gemm.py",
        key_fields: &["mode", "m", "k", "n", "threads"],
        throughput: Throughput {
            unit: "GOP/s",
            amount: gemm_ops,
        },
    },
    Suite {
        name: "conv",
        title: "quantized conv2d (NHWC quint8, per-channel qint8 weights) and f32 conv2d",
        rust_bin: "vs_torch_conv",
        torch_script: "tools/bench/torch_conv.py",
        key_fields: &["mode", "shape", "threads"],
        throughput: Throughput {
            unit: "GOP/s",
            amount: conv_ops,
        },
    },
    Suite {
        name: "lstm",
        title: "dynamic quantized LSTM (qint8 weights, f32 states) and float LSTM, 1 thread",
        rust_bin: "vs_torch_lstm",
        torch_script: "tools/bench/torch_lstm.py",
        key_fields: &["mode", "shape", "threads"],
        throughput: Throughput {
            unit: "GOP/s",
            amount: lstm_ops,
        },
    },
];

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

/// The environment that pins both sides' worker threads (`--pin`).
const PIN_VARS: [(&str, &str); 3] = [
    ("QSTACK_BENCH_PIN", "1"),
    ("OMP_PROC_BIND", "close"),
    ("OMP_PLACES", "cores"),
];

fn run_suite(suite: &Suite, quick: bool, pin: bool, python: &Path) -> Result {
    let pin_vars: &[(&str, &str)] = if pin { &PIN_VARS } else { &[] };
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
        .args(quick_arg)
        .envs(pin_vars.iter().copied());
        echo_output(&mut cmd)
    })?;
    let torch_text = step(&format!("bench-vs-torch: {} (torch)", suite.name), || {
        echo_output(
            Command::new(python)
                .arg(suite.torch_script)
                .args(quick_arg)
                .envs(pin_vars.iter().copied()),
        )
    })?;
    let qstack = parse_records(&qstack_text)?;
    let torch = parse_records(&torch_text)?;
    println!("\n### {}: {}\n", suite.name, suite.title);
    print!(
        "{}",
        markdown(&torch, &qstack, suite.key_fields, suite.throughput)
    );
    let rate_note = if suite.throughput.unit == "GB/s" {
        "bytes read + written"
    } else {
        "2 x multiply-accumulates"
    };
    println!(
        "\n(median ns per call; ratio > 1 means qstack is faster; qstack {} = {rate_note} / time)",
        suite.throughput.unit
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
    let pin = args.flag("--pin");
    let explicit = args.value("--python")?;
    let suites = select(&args.values("--suite")?)?;
    args.finish()?;
    let python = python::resolve(explicit.as_deref())?;
    println!("machine: {}", machine_summary());
    if pin {
        println!("threads: pinned, one per CPU, on both sides (--pin)");
    }
    for suite in &suites {
        run_suite(suite, quick, pin, &python)?;
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
        let err = select(&["nope".to_string()]).unwrap_err();
        assert!(
            err.contains("\"nope\"") && err.contains("quantize, gemm, conv, lstm"),
            "{err}"
        );
    }

    #[test]
    fn gemm_and_conv_count_two_ops_per_multiply_accumulate() {
        let gemm =
            &parse_records("{\"mode\":\"static\",\"m\":2,\"k\":3,\"n\":5,\"threads\":1,\"ns\":1}")
                .unwrap()[0];
        assert_eq!(gemm_ops(gemm), Some(60.0));
        // N=1, C=4, H=W=3, O=2, k=3, groups=2: 1*2*9 outputs x (4/2)*9 taps, x2.
        let conv =
            &parse_records("{\"mode\":\"int8\",\"shape\":\"1,4,3,2,3,2\",\"threads\":1,\"ns\":1}")
                .unwrap()[0];
        assert_eq!(conv_ops(conv), Some(2.0 * 18.0 * 18.0));
        // the same with stride 2: output 2x2
        let strided = &parse_records(
            "{\"mode\":\"int8\",\"shape\":\"1,4,3,2,3,2,2\",\"threads\":1,\"ns\":1}",
        )
        .unwrap()[0];
        assert_eq!(conv_ops(strided), Some(2.0 * 8.0 * 18.0));
        let bad = &parse_records("{\"shape\":\"1,4,3\",\"ns\":1}").unwrap()[0];
        assert_eq!(conv_ops(bad), None);
    }

    #[test]
    fn lstm_counts_the_gate_gemms() {
        let r = &parse_records("{\"mode\":\"qint8\",\"shape\":\"2,3,5,7,2\",\"ns\":1}").unwrap()[0];
        assert_eq!(lstm_ops(r), Some(2.0 * 6.0 * 28.0 * (12.0 + 14.0)));
    }

    #[test]
    fn quantize_moves_five_bytes_per_element() {
        let r =
            &parse_records("{\"op\":\"quantize\",\"n\":1000,\"threads\":1,\"ns\":1}").unwrap()[0];
        assert_eq!(quantize_bytes(r), Some(5000.0));
    }
}
