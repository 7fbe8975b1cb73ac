//! SHA-256 checks of dataset files against a `SHA256SUMS` list (`sha256sum`'s format) or the
//! digests built into the binary for the known datasets.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::error::DataError;

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Parses `sha256sum` output: `<64 hex>  <name>` (or `<64 hex> *<name>`) per line; blank lines
/// are skipped. `path` names the list in errors.
pub fn parse_sha256sums(text: &str, path: &Path) -> Result<BTreeMap<String, String>, DataError> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        let bad = || DataError::BadChecksumList {
            path: path.to_path_buf(),
            line: i + 1,
        };
        let (digest, name) = line.split_once(' ').ok_or_else(bad)?;
        let name = name.trim_start_matches([' ', '*']);
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) || name.is_empty() {
            return Err(bad());
        }
        out.insert(name.to_string(), digest.to_ascii_lowercase());
    }
    Ok(out)
}

/// Checks `bytes` (the contents of `path`) against `expected` (lower-case hex).
pub fn verify(path: &Path, bytes: &[u8], expected: &str) -> Result<(), DataError> {
    let found = sha256_hex(bytes);
    if found == expected {
        Ok(())
    } else {
        Err(DataError::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: expected.to_string(),
            found,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_strings() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn parses_sha256sum_lines_and_rejects_bad_ones() {
        let d = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let list = parse_sha256sums(&format!("{d}  a.gz\n\n{d} *b.gz\n"), Path::new("S")).unwrap();
        assert_eq!(list.get("a.gz").map(String::as_str), Some(d));
        assert_eq!(list.get("b.gz").map(String::as_str), Some(d));
        assert_eq!(
            parse_sha256sums(&format!("{d}  a.gz\nxyz  b.gz\n"), Path::new("S")),
            Err(DataError::BadChecksumList {
                path: "S".into(),
                line: 2
            })
        );
        assert!(parse_sha256sums(d, Path::new("S")).is_err());
    }

    #[test]
    fn verify_names_both_digests() {
        let err = verify(Path::new("f"), b"abc", &"0".repeat(64)).unwrap_err();
        assert!(err.to_string().contains("ba7816bf"), "{err}");
        assert!(verify(Path::new("f"), b"", &sha256_hex(b"")).is_ok());
    }
}
