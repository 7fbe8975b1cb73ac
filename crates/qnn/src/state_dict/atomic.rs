//! Whole-or-nothing file writes: the bytes go to a temporary file in the target's directory,
//! which is flushed to disk and then renamed over the target. A crash or an error mid-write
//! leaves the old file (or no file) in place, never a truncated one, and the temporary file is
//! removed on every error path.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{QnnError, Result};

/// Distinguishes temporary files of concurrent writes within one process.
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

fn io_err(path: &Path, e: &std::io::Error) -> QnnError {
    QnnError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Writes `bytes` to `path` atomically: a temporary file `.<name>.tmp-<pid>-<n>` in the same
/// directory is written, `fsync`ed and renamed over `path`, then the directory is synced (best
/// effort). The parent directory must exist. On error nothing is left behind and an existing
/// file at `path` is unchanged ([`QnnError::Io`] names the path).
///
/// ```
/// let dir = std::env::temp_dir().join(format!("qnn-atomic-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("model.safetensors");
/// qnn::state_dict::write_atomic(&path, b"new bytes")?;
/// assert_eq!(std::fs::read(&path)?, b"new bytes");
/// assert_eq!(std::fs::read_dir(&dir)?.count(), 1); // no temporary file left
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let name = path.file_name().ok_or_else(|| QnnError::Io {
        path: path.display().to_string(),
        message: "not a file path".into(),
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        NEXT_TMP.fetch_add(1, Ordering::Relaxed)
    ));
    let written = write_synced(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        // The temporary file may not exist (create failed); nothing else to clean.
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(path, &e));
    }
    // Make the rename itself durable; not every platform can open a directory for syncing.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Creates `tmp` (it must not exist), writes `bytes` and flushes them to disk.
fn write_synced(tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new().write(true).create_new(true).open(tmp)?;
    f.write_all(bytes)?;
    f.sync_all()
}
