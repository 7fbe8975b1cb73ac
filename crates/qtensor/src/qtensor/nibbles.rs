//! quint4x2 storage: two 4-bit values per byte, low nibble first.

/// Packs values in `0..=15` two per byte (element `2k` in the low nibble of byte `k`).
pub(crate) fn pack(values: &[i32]) -> Vec<u8> {
    values
        .chunks(2)
        .map(|pair| {
            let low = pair[0] as u8 & 0x0f;
            let high = pair.get(1).map_or(0, |&v| v as u8 & 0x0f);
            low | (high << 4)
        })
        .collect()
}

/// Unpacks the first `numel` 4-bit values.
pub(crate) fn unpack(bytes: &[u8], numel: usize) -> Vec<i32> {
    bytes
        .iter()
        .flat_map(|&b| [i32::from(b & 0x0f), i32::from(b >> 4)])
        .take(numel)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_nibble_first() {
        assert_eq!(pack(&[1, 2, 15]), vec![0x21, 0x0f]);
        assert_eq!(unpack(&[0x21, 0x0f], 3), vec![1, 2, 15]);
    }
}
