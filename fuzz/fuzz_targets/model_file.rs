//! The whole-model file loader (`qflow::io::graph_from_bytes`) on arbitrary bytes: a typed
//! `QflowError` or a graph that can be written again; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qflow::io::{graph_from_bytes, graph_to_bytes};

fuzz_target!(|data: &[u8]| {
    if let Ok(graph) = graph_from_bytes(data) {
        let _ = graph_to_bytes(&graph);
    }
});
