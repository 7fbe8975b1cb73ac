//! Iteration over the per-channel blocks of contiguous data.

use crate::tensor::{Layout, channel_blocks};

/// Calls `f(channel, src_block, dst_block)` for every contiguous run of elements that share a
/// channel along `axis`, in memory order.
pub(crate) fn for_each_channel_block<S, D>(
    shape: &[usize],
    layout: Layout,
    axis: usize,
    src: &[S],
    dst: &mut [D],
    mut f: impl FnMut(usize, &[S], &mut [D]),
) {
    if src.is_empty() {
        return;
    }
    let (_, channels, inner) = channel_blocks(shape, layout, axis);
    for (i, (s, d)) in src.chunks(inner).zip(dst.chunks_mut(inner)).enumerate() {
        f(i % channels, s, d);
    }
}
