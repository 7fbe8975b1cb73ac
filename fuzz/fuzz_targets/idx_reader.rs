//! The IDX reader (raw and gzipped) on arbitrary bytes: a typed `IdxError` or a well-formed
//! array whose data length matches its dimensions; never a panic or an unchecked allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qstack_cli::data::idx::parse_idx;

fuzz_target!(|data: &[u8]| {
    let (rank, limit) = match data.first() {
        Some(b) => (b % 4 + 1, (b & 0x80 != 0).then_some(usize::from(b >> 4))),
        None => (1, None),
    };
    let body = data.get(1..).unwrap_or(&[]);
    if let Ok(arr) = parse_idx(body, "fuzz", rank, limit) {
        assert_eq!(arr.len() * arr.item_len(), arr.data.len());
    }
});
