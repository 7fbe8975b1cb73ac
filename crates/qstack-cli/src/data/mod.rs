//! Datasets: the IDX reader, MNIST / Fashion-MNIST loading with checksum checks, and batches
//! normalized as torchvision does.

pub mod batch;
pub mod checksum;
pub mod error;
pub mod idx;
pub mod mnist;

pub use batch::{InputLayout, Normalizer, make_batch, sequential_batches};
pub use error::DataError;
pub use idx::{IdxArray, IdxError, parse_idx, read_idx};
pub use mnist::{DatasetKind, NUM_CLASSES, Split, SplitKind, load_split};
