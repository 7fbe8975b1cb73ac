//! `cargo xtask ci`: the test command of the README — fmt check, clippy with `-D warnings`,
//! and the workspace tests, in that order, stopping at the first failure.

use crate::Result;
use crate::args::Args;
use crate::run::{cargo, run, step};
use std::process::Command;

/// One check of the CI sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    Fmt,
    Clippy,
    Test,
}

impl Check {
    const ALL: [Check; 3] = [Check::Fmt, Check::Clippy, Check::Test];

    fn name(self) -> &'static str {
        match self {
            Check::Fmt => "fmt",
            Check::Clippy => "clippy",
            Check::Test => "test",
        }
    }

    fn command(self) -> Command {
        let mut cmd = cargo();
        match self {
            Check::Fmt => cmd.args(["fmt", "--all", "--", "--check"]),
            Check::Clippy => cmd.args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
            Check::Test => cmd.args(["test", "--workspace"]),
        };
        cmd
    }
}

/// Parses the optional check names (`fmt`, `clippy`, `test`); none means all, in CI order.
fn selected(names: &[String]) -> Result<Vec<Check>> {
    if names.is_empty() {
        return Ok(Check::ALL.to_vec());
    }
    let mut picked = Vec::new();
    for name in names {
        let check = Check::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| format!("unknown check {name:?}: expected fmt, clippy or test"))?;
        picked.push(check);
    }
    Ok(Check::ALL
        .into_iter()
        .filter(|c| picked.contains(c))
        .collect())
}

/// Entry point of `cargo xtask ci [fmt] [clippy] [test]`.
pub fn main(raw: &[String]) -> Result {
    let checks = selected(&Args::new(raw).positionals()?)?;
    for check in checks {
        step(&format!("ci: {}", check.name()), || {
            run(&mut check.command())
        })?;
    }
    println!("\nci: all checks passed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_run_in_ci_order_whatever_the_argument_order() {
        let names = ["test".to_string(), "fmt".to_string()];
        assert_eq!(selected(&names).unwrap(), [Check::Fmt, Check::Test]);
        assert_eq!(selected(&[]).unwrap(), Check::ALL);
        assert!(
            selected(&["lint".to_string()])
                .unwrap_err()
                .contains("\"lint\"")
        );
    }

    #[test]
    fn clippy_denies_warnings_on_all_targets() {
        let cmd = Check::Clippy.command();
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings"
            ]
        );
    }
}
