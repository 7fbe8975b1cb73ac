//! The `qstack` binary: parses the command line, runs the command, prints an error on one
//! line and exits non-zero on failure (1 for a failed command, 2 for bad flags).

use std::process::ExitCode;

use clap::Parser;
use qstack_cli::cli::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    match qstack_cli::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qstack: error: {e}");
            ExitCode::FAILURE
        }
    }
}
