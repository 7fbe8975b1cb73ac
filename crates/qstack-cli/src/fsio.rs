//! Output files are written whole or not at all: bytes go to a hidden temporary file in the
//! same directory, which is renamed over the target only once complete.

use std::path::Path;

use crate::error::{CliError, Result};

/// Creates `dir` (and its parents) if missing.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir, &e))
}

/// Writes `bytes` to `path` atomically (temporary file + rename); creates the parent
/// directory. Returns the number of bytes written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<u64> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    ensure_dir(&parent)?;
    let name = path
        .file_name()
        .ok_or_else(|| CliError::Io {
            path: path.to_path_buf(),
            message: "not a file path".into(),
        })?
        .to_string_lossy()
        .into_owned();
    let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    match result {
        Ok(()) => Ok(bytes.len() as u64),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(CliError::io(path, &e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_files_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("qstack-fsio-{}", std::process::id()));
        let p = dir.join("sub/a.bin");
        assert_eq!(write_atomic(&p, b"hello").unwrap(), 5);
        assert_eq!(std::fs::read(&p).unwrap(), b"hello");
        let names: Vec<_> = std::fs::read_dir(dir.join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.bin")]);
        // A directory where the file should go: an error, and no temporary left.
        assert!(write_atomic(&dir, b"x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
