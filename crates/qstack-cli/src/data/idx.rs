//! The IDX file format (MNIST's): a 4-byte magic `00 00 <dtype> <rank>`, `rank` big-endian u32
//! dimensions, then the elements row-major. Only unsigned bytes (dtype `0x08`) are accepted,
//! which is what MNIST and Fashion-MNIST use. Files may be gzip-compressed (detected by the gzip
//! magic `1f 8b`) or raw.
//!
//! Every malformed input is a typed [`IdxError`]: nothing is allocated from a header before its
//! claimed size has been checked against [`MAX_IDX_BYTES`] and, for raw files, against the
//! bytes actually present.

use std::io::{BufReader, Read};
use std::path::Path;

use flate2::read::GzDecoder;

/// The largest payload an IDX file may claim (1 GiB; MNIST's training images are 47 MB).
pub const MAX_IDX_BYTES: u64 = 1 << 30;

/// The largest rank accepted (MNIST uses 1 for labels and 3 for images).
pub const MAX_IDX_RANK: u8 = 4;

/// The IDX dtype byte for unsigned bytes.
const DTYPE_U8: u8 = 0x08;

/// Why an IDX file was rejected. `file` names the file (or `"<bytes>"`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdxError {
    /// The file could not be read.
    #[error("{file}: cannot read: {message}")]
    Io {
        /// The file.
        file: String,
        /// The operating system's message.
        message: String,
    },
    /// The gzip stream is corrupt.
    #[error("{file}: corrupt gzip data: {message}")]
    Gzip {
        /// The file.
        file: String,
        /// The decoder's message.
        message: String,
    },
    /// The first two bytes are not zero, or the file is shorter than a header.
    #[error("{file}: not an IDX file (magic {found:02x?}, expected [00, 00, 08, rank])")]
    BadMagic {
        /// The file.
        file: String,
        /// The bytes found where the magic should be.
        found: Vec<u8>,
    },
    /// An element type other than unsigned bytes.
    #[error("{file}: IDX dtype 0x{dtype:02x} is not supported (only 0x08, unsigned bytes)")]
    UnsupportedDtype {
        /// The file.
        file: String,
        /// The dtype byte.
        dtype: u8,
    },
    /// A rank the caller did not expect (or zero, or above [`MAX_IDX_RANK`]).
    #[error("{file}: IDX rank {found}, expected {expected}")]
    WrongRank {
        /// The file.
        file: String,
        /// The rank the caller needs.
        expected: u8,
        /// The rank in the header.
        found: u8,
    },
    /// Dimensions that do not fit what the caller needs (e.g. images not 28×28).
    #[error("{file}: IDX dims {found:?}, expected {expected}")]
    WrongDims {
        /// The file.
        file: String,
        /// What the caller needs, in words.
        expected: String,
        /// The dims in the header.
        found: Vec<u32>,
    },
    /// The header claims more data than [`MAX_IDX_BYTES`] (or the product overflows).
    #[error("{file}: IDX dims {dims:?} claim {claimed} bytes, more than the {max} allowed")]
    TooLarge {
        /// The file.
        file: String,
        /// The dims in the header.
        dims: Vec<u32>,
        /// The claimed payload in bytes (saturated at `u64::MAX`).
        claimed: u64,
        /// The limit.
        max: u64,
    },
    /// Fewer payload bytes than the header claims.
    #[error("{file}: truncated: header claims {expected} bytes of data, file has {found}")]
    Truncated {
        /// The file.
        file: String,
        /// Claimed payload bytes.
        expected: u64,
        /// Payload bytes present.
        found: u64,
    },
    /// More bytes after the claimed payload.
    #[error("{file}: {extra} unexpected bytes after the {expected} bytes of data")]
    TrailingBytes {
        /// The file.
        file: String,
        /// Claimed payload bytes.
        expected: u64,
        /// Bytes beyond it (at least this many).
        extra: u64,
    },
}

/// A decoded IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions from the header, outermost first.
    pub dims: Vec<u32>,
    /// The elements, row-major; `dims[0]` may have been cut by a limit (see [`read_idx`]).
    pub data: Vec<u8>,
}

impl IdxArray {
    /// Number of items along the first dimension actually held.
    pub fn len(&self) -> usize {
        self.dims.first().map_or(0, |&d| d as usize)
    }

    /// True when no item is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Elements per item (the product of every dimension but the first).
    pub fn item_len(&self) -> usize {
        self.dims.iter().skip(1).map(|&d| d as usize).product()
    }
}

/// Parses the header from `r`; returns the dims.
fn read_header(r: &mut impl Read, source: &str, rank: u8) -> Result<Vec<u32>, IdxError> {
    let mut magic = [0u8; 4];
    let got = read_up_to(r, &mut magic, source)?;
    if got < 4 || magic[0] != 0 || magic[1] != 0 {
        return Err(IdxError::BadMagic {
            file: source.into(),
            found: magic[..got].to_vec(),
        });
    }
    if magic[2] != DTYPE_U8 {
        return Err(IdxError::UnsupportedDtype {
            file: source.into(),
            dtype: magic[2],
        });
    }
    if magic[3] != rank || rank == 0 || rank > MAX_IDX_RANK {
        return Err(IdxError::WrongRank {
            file: source.into(),
            expected: rank,
            found: magic[3],
        });
    }
    let mut dims = Vec::with_capacity(rank as usize);
    for _ in 0..rank {
        let mut d = [0u8; 4];
        let got = read_up_to(r, &mut d, source)?;
        if got < 4 {
            return Err(IdxError::Truncated {
                file: source.into(),
                expected: 4 * u64::from(rank),
                found: (4 * dims.len() + got) as u64,
            });
        }
        dims.push(u32::from_be_bytes(d));
    }
    Ok(dims)
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8], source: &str) -> Result<usize, IdxError> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(stream_err(source, e)),
        }
    }
    Ok(filled)
}

fn stream_err(source: &str, e: std::io::Error) -> IdxError {
    if e.kind() == std::io::ErrorKind::InvalidInput || e.kind() == std::io::ErrorKind::InvalidData {
        IdxError::Gzip {
            file: source.into(),
            message: e.to_string(),
        }
    } else {
        IdxError::Io {
            file: source.into(),
            message: e.to_string(),
        }
    }
}

/// Claimed payload bytes of `dims`, checked against [`MAX_IDX_BYTES`]. The size of one item
/// (every dimension but the first) is checked too: with zero items the total is 0 however
/// large the item claims to be, and that item size must still fit.
fn claimed_bytes(dims: &[u32], source: &str) -> Result<u64, IdxError> {
    let product = |ds: &[u32]| {
        ds.iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
            .unwrap_or(u64::MAX)
    };
    let claimed = product(dims);
    let item = product(dims.get(1..).unwrap_or(&[]));
    if claimed > MAX_IDX_BYTES || item > MAX_IDX_BYTES {
        return Err(IdxError::TooLarge {
            file: source.into(),
            dims: dims.to_vec(),
            claimed: claimed.max(item),
            max: MAX_IDX_BYTES,
        });
    }
    Ok(claimed)
}

/// Decodes an IDX array of rank `rank` from `bytes` (gzip or raw). With `limit`, at most `limit`
/// items along the first dimension are decoded (the rest of the file is neither decompressed
/// nor checked for trailing bytes) and `dims[0]` is lowered to match.
pub fn parse_idx(
    bytes: &[u8],
    source: &str,
    rank: u8,
    limit: Option<usize>,
) -> Result<IdxArray, IdxError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        decode(
            BufReader::new(GzDecoder::new(bytes)),
            source,
            rank,
            limit,
            None,
        )
    } else {
        decode(bytes, source, rank, limit, Some(bytes.len() as u64))
    }
}

/// Reads and decodes an IDX file (see [`parse_idx`]).
pub fn read_idx(path: &Path, rank: u8, limit: Option<usize>) -> Result<IdxArray, IdxError> {
    let source = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| IdxError::Io {
        file: source.clone(),
        message: e.to_string(),
    })?;
    parse_idx(&bytes, &source, rank, limit)
}

/// The body of [`parse_idx`]: `total_len` is the raw length when known up front.
fn decode(
    mut r: impl Read,
    source: &str,
    rank: u8,
    limit: Option<usize>,
    total_len: Option<u64>,
) -> Result<IdxArray, IdxError> {
    let mut dims = read_header(&mut r, source, rank)?;
    let claimed = claimed_bytes(&dims, source)?;
    let header_len = 4 + 4 * u64::from(rank);
    if let Some(total) = total_len {
        let present = total.saturating_sub(header_len);
        if present < claimed {
            return Err(IdxError::Truncated {
                file: source.into(),
                expected: claimed,
                found: present,
            });
        }
    }
    let item_len: u64 = dims.iter().skip(1).map(|&d| u64::from(d)).product();
    let items = match limit {
        Some(l) => u64::from(dims[0]).min(l as u64),
        None => u64::from(dims[0]),
    };
    let wanted = items * item_len;
    // `wanted <= claimed <= MAX_IDX_BYTES`, so the conversion and the allocation are bounded;
    // for a compressed stream the buffer still grows only as data actually arrives.
    let mut data = Vec::new();
    let got = (&mut r)
        .take(wanted)
        .read_to_end(&mut data)
        .map_err(|e| stream_err(source, e))? as u64;
    if got < wanted {
        return Err(IdxError::Truncated {
            file: source.into(),
            expected: claimed,
            found: got,
        });
    }
    if items == u64::from(dims[0]) {
        let mut extra = [0u8; 1];
        let n = read_up_to(&mut r, &mut extra, source)?;
        if n > 0 {
            return Err(IdxError::TrailingBytes {
                file: source.into(),
                expected: claimed,
                extra: n as u64,
            });
        }
    }
    dims[0] = items as u32;
    Ok(IdxArray { dims, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn header(dtype: u8, dims: &[u32]) -> Vec<u8> {
        let mut v = vec![0, 0, dtype, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn images_2x2x3() -> Vec<u8> {
        let mut v = header(8, &[2, 2, 3]);
        v.extend(1..=12u8);
        v
    }

    #[test]
    fn reads_raw_and_gzip_alike() {
        let raw = images_2x2x3();
        for bytes in [raw.clone(), gzip(&raw)] {
            let a = parse_idx(&bytes, "t", 3, None).unwrap();
            assert_eq!(a.dims, vec![2, 2, 3]);
            assert_eq!(a.data, (1..=12).collect::<Vec<u8>>());
            assert_eq!((a.len(), a.item_len()), (2, 6));
        }
    }

    #[test]
    fn limit_cuts_the_first_dimension() {
        for bytes in [images_2x2x3(), gzip(&images_2x2x3())] {
            let a = parse_idx(&bytes, "t", 3, Some(1)).unwrap();
            assert_eq!(a.dims, vec![1, 2, 3]);
            assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
            let all = parse_idx(&bytes, "t", 3, Some(99)).unwrap();
            assert_eq!(all.dims[0], 2);
        }
    }

    #[test]
    fn bad_magic() {
        let mut b = images_2x2x3();
        b[0] = 7;
        assert!(matches!(
            parse_idx(&b, "t", 3, None),
            Err(IdxError::BadMagic { found, .. }) if found == vec![7, 0, 8, 3]
        ));
        assert!(matches!(
            parse_idx(&[0, 0], "t", 3, None),
            Err(IdxError::BadMagic { found, .. }) if found == vec![0, 0]
        ));
        assert!(matches!(
            parse_idx(b"hello world!", "t", 1, None),
            Err(IdxError::BadMagic { .. })
        ));
    }

    #[test]
    fn unsupported_dtype_and_wrong_rank() {
        let mut b = images_2x2x3();
        b[2] = 0x0d; // float
        assert_eq!(
            parse_idx(&b, "t", 3, None),
            Err(IdxError::UnsupportedDtype {
                file: "t".into(),
                dtype: 0x0d
            })
        );
        assert_eq!(
            parse_idx(&images_2x2x3(), "t", 1, None),
            Err(IdxError::WrongRank {
                file: "t".into(),
                expected: 1,
                found: 3
            })
        );
    }

    #[test]
    fn truncated_header_and_payload() {
        let b = images_2x2x3();
        assert!(matches!(
            parse_idx(&b[..9], "t", 3, None),
            Err(IdxError::Truncated {
                expected: 12,
                found: 5,
                ..
            })
        ));
        for bytes in [b[..b.len() - 1].to_vec(), gzip(&b[..b.len() - 1])] {
            assert!(matches!(
                parse_idx(&bytes, "t", 3, None),
                Err(IdxError::Truncated {
                    expected: 12,
                    found: 11,
                    ..
                })
            ));
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut b = images_2x2x3();
        b.push(0);
        for bytes in [b.clone(), gzip(&b)] {
            assert!(matches!(
                parse_idx(&bytes, "t", 3, None),
                Err(IdxError::TrailingBytes { expected: 12, .. })
            ));
        }
    }

    #[test]
    fn huge_claims_fail_before_allocating() {
        // 4 billion × 4 billion × 4 billion overflows u64; 60000 × 60000 × 28 is 100 GB.
        let huge = header(8, &[u32::MAX, u32::MAX, u32::MAX]);
        assert!(matches!(
            parse_idx(&huge, "t", 3, None),
            Err(IdxError::TooLarge {
                claimed: u64::MAX,
                ..
            })
        ));
        let big = header(8, &[60000, 60000, 28]);
        assert!(matches!(
            parse_idx(&gzip(&big), "t", 3, None),
            Err(IdxError::TooLarge {
                claimed: 100_800_000_000,
                ..
            })
        ));
        // Within the limit but not present: raw files fail on the length check, gzip ones
        // after reading what is there.
        let claims_more = header(8, &[1000, 28, 28]);
        assert!(matches!(
            parse_idx(&claims_more, "t", 3, None),
            Err(IdxError::Truncated {
                expected: 784_000,
                found: 0,
                ..
            })
        ));
        assert!(matches!(
            parse_idx(&gzip(&claims_more), "t", 3, None),
            Err(IdxError::Truncated { found: 0, .. })
        ));
    }

    #[test]
    fn corrupt_gzip_is_a_gzip_error() {
        let mut g = gzip(&images_2x2x3());
        let mid = g.len() / 2;
        g[mid] ^= 0xff;
        g[mid + 1] ^= 0xff;
        let err = parse_idx(&g, "t", 3, None).unwrap_err();
        assert!(
            matches!(err, IdxError::Gzip { .. } | IdxError::Truncated { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn zero_items_with_a_huge_item_size_is_too_large() {
        // Found by the idx_reader fuzz target: 0 items of u32::MAX^3 bytes each claimed 0 bytes
        // in total and then overflowed computing the item size.
        let h = header(8, &[0, u32::MAX, u32::MAX, u32::MAX]);
        assert!(matches!(
            parse_idx(&h, "t", 4, None),
            Err(IdxError::TooLarge {
                claimed: u64::MAX,
                ..
            })
        ));
        let h = header(8, &[0, 1 << 16, 1 << 15]);
        assert!(matches!(
            parse_idx(&h, "t", 3, None),
            Err(IdxError::TooLarge {
                claimed: 2_147_483_648,
                ..
            })
        ));
        assert!(matches!(
            parse_idx(&gzip(&h), "t", 3, None),
            Err(IdxError::TooLarge { .. })
        ));
    }

    #[test]
    fn zero_items_is_an_empty_array() {
        let a = parse_idx(&header(8, &[0]), "t", 1, None).unwrap();
        assert!(a.is_empty());
    }

    #[test]
    fn missing_file_is_io() {
        assert!(matches!(
            read_idx(Path::new("/nonexistent/x.idx"), 1, None),
            Err(IdxError::Io { .. })
        ));
    }
}
