//! Graph passes: fusion ([`fuse`]) and QConfig propagation. (prepare, convert, prepare_qat and
//! quantize_dynamic live next to them).

pub mod fuse;

pub use fuse::{find_fusable, fuse_auto, fuse_auto_qat, fuse_modules, fuse_modules_qat};
