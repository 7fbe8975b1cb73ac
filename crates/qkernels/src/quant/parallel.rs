//! Splitting large element-wise jobs over the rayon pool (through [`crate::par`], like every
//! other parallel kernel loop). Every element is computed by the same function whichever chunk
//! it lands in, so results do not depend on the thread count.

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
        crate::par::for_each_zip_chunk(src, dst, PAR_CHUNK, f);
    } else {
        f(src, dst);
    }
}
