//! Winograd calls with fewer images than threads, split into bands of output rows instead of
//! output-channel ranges when the image has more tiles than output channels: a channel task
//! transforms every input tile of its image again (on 1 × 64 × 56 × 56 → 64 about 200 µs of the
//! 1.5 ms call), a band transforms the whole weight again (on 1 × 256 × 14 × 14 → 256, 49 tiles
//! per image, most of the call). Zen 4, 2 threads: 1 × 64 × 56 → 64 994 → 923 µs with bands,
//! 1 × 256 × 14 → 256 1151 → 1471 µs (so it keeps channel tasks).
//!
//! A band is output rows `r0..r1` of one image with `r0` even, so its 2 × 2 tiles are tiles of
//! the whole plane. It runs as a one-image [`winograd_conv2d_with`] call on a copy of the input
//! rows it reads (`r0 − ph .. r1 − ph + 2`, rows outside the image written as zeros, the
//! vertical padding then 0): every tile sees the same 4 × 4 input patch as in the whole call
//! and every output the same chain, so the bits are those of one call on the whole image.
//! Its outputs (one run of rows per output channel) are copied into the output planes.

use super::{Conv2dGeom, winograd_conv2d_with};
use crate::float::conv_tasks::{even, for_each_fallible};
use crate::float::direct_kernel::DirectConvKernel;
use crate::float::error::Result;
use crate::float::window::ConvWindow;

/// Fewest tile rows of a band.
const MIN_TILE_ROWS: usize = 2;

/// The bands `(r0, r1)` of an `oh x ow` plane with `cout` output channels for `threads`
/// threads and `n` images: one band when there are at least as many images as threads, no
/// more tiles per image than output channels, or too few rows.
pub(super) fn bands(
    [oh, ow]: [usize; 2],
    cout: usize,
    n: usize,
    threads: usize,
) -> Vec<(usize, usize)> {
    let tile_rows = oh.div_ceil(2);
    let parts = if tile_rows * ow.div_ceil(2) > cout {
        threads.div_ceil(n.max(1)).min(tile_rows / MIN_TILE_ROWS)
    } else {
        1
    }
    .max(1);
    even(tile_rows, parts)
        .map(|(t0, tn)| (2 * t0, (2 * (t0 + tn)).min(oh)))
        .collect()
}

/// [`winograd_conv2d_with`] as tasks of one band of one image each on the current pool
/// (buffers already checked by the caller: `[oh, ow]` is the output size).
#[allow(clippy::too_many_arguments)]
pub(super) fn winograd_bands(
    kind: DirectConvKernel,
    x: &[f32],
    g: &Conv2dGeom,
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    [oh, ow]: [usize; 2],
    bands: &[(usize, usize)],
) -> Result<()> {
    let (cin, cout) = (g.in_channels, g.out_channels);
    let ([h, w], [ph, pw]) = (g.window.input, g.window.padding);
    let (in_img, plane) = (cin * h * w, oh * ow);
    // per task: image, band, and the band's rows of every output plane
    let mut items = Vec::new();
    for (img, yimg) in out.chunks_exact_mut(cout * plane).enumerate() {
        let mut dsts: Vec<Vec<&mut [f32]>> = bands.iter().map(|_| Vec::new()).collect();
        for mut rest in yimg.chunks_exact_mut(plane) {
            for (d, &(r0, r1)) in dsts.iter_mut().zip(bands) {
                let (mine, tail) = rest.split_at_mut((r1 - r0) * ow);
                d.push(mine);
                rest = tail;
            }
        }
        items.extend(bands.iter().zip(dsts).map(|(&b, d)| (img, b, d)));
    }
    for_each_fallible(items, |(img, (r0, r1), dst)| {
        let rows = r1 - r0;
        let rows_in = rows + 2;
        let ximg = &x[img * in_img..(img + 1) * in_img];
        let mut sub = vec![0.0f32; cin * rows_in * w];
        for (c, dplane) in sub.chunks_exact_mut(rows_in * w).enumerate() {
            for (j, drow) in dplane.chunks_exact_mut(w).enumerate() {
                // input row `r0 + j − ph`, zero outside the image
                if let Some(y) = (r0 + j).checked_sub(ph).filter(|&y| y < h) {
                    drow.copy_from_slice(&ximg[(c * h + y) * w..][..w]);
                }
            }
        }
        let sg = Conv2dGeom::new(
            cin,
            cout,
            ConvWindow::new([rows_in, w], [3, 3]).padding([0, pw]),
        );
        let mut y = vec![0.0f32; cout * rows * ow];
        winograd_conv2d_with(kind, &sub, 1, &sg, weight, bias, &mut y)?;
        for (d, s) in dst.into_iter().zip(y.chunks_exact(rows * ow)) {
            d.copy_from_slice(s);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_start_on_tile_rows_and_cover_the_plane() {
        for oh in 1..40 {
            for (n, threads) in [(1, 1), (1, 2), (1, 3), (2, 3), (1, 8), (3, 2)] {
                let b = bands([oh, 20], 9, n, threads);
                assert_eq!(b[0].0, 0);
                assert_eq!(b[b.len() - 1].1, oh);
                assert!(b.windows(2).all(|p| p[0].1 == p[1].0), "{b:?}");
                assert!(b.iter().all(|&(r0, r1)| r0 % 2 == 0 && r1 > r0), "{b:?}");
                let want = threads.div_ceil(n).min(oh.div_ceil(2) / 2).max(1);
                assert_eq!(b.len(), want, "oh {oh} n {n} threads {threads}");
            }
        }
        assert_eq!(bands([56, 56], 64, 1, 2), [(0, 28), (28, 56)]);
        assert_eq!(bands([15, 8], 9, 1, 2), [(0, 8), (8, 15)]);
        // no more tiles than output channels: the caller's channel tasks
        assert_eq!(bands([14, 14], 256, 1, 2), [(0, 14)]);
        assert_eq!(bands([15, 8], 32, 1, 2), [(0, 15)]);
    }
}
