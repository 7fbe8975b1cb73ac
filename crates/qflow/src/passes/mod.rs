//! Graph passes: fusion and QConfig propagation (prepare, convert, prepare_qat and
//! quantize_dynamic live next to them).
