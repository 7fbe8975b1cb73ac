//! Which Python runs the PyTorch side (goldens, benchmarks): `--python`, else
//! `$QSTACK_TORCH_PYTHON`, else `./.venv-torch/bin/python`, else `/work/torch-venv/bin/python`.

use crate::Result;
use std::path::{Path, PathBuf};

/// The environment variable naming the Python interpreter that has the pinned torch.
pub const PYTHON_ENV: &str = "QSTACK_TORCH_PYTHON";

/// The pinned PyTorch version the goldens and benchmarks are made with.
pub const TORCH_VERSION: &str = "2.15.0";

/// Fallback interpreters, tried in order when neither `--python` nor the variable is given.
const CANDIDATES: &[&str] = &[".venv-torch/bin/python", "/work/torch-venv/bin/python"];

/// Picks the interpreter from an explicit choice, the environment value, then
/// [`CANDIDATES`] (tested with `exists`). An explicit choice that does not exist is an error.
fn pick(
    explicit: Option<&str>,
    from_env: Option<&str>,
    exists: impl Fn(&Path) -> bool,
) -> Result<PathBuf> {
    let chosen = explicit
        .map(|p| ("--python", p))
        .or_else(|| from_env.filter(|p| !p.is_empty()).map(|p| (PYTHON_ENV, p)));
    if let Some((source, path)) = chosen {
        let path = PathBuf::from(path);
        return if exists(&path) {
            Ok(path)
        } else {
            Err(format!(
                "{source} names {}, which does not exist",
                path.display()
            ))
        };
    }
    CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| exists(p))
        .ok_or_else(|| {
            format!(
                "no Python with torch {TORCH_VERSION} found (tried --python, ${PYTHON_ENV}, {}).\n\
                 Create one with:\n    python3 -m venv .venv-torch\n    \
                 .venv-torch/bin/pip install torch=={TORCH_VERSION} numpy\n\
                 or point {PYTHON_ENV} at an interpreter that has them.",
                CANDIDATES.join(", ")
            )
        })
}

/// The interpreter to use, given the `--python` option (if any).
pub fn resolve(explicit: Option<&str>) -> Result<PathBuf> {
    let from_env = std::env::var(PYTHON_ENV).ok();
    pick(explicit, from_env.as_deref(), |p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_beats_env_beats_candidates() {
        let all = |_: &Path| true;
        assert_eq!(
            pick(Some("/a/py"), Some("/b/py"), all).unwrap(),
            Path::new("/a/py")
        );
        assert_eq!(pick(None, Some("/b/py"), all).unwrap(), Path::new("/b/py"));
        assert_eq!(pick(None, Some(""), all).unwrap(), Path::new(CANDIDATES[0]));
    }

    #[test]
    fn falls_through_candidates_in_order() {
        let only_second = |p: &Path| p == Path::new(CANDIDATES[1]);
        assert_eq!(
            pick(None, None, only_second).unwrap(),
            Path::new(CANDIDATES[1])
        );
    }

    #[test]
    fn missing_interpreters_are_errors_that_explain() {
        let none = |_: &Path| false;
        let err = pick(Some("/x/python"), None, none).unwrap_err();
        assert!(err.contains("--python names /x/python"), "{err}");
        let err = pick(None, None, none).unwrap_err();
        assert!(err.contains("pip install torch==2.15.0 numpy"), "{err}");
    }
}
