//! `cargo xtask golden [topics...] [--python PATH] [-- extra]`: regenerates the PyTorch golden
//! vectors by running `tools/golden/generate.py` (its CLI is in `tools/golden/README.md`).

use crate::Result;
use crate::args::Args;
use crate::python;
use crate::run::{run, step};
use std::path::Path;
use std::process::Command;

/// The generator script, relative to the workspace root.
pub const GENERATOR: &str = "tools/golden/generate.py";

/// Entry point of `cargo xtask golden`.
pub fn main(raw: &[String]) -> Result {
    let mut args = Args::new(raw);
    let explicit = args.value("--python")?;
    let passthrough = args.passthrough().to_vec();
    let topics = args.positionals()?;
    if !Path::new(GENERATOR).is_file() {
        return Err(format!("{GENERATOR} does not exist in this checkout"));
    }
    let python = python::resolve(explicit.as_deref())?;
    step("golden: generate", || {
        run(Command::new(&python)
            .arg(GENERATOR)
            .args(&topics)
            .args(&passthrough))
    })?;
    println!("\ngolden: done; review with `git status` / `git diff --stat` and commit the files");
    Ok(())
}
