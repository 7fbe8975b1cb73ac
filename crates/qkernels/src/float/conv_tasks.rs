//! The split of one f32 convolution call (direct, Winograd or depthwise) over the current
//! rayon pool: disjoint tasks of (images, output-channel range), each run as a smaller call of
//! the same single-threaded kernel on sub-slices of the input, weight, bias and output.
//!
//! Every output is computed by the same chain whichever task computes it: the kernels' sums
//! run over one output's `k` (direct), `c` (Winograd products, per tile) or taps (depthwise),
//! never across output channels or images, so the bits do not depend on the split, and the
//! split may follow the pool's size. Calls below a work threshold, and every call on a
//! one-thread pool, run as one task on the calling thread.

use std::sync::Mutex;

use crate::par;

/// One task: images `img0..img0 + imgs` and output channels `c0..c0 + chans` of each.
/// Either `imgs == 1` or `chans` is every channel, so its outputs are one contiguous run of
/// the `[n][channels][plane]` output (and, for depthwise, of the input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Part {
    pub img0: usize,
    pub imgs: usize,
    pub c0: usize,
    pub chans: usize,
}

impl Part {
    /// The task's range of a `[n][channels][plane]` array.
    pub fn range(&self, channels: usize, plane: usize) -> std::ops::Range<usize> {
        let start = (self.img0 * channels + self.c0) * plane;
        start..start + self.imgs * self.chans * plane
    }
}

/// Image tasks per thread when there are enough images (more than one per thread evens out a
/// thread that another process delays).
const TASKS_PER_THREAD: usize = 2;

/// Fewest output channels of a channel task.
const MIN_CHANNELS: usize = 8;

/// `m` cut into `parts` ranges `(start, len)` of near-equal length.
pub(super) fn even(m: usize, parts: usize) -> impl Iterator<Item = (usize, usize)> {
    let (base, extra) = (m / parts, m % parts);
    (0..parts).map(move |t| (t * base + t.min(extra), base + usize::from(t < extra)))
}

/// The tasks of an `n`-image call with `channels` output channels and `macs` multiply-adds
/// on a pool of `threads`: one task below `min_macs` or on one thread; else groups of whole
/// images when there are at least `threads` images, or each image's channels cut into
/// `⌈threads / n⌉` ranges (of at least 8 channels).
pub(super) fn plan(
    n: usize,
    channels: usize,
    macs: usize,
    min_macs: usize,
    threads: usize,
) -> Vec<Part> {
    let whole = |img0, imgs| Part {
        img0,
        imgs,
        c0: 0,
        chans: channels,
    };
    if threads <= 1 || macs < min_macs || n == 0 || channels == 0 {
        return vec![whole(0, n)];
    }
    if n >= threads {
        return even(n, n.min(TASKS_PER_THREAD * threads))
            .map(|(img0, imgs)| whole(img0, imgs))
            .collect();
    }
    let cuts = threads
        .div_ceil(n)
        .min(channels.div_ceil(MIN_CHANNELS))
        .max(1);
    (0..n)
        .flat_map(|img0| {
            even(channels, cuts).map(move |(c0, chans)| Part {
                img0,
                imgs: 1,
                c0,
                chans,
            })
        })
        .collect()
}

/// Runs `call(part, outputs of the part)` for every part of `parts` (in order, covering
/// `out = [n][channels][plane]`): on the calling thread for one part, else on the current
/// pool. Returns the first error in part order.
pub(super) fn run<T, E, F>(
    parts: &[Part],
    channels: usize,
    plane: usize,
    out: &mut [T],
    call: F,
) -> Result<(), E>
where
    T: Send,
    E: Send,
    F: Fn(Part, &mut [T]) -> Result<(), E> + Sync + Send,
{
    if let [part] = parts {
        return call(*part, &mut out[part.range(channels, plane)]);
    }
    let mut items = Vec::with_capacity(parts.len());
    let mut rest = out;
    let mut at = 0;
    for p in parts {
        let r = p.range(channels, plane);
        let (_, tail) = rest.split_at_mut(r.start - at);
        let (mine, tail) = tail.split_at_mut(r.len());
        items.push((*p, mine));
        (rest, at) = (tail, r.end);
    }
    for_each_fallible(items, |(p, o)| call(p, o))
}

/// Runs `call(item)` for every item on the current pool; returns the first error in item
/// order.
pub(super) fn for_each_fallible<T, E, F>(items: Vec<T>, call: F) -> Result<(), E>
where
    T: Send,
    E: Send,
    F: Fn(T) -> Result<(), E> + Sync + Send,
{
    let first_error: Mutex<Option<(usize, E)>> = Mutex::new(None);
    let items: Vec<(usize, T)> = items.into_iter().enumerate().collect();
    par::for_each_item(items, |(i, item)| {
        if let Err(e) = call(item) {
            let mut slot = first_error.lock().unwrap_or_else(|e| e.into_inner());
            if slot.as_ref().is_none_or(|(j, _)| i < *j) {
                *slot = Some((i, e));
            }
        }
    });
    match first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers(parts: &[Part], n: usize, channels: usize) {
        let mut next = 0;
        for p in parts {
            let r = p.range(channels, 1);
            assert_eq!(r.start, next, "{parts:?}");
            assert!(p.imgs == 1 || p.chans == channels, "{p:?}");
            next = r.end;
        }
        assert_eq!(next, n * channels, "{parts:?}");
    }

    #[test]
    fn plans_cover_the_output_in_order() {
        for n in 0..7 {
            for channels in [1, 7, 8, 9, 64, 1024] {
                for threads in 1..5 {
                    for macs in [0, 1 << 30] {
                        let parts = plan(n, channels, macs, 1 << 20, threads);
                        covers(&parts, n, channels);
                        let one = threads == 1 || macs == 0;
                        assert_eq!(parts.len() == 1, one || n * channels.div_ceil(8) <= 1);
                    }
                }
            }
        }
    }

    #[test]
    fn plans_split_images_then_channels() {
        let parts = plan(8, 64, 1 << 30, 1, 2);
        assert_eq!(parts.len(), 4);
        assert!(parts.iter().all(|p| p.imgs == 2 && p.chans == 64));
        let parts = plan(1, 64, 1 << 30, 1, 2);
        assert_eq!(
            parts.iter().map(|p| (p.c0, p.chans)).collect::<Vec<_>>(),
            [(0, 32), (32, 32)]
        );
        let parts = plan(1, 9, 1 << 30, 1, 3);
        assert_eq!(
            parts.iter().map(|p| (p.c0, p.chans)).collect::<Vec<_>>(),
            [(0, 5), (5, 4)]
        );
    }
}
