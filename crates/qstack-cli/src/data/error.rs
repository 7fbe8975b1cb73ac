//! [`DataError`]: every way loading a dataset can fail.

use std::path::PathBuf;

use super::idx::IdxError;

/// Why a dataset could not be loaded. Messages name the file and say what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataError {
    /// A malformed IDX file.
    #[error(transparent)]
    Idx(#[from] IdxError),
    /// A dataset file is missing.
    #[error("{}: missing dataset file{}", path.display(), hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    MissingFile {
        /// The file looked for (the `.gz` name).
        path: PathBuf,
        /// What to do about it, if known.
        hint: Option<String>,
    },
    /// Fashion-MNIST is not installed where Debian's package puts it.
    #[error(
        "Fashion-MNIST not found in {}: install Debian's package with `apt-get install dataset-fashion-mnist`, or pass --data-dir DIR holding its four IDX files",
        dir.display()
    )]
    FashionMnistNotInstalled {
        /// The directory looked in.
        dir: PathBuf,
    },
    /// A file's SHA-256 differs from the expected one.
    #[error("{}: SHA-256 mismatch: expected {expected}, found {found} (corrupt or different file)", path.display())]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// The digest listed in `SHA256SUMS` (or built in).
        expected: String,
        /// The digest of the file.
        found: String,
    },
    /// A `SHA256SUMS` line that is not `<64 hex digits>  <name>`.
    #[error("{}: line {line}: not a `<sha256>  <file>` line", path.display())]
    BadChecksumList {
        /// The `SHA256SUMS` file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// The image and label files hold different numbers of samples.
    #[error("{}: {images} images but {labels} labels", images_path.display())]
    CountMismatch {
        /// The images file.
        images_path: PathBuf,
        /// Images in the file (after any limit).
        images: usize,
        /// Labels in the label file (after any limit).
        labels: usize,
    },
    /// A label outside `0..10`.
    #[error("{}: label {label} at index {index} is not a class in 0..10", path.display())]
    LabelOutOfRange {
        /// The labels file.
        path: PathBuf,
        /// Sample index.
        index: usize,
        /// The label.
        label: u8,
    },
    /// A split that ended up with no samples.
    #[error("{what}: no samples (the file is empty or the limit is 0)")]
    Empty {
        /// Which split.
        what: String,
    },
}
