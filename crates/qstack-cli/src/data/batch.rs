//! Turning raw images into normalized model inputs, as torchvision's
//! `Pad → ToTensor → Normalize(mean, std)` would: pixel / 255, then `(x - mean) / std`.

use qtensor::Tensor;

#[cfg(test)]
use super::mnist::IMAGE_PIXELS;
use super::mnist::{DatasetKind, IMAGE_SIDE, Split};

/// How a model wants its images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputLayout {
    /// `[B, 1, 32, 32]`: padded by 2 black pixels on every side (LeNet5's input size).
    Padded32,
    /// `[B, 28, 28]`: a sequence of 28 rows of 28 pixels (batch first).
    Rows,
    /// `[B, 16, 49]`: 16 non-overlapping 7×7 patches in row-major patch order (batch first).
    Patches7,
}

/// Side of the non-overlapping patches of [`InputLayout::Patches7`].
pub const PATCH: usize = 7;

impl InputLayout {
    /// Shape of one sample (without the batch dimension).
    pub fn sample_shape(self) -> Vec<usize> {
        match self {
            InputLayout::Padded32 => vec![1, 32, 32],
            InputLayout::Rows => vec![IMAGE_SIDE, IMAGE_SIDE],
            InputLayout::Patches7 => vec![(IMAGE_SIDE / PATCH).pow(2), PATCH * PATCH],
        }
    }

    /// Floats per sample.
    pub fn sample_len(self) -> usize {
        self.sample_shape().iter().product()
    }
}

/// Maps a raw pixel to its normalized value (a 256-entry table).
#[derive(Clone, Debug)]
pub struct Normalizer {
    lut: [f32; 256],
}

impl Normalizer {
    /// `(p / 255 - mean) / std`.
    pub fn new(mean: f32, std: f32) -> Self {
        let mut lut = [0.0; 256];
        for (p, v) in lut.iter_mut().enumerate() {
            *v = (p as f32 / 255.0 - mean) / std;
        }
        Self { lut }
    }

    /// The dataset's torchvision constants.
    pub fn for_dataset(kind: DatasetKind) -> Self {
        let (m, s) = kind.mean_std();
        Self::new(m, s)
    }

    /// The normalized value of `pixel`.
    pub fn apply(&self, pixel: u8) -> f32 {
        self.lut[usize::from(pixel)]
    }
}

/// Writes one sample in `layout` into `out` (`layout.sample_len()` floats).
fn write_sample(img: &[u8], layout: InputLayout, norm: &Normalizer, out: &mut [f32]) {
    match layout {
        InputLayout::Padded32 => {
            out.fill(norm.apply(0));
            for (r, row) in img.chunks_exact(IMAGE_SIDE).enumerate() {
                let dst = &mut out[(r + 2) * 32 + 2..(r + 2) * 32 + 2 + IMAGE_SIDE];
                dst.iter_mut()
                    .zip(row)
                    .for_each(|(d, &p)| *d = norm.apply(p));
            }
        }
        InputLayout::Rows => out
            .iter_mut()
            .zip(img)
            .for_each(|(d, &p)| *d = norm.apply(p)),
        InputLayout::Patches7 => {
            let per_side = IMAGE_SIDE / PATCH;
            for (i, d) in out.iter_mut().enumerate() {
                let (patch, within) = (i / (PATCH * PATCH), i % (PATCH * PATCH));
                let (pr, pc) = (patch / per_side, patch % per_side);
                let (r, c) = (pr * PATCH + within / PATCH, pc * PATCH + within % PATCH);
                *d = norm.apply(img[r * IMAGE_SIDE + c]);
            }
        }
    }
}

/// The samples `indices` of `split` as one normalized batch in `layout`, with their labels.
/// Indices must be below `split.len()` (callers draw them from `0..len`).
pub fn make_batch(
    split: &Split,
    indices: &[usize],
    layout: InputLayout,
    norm: &Normalizer,
) -> (Tensor<f32>, Vec<usize>) {
    let len = layout.sample_len();
    let mut data = vec![0.0f32; indices.len() * len];
    for (chunk, &i) in data.chunks_exact_mut(len).zip(indices) {
        write_sample(split.image(i), layout, norm, chunk);
    }
    let mut shape = vec![indices.len()];
    shape.extend(layout.sample_shape());
    let labels = indices
        .iter()
        .map(|&i| usize::from(split.labels[i]))
        .collect();
    (Tensor::from_fn(&shape, |k| data[k]), labels)
}

/// Batches of consecutive indices `0..n` of size `batch` (the last one may be shorter).
pub fn sequential_batches(n: usize, batch: usize) -> impl Iterator<Item = Vec<usize>> {
    let batch = batch.max(1);
    (0..n.div_ceil(batch)).map(move |b| (b * batch..((b + 1) * batch).min(n)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_of(img: Vec<u8>) -> Split {
        Split::new(img, vec![3]).unwrap()
    }

    #[test]
    fn normalizes_like_torchvision() {
        let n = Normalizer::new(0.1307, 0.3081);
        assert!((n.apply(0) - (-0.1307 / 0.3081)).abs() < 1e-6);
        assert!((n.apply(255) - ((1.0 - 0.1307) / 0.3081)).abs() < 1e-6);
    }

    #[test]
    fn pads_to_32_with_normalized_black() {
        let img: Vec<u8> = (0..IMAGE_PIXELS).map(|i| (i % 251) as u8 + 1).collect();
        let n = Normalizer::new(0.0, 1.0);
        let (x, y) = make_batch(&split_of(img.clone()), &[0], InputLayout::Padded32, &n);
        assert_eq!(x.shape(), &[1, 1, 32, 32]);
        assert_eq!(y, vec![3]);
        assert_eq!(x.get(&[0, 0, 0, 0]), Some(0.0));
        assert_eq!(x.get(&[0, 0, 1, 5]), Some(0.0));
        assert_eq!(x.get(&[0, 0, 2, 2]), Some(n.apply(img[0])));
        assert_eq!(x.get(&[0, 0, 29, 29]), Some(n.apply(img[IMAGE_PIXELS - 1])));
        assert_eq!(x.get(&[0, 0, 31, 31]), Some(0.0));
    }

    #[test]
    fn patches_are_7x7_blocks_in_row_major_order() {
        let img: Vec<u8> = (0..IMAGE_PIXELS).map(|i| (i % 256) as u8).collect();
        let n = Normalizer::new(0.0, 1.0);
        let (x, _) = make_batch(&split_of(img.clone()), &[0], InputLayout::Patches7, &n);
        assert_eq!(x.shape(), &[1, 16, 49]);
        // Patch 5 is block row 1, block column 1: its element (2, 3) is pixel (9, 10).
        assert_eq!(x.get(&[0, 5, 2 * 7 + 3]), Some(n.apply(img[9 * 28 + 10])));
        let (rows, _) = make_batch(&split_of(img.clone()), &[0], InputLayout::Rows, &n);
        assert_eq!(rows.get(&[0, 9, 10]), Some(n.apply(img[9 * 28 + 10])));
    }

    #[test]
    fn sequential_batches_cover_everything_once() {
        let b: Vec<Vec<usize>> = sequential_batches(5, 2).collect();
        assert_eq!(b, vec![vec![0, 1], vec![2, 3], vec![4]]);
        assert_eq!(sequential_batches(0, 4).count(), 0);
    }
}
