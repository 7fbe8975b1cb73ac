//! [`CliError`]: every way a `qstack` command can fail; `main` prints it on one line and exits
//! with status 1 (clap's own argument errors exit with 2).

use std::path::PathBuf;

use qnn::QnnError;

use crate::data::DataError;

/// A failed command. Messages name the offending file, flag or value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// Loading a dataset failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A model or optimizer rejected its input.
    #[error("model error: {0}")]
    Model(#[from] QnnError),
    /// Building or running a model graph failed.
    #[error("graph error: {0}")]
    Graph(#[from] qflow::QflowError),
    /// A weights file could not be read or does not fit the architecture.
    #[error("{}: {reason}", path.display())]
    Weights {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file or directory could not be read or written.
    #[error("{}: {message}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The operating system's message.
        message: String,
    },
    /// A flag value that parses but makes no sense (checked after clap).
    #[error("invalid {flag}: {reason}")]
    InvalidArg {
        /// The flag, e.g. `--batch-size`.
        flag: &'static str,
        /// Why, naming the value.
        reason: String,
    },
    /// A quantization mode whose library support has not landed yet.
    #[error("{what}: not available yet (waiting for {waiting_for})")]
    NotAvailable {
        /// The mode or step.
        what: String,
        /// The API it needs.
        waiting_for: String,
    },
    /// Training diverged (the loss became NaN or infinite).
    #[error("training diverged at epoch {epoch}, step {step}: loss is {loss} (lower --lr)")]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// 0-based step within the epoch.
        step: usize,
        /// The loss value.
        loss: f32,
    },
}

/// Result alias of the CLI.
pub type Result<T> = std::result::Result<T, CliError>;

impl CliError {
    /// An [`CliError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, e: &std::io::Error) -> Self {
        CliError::Io {
            path: path.into(),
            message: e.to_string(),
        }
    }
}
