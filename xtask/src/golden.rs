//! `cargo xtask golden [topics...] [--verify] [--out DIR] [--python PATH] [-- extra]`:
//! regenerates the PyTorch golden vectors with `tools/golden/generate.py` (CLI in
//! `tools/golden/README.md`); `--verify` regenerates into a temporary directory and compares
//! byte for byte with the committed files instead.

use crate::Result;
use crate::args::Args;
use crate::python::{self, TORCH_VERSION};
use crate::run::{run, step};
use std::path::Path;
use std::process::Command;

/// The generator script, relative to the workspace root.
pub const GENERATOR: &str = "tools/golden/generate.py";

/// Entry point of `cargo xtask golden`.
pub fn main(raw: &[String]) -> Result {
    let mut args = Args::new(raw);
    let explicit = args.value("--python")?;
    let verify = args.flag("--verify");
    let out = args.value("--out")?;
    let passthrough = args.passthrough().to_vec();
    let topics = args.positionals()?;
    if !Path::new(GENERATOR).is_file() {
        return Err(format!("{GENERATOR} does not exist in this checkout"));
    }
    let python = python::resolve(explicit.as_deref())?;
    run(Command::new(&python).args([GENERATOR, "--python-check"])).map_err(|e| {
        format!(
            "{e}\n{} cannot run the generator: it needs torch=={TORCH_VERSION} with the fbgemm \
             engine and numpy (`{} -m pip install torch=={TORCH_VERSION} numpy`, or choose \
             another interpreter with --python / ${})",
            python.display(),
            python.display(),
            python::PYTHON_ENV
        )
    })?;
    let mut cmd = Command::new(&python);
    cmd.arg(GENERATOR);
    if verify {
        cmd.arg("--verify");
    }
    if let Some(dir) = out {
        cmd.args(["--out", &dir]);
    }
    cmd.args(&topics).args(&passthrough);
    let label = if verify {
        "golden: verify"
    } else {
        "golden: generate"
    };
    step(label, || run(&mut cmd))?;
    if !verify {
        println!(
            "\ngolden: done; review with `git status` / `git diff --stat`, then commit the files"
        );
    }
    Ok(())
}
