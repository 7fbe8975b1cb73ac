//! # qtensor — quantized tensor types and PyTorch-exact numerics
//!
//! (Being written; see ARCHITECTURE.md.)
