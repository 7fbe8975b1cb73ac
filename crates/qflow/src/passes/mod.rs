//! Graph passes: fusion ([`fuse`]) and QConfig propagation ([`propagate`]). The prepare,
//! convert, prepare_qat and quantize_dynamic passes live next to them.

pub mod fuse;
pub mod propagate;

pub use fuse::{find_fusable, fuse_auto, fuse_auto_qat, fuse_modules, fuse_modules_qat};
pub use propagate::propagate_qconfig;
