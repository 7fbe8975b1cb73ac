//! # qflow — graphs and quantization passes
//!
//! A model is a graph of named nodes (PyTorch module paths such as `features.0` or `fc1`);
//! each node holds a [`qnn`] layer or a functional op. The passes — propagate qconfig, fuse,
//! prepare, convert, prepare_qat, quantize_dynamic — rewrite nodes by kind and by name, which
//! is how PyTorch's eager-mode module swapping is expressed in a statically typed language.
//!
//! **Status:** only the crate skeleton exists so far; the qflow issue fills it. See
//! `ARCHITECTURE.md` at the repository root for the planned layout.

pub use qnn;
