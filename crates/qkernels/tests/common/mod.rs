//! Reading the committed PyTorch goldens in qkernels' tests: the workspace's one reader of the
//! golden format (qtensor's `tests/golden_support/format.rs`) plus the conventions of the
//! `gen_linear.py` / `gen_conv.py` generators.

#![allow(dead_code)]

#[path = "../../../qtensor/tests/golden_support/format.rs"]
pub mod format;

pub use format::Case;

/// Parses a golden file, failing on a malformed, empty or truncated one (`# cases N` must
/// match the cases read).
pub fn parse(text: &str) -> Vec<Case> {
    let file = format::parse(text).unwrap_or_else(|e| panic!("golden file: {e}"));
    assert_eq!(
        file.declared_cases,
        file.cases.len(),
        "truncated golden file"
    );
    assert!(!file.cases.is_empty(), "empty golden file");
    file.cases
}

/// A boolean the qkernels generators store as the string token `yes` (anything else is no).
pub fn yes(c: &Case, key: &str) -> bool {
    c.str(key) == "yes"
}
