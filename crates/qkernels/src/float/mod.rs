//! Float (f32 and f16) matrix multiplication: the one place that wraps the float GEMM crate.
//!
//! Being written by the float-modules issue; int8-versus-fp32 comparisons are only honest when
//! this path is strong.
