//! Splitting large element-wise jobs over the rayon pool. Every element is computed by the
//! same function whichever chunk it lands in, so results do not depend on the thread count.

use rayon::prelude::*;

/// Below this many elements the work runs on the calling thread.
pub const PAR_THRESHOLD: usize = 1 << 18;
/// Elements per rayon task (a multiple of every kernel's block size).
const PAR_CHUNK: usize = 1 << 16;

/// Runs `f` over matching chunks of `src` and `dst` (equal lengths), in parallel for large
/// inputs when the current pool has more than one thread.
pub(crate) fn zip_chunks<S: Sync, D: Send>(
    src: &[S],
    dst: &mut [D],
    f: impl Fn(&[S], &mut [D]) + Sync + Send,
) {
    if src.len() >= PAR_THRESHOLD && rayon::current_num_threads() > 1 {
        src.par_chunks(PAR_CHUNK)
            .zip(dst.par_chunks_mut(PAR_CHUNK))
            .for_each(|(s, d)| f(s, d));
    } else {
        f(src, dst);
    }
}
