//! Graph passes: fusion ([`fuse`]) and QConfig propagation ([`propagate`]). The prepare,
//! convert, prepare_qat and quantize_dynamic passes live next to them.

pub mod convert;
pub mod dynamic;
pub mod fuse;
pub mod observer_node;
pub mod prepare;
pub mod propagate;
pub mod qat;
pub mod toggles;

pub use convert::{convert, quantize, quantize_qat};
pub use dynamic::{
    DEFAULT_DYNAMIC_KINDS, DynamicDType, quantize_dynamic, quantize_dynamic_configured,
    quantize_dynamic_with,
};
pub use fuse::{find_fusable, fuse_auto, fuse_auto_qat, fuse_modules, fuse_modules_qat};
pub use observer_node::ObserverNode;
pub use prepare::{observer_name, prepare, prepare_configured, set_global_qconfig};
pub use propagate::propagate_qconfig;
pub use qat::{prepare_qat, prepare_qat_configured};
pub use toggles::{
    disable_fake_quant, disable_observer, enable_fake_quant, enable_observer, freeze_bn_stats,
    set_node_fake_quant, set_node_observer, update_bn_stats,
};
