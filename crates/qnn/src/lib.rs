//! # qnn — layers
//!
//! Float modules that train (forward and backward, PyTorch state-dict names), their fp16
//! form, and the quantized and dynamic-quantized modules that run on [`qkernels`].
//! Each layer is a plain struct that a downstream crate can use on its own.
//!
//! **Status:** only the crate skeleton exists so far; the float-module and quantized-module
//! issues fill it. See `ARCHITECTURE.md` at the repository root for the planned layout.

pub use qkernels;
pub use qtensor;
