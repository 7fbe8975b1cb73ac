//! The graph builder from a text description (`qflow::io::graph_from_description`) on arbitrary
//! text: a typed `QflowError` or a valid graph whose description parses again; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qflow::io::{describe_graph, graph_from_description};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(graph) = graph_from_description(text) {
        if let Ok(again) = describe_graph(&graph) {
            assert!(graph_from_description(&again).is_ok(), "{again}");
        }
    }
});
