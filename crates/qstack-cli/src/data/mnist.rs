//! MNIST and Fashion-MNIST: where the files are, checksum checks, and loading a split.
//!
//! MNIST ships in the repository (`data/mnist/`, gzipped IDX with a `SHA256SUMS` list).
//! Fashion-MNIST comes from Debian's `dataset-fashion-mnist` package, which installs the same
//! four file names under [`FASHION_MNIST_DEBIAN_DIR`].

use std::path::{Path, PathBuf};

use super::checksum::{parse_sha256sums, verify};
use super::error::DataError;
use super::idx::parse_idx;

/// Where Debian's `dataset-fashion-mnist` package installs its files.
pub const FASHION_MNIST_DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Image side (both datasets are 28×28 grey levels).
pub const IMAGE_SIDE: usize = 28;

/// Pixels per image.
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;

/// Number of classes (both datasets).
pub const NUM_CLASSES: usize = 10;

/// Which dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DatasetKind {
    /// MNIST handwritten digits (bundled in `data/mnist`).
    Mnist,
    /// Zalando's Fashion-MNIST (Debian's `dataset-fashion-mnist` package).
    FashionMnist,
}

/// The training or the test split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitKind {
    /// 60 000 samples.
    Train,
    /// 10 000 samples.
    Test,
}

impl SplitKind {
    fn file_stems(self) -> (&'static str, &'static str) {
        match self {
            SplitKind::Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            SplitKind::Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            SplitKind::Train => "train",
            SplitKind::Test => "test",
        }
    }
}

/// SHA-256 of Debian's Fashion-MNIST files (that directory has no `SHA256SUMS`).
const FASHION_SHA256: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte.gz",
        "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    ),
    (
        "train-labels-idx1-ubyte.gz",
        "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    ),
];

impl DatasetKind {
    /// Mean and standard deviation of the training pixels scaled to `[0, 1]` (torchvision's
    /// `Normalize` constants).
    pub fn mean_std(self) -> (f32, f32) {
        match self {
            DatasetKind::Mnist => (0.1307, 0.3081),
            DatasetKind::FashionMnist => (0.2860, 0.3530),
        }
    }

    /// Human-readable name.
    pub fn display_name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "MNIST",
            DatasetKind::FashionMnist => "Fashion-MNIST",
        }
    }

    /// Class names for reports.
    pub fn class_names(self) -> [&'static str; NUM_CLASSES] {
        match self {
            DatasetKind::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            DatasetKind::FashionMnist => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        }
    }

    /// The directory to read: `data_dir` if given; otherwise for MNIST `./data/mnist` when it
    /// exists, else the repository's `data/mnist` (known at build time); for Fashion-MNIST
    /// Debian's directory, or [`DataError::FashionMnistNotInstalled`].
    pub fn resolve_dir(self, data_dir: Option<&Path>) -> Result<PathBuf, DataError> {
        if let Some(d) = data_dir {
            return Ok(d.to_path_buf());
        }
        match self {
            DatasetKind::Mnist => {
                let local = PathBuf::from("data/mnist");
                if local.is_dir() {
                    Ok(local)
                } else {
                    Ok(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist"))
                }
            }
            DatasetKind::FashionMnist => {
                let dir = PathBuf::from(FASHION_MNIST_DEBIAN_DIR);
                let (images, _) = SplitKind::Test.file_stems();
                if dir.join(format!("{images}.gz")).is_file() {
                    Ok(dir)
                } else {
                    Err(DataError::FashionMnistNotInstalled { dir })
                }
            }
        }
    }

    fn missing_hint(self) -> String {
        match self {
            DatasetKind::Mnist => {
                "MNIST ships in the repository's data/mnist; run from the repository root or pass --data-dir".into()
            }
            DatasetKind::FashionMnist => {
                "install Debian's dataset-fashion-mnist package: `apt-get install dataset-fashion-mnist`".into()
            }
        }
    }
}

/// One split in memory: raw 28×28 grey images (row-major, one byte per pixel) and labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// `len() * IMAGE_PIXELS` bytes.
    pub images: Vec<u8>,
    /// Class of each image, `0..10`.
    pub labels: Vec<u8>,
}

impl Split {
    /// Builds a split, checking that the sizes agree and labels are classes.
    pub fn new(images: Vec<u8>, labels: Vec<u8>) -> Result<Self, DataError> {
        let n = images.len() / IMAGE_PIXELS;
        if !images.len().is_multiple_of(IMAGE_PIXELS) || n != labels.len() {
            return Err(DataError::CountMismatch {
                images_path: PathBuf::from("<memory>"),
                images: n,
                labels: labels.len(),
            });
        }
        if let Some((index, &label)) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| usize::from(**l) >= NUM_CLASSES)
        {
            return Err(DataError::LabelOutOfRange {
                path: PathBuf::from("<memory>"),
                index,
                label,
            });
        }
        Ok(Self { images, labels })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True without samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `i` (panics if out of range; callers index within `len()`).
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * IMAGE_PIXELS..(i + 1) * IMAGE_PIXELS]
    }

    /// The first `n` samples (all if fewer).
    pub fn take(&self, n: usize) -> Split {
        let n = n.min(self.len());
        Split {
            images: self.images[..n * IMAGE_PIXELS].to_vec(),
            labels: self.labels[..n].to_vec(),
        }
    }
}

/// Finds `<stem>.gz`, or `<stem>` uncompressed.
fn find_file(dir: &Path, stem: &str, kind: DatasetKind) -> Result<(PathBuf, String), DataError> {
    let gz = format!("{stem}.gz");
    for name in [gz.clone(), stem.to_string()] {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok((p, name));
        }
    }
    Err(DataError::MissingFile {
        path: dir.join(gz),
        hint: Some(kind.missing_hint()),
    })
}

/// The expected digest of `name` in `dir`: from `dir/SHA256SUMS` when present, else the built-in
/// Fashion-MNIST digests when `dir` is Debian's directory; `None` means "not checked".
fn expected_digest(dir: &Path, name: &str, kind: DatasetKind) -> Result<Option<String>, DataError> {
    let list = dir.join("SHA256SUMS");
    if list.is_file() {
        let text = std::fs::read_to_string(&list).map_err(|e| super::idx::IdxError::Io {
            file: list.display().to_string(),
            message: e.to_string(),
        })?;
        return Ok(parse_sha256sums(&text, &list)?.remove(name));
    }
    if kind == DatasetKind::FashionMnist && dir == Path::new(FASHION_MNIST_DEBIAN_DIR) {
        return Ok(FASHION_SHA256
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| d.to_string()));
    }
    Ok(None)
}

fn read_checked(
    dir: &Path,
    stem: &str,
    kind: DatasetKind,
) -> Result<(PathBuf, Vec<u8>), DataError> {
    let (path, name) = find_file(dir, stem, kind)?;
    let bytes = std::fs::read(&path).map_err(|e| super::idx::IdxError::Io {
        file: path.display().to_string(),
        message: e.to_string(),
    })?;
    if let Some(digest) = expected_digest(dir, &name, kind)? {
        verify(&path, &bytes, &digest)?;
    }
    Ok((path, bytes))
}

/// Loads one split from `dir`: checks the files' SHA-256 (when a digest is known), decodes at
/// most `limit` samples, and checks image dims (N×28×28), counts and labels.
pub fn load_split(
    dir: &Path,
    kind: DatasetKind,
    split: SplitKind,
    limit: Option<usize>,
) -> Result<Split, DataError> {
    let (img_stem, lbl_stem) = split.file_stems();
    let (img_path, img_bytes) = read_checked(dir, img_stem, kind)?;
    let (lbl_path, lbl_bytes) = read_checked(dir, lbl_stem, kind)?;
    let images = parse_idx(&img_bytes, &img_path.display().to_string(), 3, limit)?;
    if images.dims[1..] != [IMAGE_SIDE as u32, IMAGE_SIDE as u32] {
        return Err(super::idx::IdxError::WrongDims {
            file: img_path.display().to_string(),
            expected: "N x 28 x 28".into(),
            found: images.dims,
        }
        .into());
    }
    let labels = parse_idx(&lbl_bytes, &lbl_path.display().to_string(), 1, limit)?;
    if images.len() != labels.len() {
        return Err(DataError::CountMismatch {
            images_path: img_path,
            images: images.len(),
            labels: labels.len(),
        });
    }
    if images.is_empty() {
        return Err(DataError::Empty {
            what: format!("{} {} split", kind.display_name(), split.name()),
        });
    }
    Split::new(images.data, labels.data).map_err(|e| match e {
        DataError::LabelOutOfRange { index, label, .. } => DataError::LabelOutOfRange {
            path: lbl_path,
            index,
            label,
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_checks_counts_and_labels() {
        assert!(Split::new(vec![0; IMAGE_PIXELS * 2], vec![1, 2]).is_ok());
        assert!(matches!(
            Split::new(vec![0; IMAGE_PIXELS * 2], vec![1]),
            Err(DataError::CountMismatch {
                images: 2,
                labels: 1,
                ..
            })
        ));
        assert!(matches!(
            Split::new(vec![0; IMAGE_PIXELS], vec![10]),
            Err(DataError::LabelOutOfRange {
                index: 0,
                label: 10,
                ..
            })
        ));
    }

    #[test]
    fn fashion_dir_is_debians_or_a_clear_error() {
        match DatasetKind::FashionMnist.resolve_dir(None) {
            Ok(dir) => assert_eq!(dir, Path::new(FASHION_MNIST_DEBIAN_DIR)),
            Err(e) => assert!(
                e.to_string()
                    .contains("apt-get install dataset-fashion-mnist"),
                "{e}"
            ),
        }
    }
}
