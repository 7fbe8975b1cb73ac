//! Shared support for the PyTorch golden-vector tests: the file parser and bit-exact
//! comparison helpers. The format is written by `tools/golden/golden_io.py`.

pub mod compare;
pub mod format;

pub use compare::Failures;
pub use format::{Case, GoldenFile};

/// Parse an embedded golden file, panicking with the file name on malformed input
/// (the data is committed, so a parse error is a bug in the generator or the file).
pub fn load(file_name: &str, text: &str) -> GoldenFile {
    let golden =
        format::parse(text).unwrap_or_else(|e| panic!("{file_name}: malformed golden file: {e}"));
    assert!(
        !golden.cases.is_empty(),
        "{file_name}: golden file has no cases (regenerate with tools/golden/generate.py)"
    );
    assert_eq!(
        golden.cases.len(),
        golden.declared_cases,
        "{file_name}: header declares {} cases but {} were parsed",
        golden.declared_cases,
        golden.cases.len()
    );
    golden
}
