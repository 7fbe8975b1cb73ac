//! Bounds-checked strided matrix views, the operands of the float GEMM.
//!
//! A view is `rows x cols` elements of a slice, element `(i, j)` at `i * row_stride + j * col_stride`.
//! Constructors check that every element lies inside the slice, so the GEMM may hand raw pointers
//! to the crate without further checks.

use super::error::{FloatGemmError, Result};

/// Largest offset of a `rows x cols` view plus one, or `None` on overflow. Zero for an empty view.
fn needed_len(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    let last_row = (rows - 1).checked_mul(rs)?;
    let last_col = (cols - 1).checked_mul(cs)?;
    last_row.checked_add(last_col)?.checked_add(1)
}

/// Shared validation of shape, strides and slice length.
fn check(rows: usize, cols: usize, rs: usize, cs: usize, len: usize) -> Result<()> {
    for stride in [rs, cs] {
        if isize::try_from(stride).is_err() {
            return Err(FloatGemmError::StrideTooLarge { stride });
        }
    }
    match needed_len(rows, cols, rs, cs) {
        Some(needed) if needed <= len => Ok(()),
        needed => Err(FloatGemmError::ViewOutOfBounds {
            rows,
            cols,
            row_stride: rs,
            col_stride: cs,
            needed: needed.unwrap_or(usize::MAX),
            len,
        }),
    }
}

/// A read-only strided matrix view.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// A view with explicit strides; fails if an element would fall outside `data`.
    pub fn new(
        data: &'a [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self> {
        check(rows, cols, row_stride, col_stride, data.len())?;
        Ok(Self {
            data,
            rows,
            cols,
            rs: row_stride,
            cs: col_stride,
        })
    }

    /// A contiguous row-major `rows x cols` view of the first `rows * cols` elements.
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Result<Self> {
        Self::new(data, rows, cols, cols, 1)
    }

    /// The transposed view (no copy: rows and columns and their strides swap).
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Distance in elements between consecutive rows.
    pub fn row_stride(&self) -> usize {
        self.rs
    }

    /// Distance in elements between consecutive columns.
    pub fn col_stride(&self) -> usize {
        self.cs
    }

    /// The underlying slice.
    pub fn data(&self) -> &'a [T] {
        self.data
    }

    /// Element `(i, j)`, or `None` outside the view.
    pub fn get(&self, i: usize, j: usize) -> Option<&'a T> {
        if i < self.rows && j < self.cols {
            self.data.get(i * self.rs + j * self.cs)
        } else {
            None
        }
    }

    /// True when the view is the contiguous row-major layout `row_stride == cols, col_stride == 1`.
    pub fn is_row_major_contiguous(&self) -> bool {
        (self.cs == 1 || self.cols <= 1) && (self.rs == self.cols || self.rows <= 1)
    }
}

/// A mutable strided matrix view whose elements never share memory.
#[derive(Debug)]
pub struct MatMut<'a, T> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, T> MatMut<'a, T> {
    /// A view with explicit strides; fails if an element would fall outside `data` or if two
    /// elements would share memory.
    pub fn new(
        data: &'a mut [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self> {
        check(rows, cols, row_stride, col_stride, data.len())?;
        // Non-overlap: order the two axes by stride; the inner stride must be >= 1 when the inner
        // axis has more than one element, and the outer stride must step over the whole inner axis.
        let ((n_in, s_in), (n_out, s_out)) = if row_stride <= col_stride {
            ((rows, row_stride), (cols, col_stride))
        } else {
            ((cols, col_stride), (rows, row_stride))
        };
        let inner_ok = n_in <= 1 || s_in >= 1;
        let outer_ok = n_out <= 1 || s_out >= s_in.saturating_mul(n_in).max(1);
        if rows > 0 && cols > 0 && !(inner_ok && outer_ok) {
            return Err(FloatGemmError::OverlappingDestination {
                rows,
                cols,
                row_stride,
                col_stride,
            });
        }
        Ok(Self {
            data,
            rows,
            cols,
            rs: row_stride,
            cs: col_stride,
        })
    }

    /// A contiguous row-major `rows x cols` view of the first `rows * cols` elements.
    pub fn row_major(data: &'a mut [T], rows: usize, cols: usize) -> Result<Self> {
        Self::new(data, rows, cols, cols, 1)
    }

    /// The transposed view (no copy).
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Distance in elements between consecutive rows.
    pub fn row_stride(&self) -> usize {
        self.rs
    }

    /// Distance in elements between consecutive columns.
    pub fn col_stride(&self) -> usize {
        self.cs
    }

    /// A read-only view of the same elements.
    pub fn as_ref(&self) -> MatRef<'_, T> {
        MatRef {
            data: self.data,
            rows: self.rows,
            cols: self.cols,
            rs: self.rs,
            cs: self.cs,
        }
    }

    /// Mutable access to element `(i, j)`, or `None` outside the view.
    pub fn get_mut(&mut self, i: usize, j: usize) -> Option<&mut T> {
        if i < self.rows && j < self.cols {
            self.data.get_mut(i * self.rs + j * self.cs)
        } else {
            None
        }
    }

    /// The underlying slice, mutably (crate-internal: the GEMM takes its pointer).
    pub(crate) fn data_mut(&mut self) -> &mut [T] {
        self.data
    }

    /// The underlying slice, for the view's whole lifetime (crate-internal: cutting bands).
    pub(crate) fn into_data(self) -> &'a mut [T] {
        self.data
    }
}
