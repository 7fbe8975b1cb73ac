//! Dense, contiguous tensors with a memory-layout tag.

use crate::element::Element;
use crate::error::{QTensorError, Result};

/// Memory order of a tensor's contiguous data. The shape is always the logical shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Layout {
    /// Row-major (C order) in the logical axis order, e.g. NCHW.
    #[default]
    RowMajor,
    /// A 4-D tensor of logical shape `[N, C, H, W]` stored in NHWC order.
    ChannelsLast,
}

impl Layout {
    /// The logical axes in the order they are laid out in memory, outermost first.
    pub fn memory_axes(self, ndim: usize) -> Vec<usize> {
        match self {
            Layout::ChannelsLast if ndim == 4 => vec![0, 2, 3, 1],
            _ => (0..ndim).collect(),
        }
    }
}

/// A dense tensor: contiguous data, a logical shape and a [`Layout`] tag.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor<T: Element> {
    data: Vec<T>,
    shape: Vec<usize>,
    layout: Layout,
}

/// Product of the dimensions, `None` on overflow.
pub(crate) fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Row-major strides of `shape`.
fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

/// Gathers row-major `data` of `shape` into the row-major order of the permuted shape
/// `[shape[axes[0]], shape[axes[1]], ...]`. `axes` must be a permutation of `0..shape.len()`.
fn permute_data<T: Element>(data: &[T], shape: &[usize], axes: &[usize]) -> Vec<T> {
    let in_strides = row_major_strides(shape);
    let out_shape: Vec<usize> = axes.iter().map(|&a| shape[a]).collect();
    let strides: Vec<usize> = axes.iter().map(|&a| in_strides[a]).collect();
    let mut out = Vec::with_capacity(data.len());
    if data.is_empty() {
        return out;
    }
    let mut index = vec![0usize; out_shape.len()];
    let mut offset = 0usize;
    for _ in 0..data.len() {
        out.push(data[offset]);
        for d in (0..out_shape.len()).rev() {
            index[d] += 1;
            offset += strides[d];
            if index[d] < out_shape[d] {
                break;
            }
            offset -= strides[d] * out_shape[d];
            index[d] = 0;
        }
    }
    out
}

impl<T: Element> Tensor<T> {
    /// Wraps row-major `data` of the given shape; `ShapeMismatch` if the element count differs.
    pub fn new(shape: &[usize], data: Vec<T>) -> Result<Self> {
        match checked_numel(shape) {
            Some(n) if n == data.len() => Ok(Self::from_parts(shape, data, Layout::RowMajor)),
            _ => Err(QTensorError::ShapeMismatch {
                expected: shape.to_vec(),
                got: vec![data.len()],
            }),
        }
    }

    /// Builds a tensor without checking; callers guarantee `data.len() == numel(shape)`.
    pub(crate) fn from_parts(shape: &[usize], data: Vec<T>, layout: Layout) -> Self {
        debug_assert_eq!(checked_numel(shape), Some(data.len()));
        Self {
            data,
            shape: shape.to_vec(),
            layout,
        }
    }

    /// A row-major tensor filled with `T::default()` (zero).
    pub fn zeros(shape: &[usize]) -> Self {
        let n = checked_numel(shape).unwrap_or(usize::MAX);
        Self::from_parts(shape, vec![T::default(); n], Layout::RowMajor)
    }

    /// A row-major tensor whose element at flat index `i` is `f(i)`.
    pub fn from_fn(shape: &[usize], f: impl FnMut(usize) -> T) -> Self {
        let n = checked_numel(shape).unwrap_or(usize::MAX);
        Self::from_parts(shape, (0..n).map(f).collect(), Layout::RowMajor)
    }

    /// A 0-d tensor holding one value.
    pub fn scalar(v: T) -> Self {
        Self::from_parts(&[], vec![v], Layout::RowMajor)
    }

    /// The logical shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The memory-order tag.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The contiguous data, in memory order.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// The contiguous data, mutable, in memory order.
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// Consumes the tensor and returns its data, in memory order.
    pub fn into_data(self) -> Vec<T> {
        self.data
    }

    /// The data as raw bytes (native endianness).
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.data)
    }

    /// Copies row-major native-endian bytes into a new tensor.
    ///
    /// `ShapeMismatch` (with byte counts) if `bytes.len()` is not `numel * size_of::<T>()`.
    pub fn from_bytes(shape: &[usize], bytes: &[u8]) -> Result<Self> {
        let size = std::mem::size_of::<T>();
        match checked_numel(shape).and_then(|n| n.checked_mul(size)) {
            Some(len) if len == bytes.len() => Ok(Self::from_parts(
                shape,
                bytemuck::pod_collect_to_vec(bytes),
                Layout::RowMajor,
            )),
            expected => Err(QTensorError::ShapeMismatch {
                expected: vec![expected.unwrap_or(usize::MAX)],
                got: vec![bytes.len()],
            }),
        }
    }

    /// The same elements, in logical row-major order, under a new shape.
    pub fn reshape(&self, shape: &[usize]) -> Result<Self> {
        if checked_numel(shape) != Some(self.numel()) {
            return Err(QTensorError::ShapeMismatch {
                expected: self.shape.clone(),
                got: shape.to_vec(),
            });
        }
        let data = self.to_row_major()?.data;
        Ok(Self::from_parts(shape, data, Layout::RowMajor))
    }

    /// Applies `f` to every element; shape and layout are kept.
    pub fn map<U: Element>(&self, f: impl Fn(T) -> U) -> Tensor<U> {
        Tensor::from_parts(
            &self.shape,
            self.data.iter().map(|&v| f(v)).collect(),
            self.layout,
        )
    }

    /// Reorders a 4-D row-major (NCHW) tensor into NHWC memory, tagged [`Layout::ChannelsLast`].
    /// The shape stays `[N, C, H, W]`. A tensor already channels-last is returned unchanged.
    pub fn to_channels_last(&self) -> Result<Self> {
        if self.ndim() != 4 {
            return Err(QTensorError::Unsupported(format!(
                "channels-last needs a 4-D tensor, got shape {:?}",
                self.shape
            )));
        }
        if self.layout == Layout::ChannelsLast {
            return Ok(self.clone());
        }
        let data = permute_data(&self.data, &self.shape, &[0, 2, 3, 1]);
        Ok(Self::from_parts(&self.shape, data, Layout::ChannelsLast))
    }

    /// Reorders a channels-last tensor back into row-major memory; row-major tensors are cloned.
    pub fn to_row_major(&self) -> Result<Self> {
        if self.layout == Layout::RowMajor {
            return Ok(self.clone());
        }
        let s = &self.shape;
        let nhwc = [s[0], s[2], s[3], s[1]];
        let data = permute_data(&self.data, &nhwc, &[0, 3, 1, 2]);
        Ok(Self::from_parts(&self.shape, data, Layout::RowMajor))
    }

    /// A row-major tensor whose axis `i` is axis `axes[i]` of `self`.
    pub fn permute(&self, axes: &[usize]) -> Result<Self> {
        let ndim = self.ndim();
        let mut seen = vec![false; ndim];
        for &a in axes {
            if a >= ndim {
                return Err(QTensorError::AxisOutOfRange { axis: a, ndim });
            }
            seen[a] = true;
        }
        if axes.len() != ndim || seen.iter().any(|&s| !s) {
            return Err(QTensorError::Unsupported(format!(
                "permute axes {axes:?} are not a permutation of 0..{ndim}"
            )));
        }
        let src = self.to_row_major()?;
        let shape: Vec<usize> = axes.iter().map(|&a| self.shape[a]).collect();
        let data = permute_data(&src.data, &self.shape, axes);
        Ok(Self::from_parts(&shape, data, Layout::RowMajor))
    }

    /// The transpose of a 2-D tensor.
    pub fn transpose2d(&self) -> Result<Self> {
        if self.ndim() != 2 {
            return Err(QTensorError::Unsupported(format!(
                "transpose2d needs a 2-D tensor, got shape {:?}",
                self.shape
            )));
        }
        self.permute(&[1, 0])
    }

    /// The element at a logical multi-index, or `None` if the index is out of bounds.
    pub fn get(&self, index: &[usize]) -> Option<T> {
        if index.len() != self.ndim() || index.iter().zip(&self.shape).any(|(&i, &d)| i >= d) {
            return None;
        }
        let axes = self.layout.memory_axes(self.ndim());
        let offset = axes
            .iter()
            .fold(0usize, |acc, &a| acc * self.shape[a] + index[a]);
        self.data.get(offset).copied()
    }
}

/// Splits memory order around `axis` into `(outer, channels, inner)` block sizes, so that the
/// element at memory offset `(o * channels + c) * inner + i` belongs to channel `c`.
pub fn channel_blocks(shape: &[usize], layout: Layout, axis: usize) -> (usize, usize, usize) {
    let axes = layout.memory_axes(shape.len());
    let pos = axes.iter().position(|&a| a == axis).unwrap_or(0);
    let outer = axes[..pos].iter().map(|&a| shape[a]).product();
    let inner = axes[pos + 1..].iter().map(|&a| shape[a]).product();
    (outer, shape[axis], inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_last_round_trip_and_get() {
        let t = Tensor::<i32>::from_fn(&[2, 3, 2, 2], |i| i as i32);
        let cl = t.to_channels_last().unwrap();
        assert_eq!(cl.layout(), Layout::ChannelsLast);
        assert_eq!(&cl.data()[..4], &[0, 4, 8, 1]);
        assert_eq!(cl.get(&[1, 2, 1, 0]), t.get(&[1, 2, 1, 0]));
        assert_eq!(cl.get(&[1, 2, 1, 0]), Some(22));
        assert_eq!(cl.to_row_major().unwrap(), t);
        assert_eq!(cl.reshape(&[24]).unwrap().data(), t.data());
    }

    #[test]
    fn permute_and_transpose() {
        let t = Tensor::<u8>::new(&[2, 3], vec![1, 2, 3, 4, 5, 6]).unwrap();
        assert_eq!(t.transpose2d().unwrap().data(), &[1, 4, 2, 5, 3, 6]);
        assert_eq!(t.transpose2d().unwrap().shape(), &[3, 2]);
        let t3 = Tensor::<i32>::from_fn(&[2, 3, 4], |i| i as i32);
        let p = t3.permute(&[2, 0, 1]).unwrap();
        assert_eq!(p.shape(), &[4, 2, 3]);
        assert_eq!(p.get(&[3, 1, 2]), t3.get(&[1, 2, 3]));
        assert!(t3.permute(&[0, 0, 1]).is_err());
    }

    #[test]
    fn bytes_round_trip() {
        let t = Tensor::<f32>::new(&[2], vec![1.5, -2.0]).unwrap();
        let back = Tensor::<f32>::from_bytes(&[2], t.as_bytes()).unwrap();
        assert_eq!(back, t);
        assert!(Tensor::<f32>::from_bytes(&[2], &t.as_bytes()[1..]).is_err());
    }

    #[test]
    fn channel_blocks_both_layouts() {
        assert_eq!(
            channel_blocks(&[2, 3, 4, 5], Layout::RowMajor, 1),
            (2, 3, 20)
        );
        assert_eq!(
            channel_blocks(&[2, 3, 4, 5], Layout::ChannelsLast, 1),
            (40, 3, 1)
        );
        assert_eq!(
            channel_blocks(&[2, 3, 4, 5], Layout::ChannelsLast, 2),
            (2, 4, 15)
        );
    }
}
