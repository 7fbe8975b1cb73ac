//! Criterion benchmarks for the qstack workspace live in `benches/benches/`; this library
//! holds nothing but shared helpers for them.
