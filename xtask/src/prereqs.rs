//! Finding, and when allowed installing, what the emulated test runs need: a rustup target,
//! Debian packages (cross gcc, sysroot, qemu-user) and, as a last resort, `cross` with a
//! container engine that answers.

use crate::Result;
use crate::run::{output, run, succeeds};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Something the run needs, found by a probe and provided by a Debian package.
#[derive(Clone, Copy, Debug)]
pub struct Tool {
    /// What is missing, for messages (`aarch64-linux-gnu-gcc`, `the aarch64 glibc sysroot`).
    pub what: &'static str,
    /// A program that must run `--version` successfully, or a file that must exist.
    pub probe: Probe,
    /// The Debian package that provides it.
    pub package: &'static str,
}

/// How a [`Tool`] is looked for.
#[derive(Clone, Copy, Debug)]
pub enum Probe {
    /// `<program> --version` exits with 0.
    Program(&'static str),
    /// The file exists.
    File(&'static str),
}

impl Tool {
    /// Whether the tool is present on this machine.
    pub fn present(&self) -> bool {
        match self.probe {
            Probe::Program(program) => succeeds(program, &["--version"]),
            Probe::File(path) => Path::new(path).exists(),
        }
    }
}

/// Whether this process runs as root (effective uid 0), read from `/proc/self/status`.
pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        .unwrap_or(false)
}

/// The first `name` on `PATH`, without running it.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Makes every tool present: as root, installs the missing packages with apt-get.
/// `Err` carries the reason the tools cannot be had (for a loud skip).
pub fn ensure_tools(tools: &[Tool]) -> Result {
    let missing: Vec<&Tool> = tools.iter().filter(|t| !t.present()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|t| t.what).collect();
    let mut packages: Vec<&str> = missing.iter().map(|t| t.package).collect();
    packages.dedup();
    if !is_root() {
        return Err(format!(
            "missing {} and not running as root, so cannot install them; run \
             `sudo apt-get install -y --no-install-recommends {}`",
            names.join(", "),
            packages.join(" ")
        ));
    }
    if which("apt-get").is_none() {
        return Err(format!(
            "missing {} and there is no apt-get to install {}",
            names.join(", "),
            packages.join(" ")
        ));
    }
    println!(
        "installing {} (missing: {})",
        packages.join(" "),
        names.join(", ")
    );
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        cmd
    };
    run(&mut apt(&["update"])).map_err(|e| format!("apt-get update failed: {e}"))?;
    let mut install = apt(&["install", "-y", "--no-install-recommends"]);
    install.args(&packages);
    run(&mut install).map_err(|e| format!("apt-get install failed: {e}"))?;
    let still: Vec<&str> = tools
        .iter()
        .filter(|t| !t.present())
        .map(|t| t.what)
        .collect();
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "still missing after apt-get install: {}",
            still.join(", ")
        ))
    }
}

/// Whether the Rust standard library for `triple` is installed in the active toolchain.
fn has_rust_target(triple: &str) -> bool {
    output(Command::new("rustc").args(["--print", "sysroot"]))
        .map(|sysroot| {
            Path::new(sysroot.trim())
                .join("lib/rustlib")
                .join(triple)
                .join("lib")
                .is_dir()
        })
        .unwrap_or(false)
}

/// Makes the rust-std for `triple` present (`rustup target add`); `Err` is the skip reason.
pub fn ensure_rust_target(triple: &str) -> Result {
    if has_rust_target(triple) {
        return Ok(());
    }
    if which("rustup").is_none() {
        return Err(format!(
            "the Rust standard library for {triple} is not installed and there is no rustup"
        ));
    }
    run(Command::new("rustup").args(["target", "add", triple]))
        .map_err(|e| format!("cannot install the Rust target {triple}: {e}"))?;
    if has_rust_target(triple) {
        Ok(())
    } else {
        Err(format!(
            "rustup target add {triple} left no standard library"
        ))
    }
}

/// `cross` may be used only when it is installed and a container engine answers
/// (`docker info` / `podman info` succeed). This never runs `cross` itself.
pub fn cross_usable() -> Option<PathBuf> {
    let cross = which("cross")?;
    let engine_answers = ["docker", "podman"]
        .into_iter()
        .any(|engine| which(engine).is_some() && succeeds(engine, &["info"]));
    engine_answers.then_some(cross)
}

/// Outcome of a run that may be skipped when the machine lacks the tools.
pub fn skip(reason: &str) -> Result {
    let required = crate::run::env_flag(REQUIRED_ENV);
    let bar = "!".repeat(78);
    eprintln!("\n{bar}\nSKIPPED: {reason}\n{bar}");
    if required {
        Err(format!(
            "{REQUIRED_ENV} is set, so a skip is a failure: {reason}"
        ))
    } else {
        eprintln!("(set {REQUIRED_ENV}=1 to make this a failure)\n");
        Ok(())
    }
}

/// When set (non-empty, not `0`), a skipped emulated run fails instead (CI sets it).
pub const REQUIRED_ENV: &str = "QSTACK_CROSS_REQUIRED";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_probe_checks_existence() {
        let here = Tool {
            what: "manifest",
            probe: Probe::File(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")),
            package: "none",
        };
        let gone = Tool {
            probe: Probe::File("/nonexistent/qstack/file"),
            ..here
        };
        assert!(here.present());
        assert!(!gone.present());
    }

    #[test]
    fn missing_program_is_not_present() {
        let tool = Tool {
            what: "x",
            probe: Probe::Program("qstack-no-such-program"),
            package: "x",
        };
        assert!(!tool.present());
        assert!(which("qstack-no-such-program").is_none());
    }
}
