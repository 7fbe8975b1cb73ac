//! [`PackedF16`]: an `N × K` f16 weight in panels of [`NR`] columns, packed once.

use half::f16;

use super::NR;
use crate::error::{GemmError, Result};

/// Checks the shape and lays `w` (row-major `n × k`) out in panels of 16 columns.
fn pack_panels<T: Copy, E: Copy>(
    w: &[T],
    n: usize,
    k: usize,
    f: impl Fn(T) -> E,
    zero: E,
) -> Result<(usize, usize, Vec<E>)> {
    if n == 0 {
        return Err(GemmError::EmptyDimension {
            what: "n (out_features)",
        });
    }
    if k == 0 {
        return Err(GemmError::EmptyDimension {
            what: "k (in_features)",
        });
    }
    let needed = n.saturating_mul(k);
    if w.len() != needed {
        return Err(GemmError::BufferTooSmall {
            what: "weight (n·k values)",
            needed,
            got: w.len(),
        });
    }
    let mut panels = vec![zero; n.div_ceil(NR) * k * NR];
    for (row, src) in w.chunks_exact(k).enumerate() {
        let (p, j) = (row / NR, row % NR);
        let panel = &mut panels[p * k * NR..(p + 1) * k * NR];
        for (kk, &v) in src.iter().enumerate() {
            panel[kk * NR + j] = f(v);
        }
    }
    Ok((n, k, panels))
}

/// An `N × K` weight (PyTorch's Linear layout, row `n` = output `n`) stored as f16 panels:
/// panel `p` holds `w[16p + j, k]` at `(p·K + k)·16 + j` (columns past N are zero).
#[derive(Clone, Debug, PartialEq)]
pub struct PackedF16 {
    n: usize,
    k: usize,
    panels: Vec<f16>,
}

impl PackedF16 {
    /// Packs a row-major `n × k` f16 weight.
    ///
    /// Errors: `n` or `k` zero, or `w.len() != n·k`.
    pub fn pack(w: &[f16], n: usize, k: usize) -> Result<Self> {
        Self::pack_with(w, n, k, |v| v)
    }

    /// Packs a row-major `n × k` f32 weight, rounding each value to the nearest f16 (ties to
    /// even; magnitudes past 65504 become infinite, so saturate first for PyTorch's rule).
    ///
    /// Errors: as [`PackedF16::pack`].
    pub fn from_f32(w: &[f32], n: usize, k: usize) -> Result<Self> {
        Self::pack_with(w, n, k, f16::from_f32)
    }

    fn pack_with<T: Copy>(w: &[T], n: usize, k: usize, f: impl Fn(T) -> f16) -> Result<Self> {
        let (n, k, panels) = pack_panels(w, n, k, f, f16::ZERO)?;
        Ok(Self { n, k, panels })
    }

    /// Output features N.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input features K.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Number of panels, `⌈N / 16⌉`.
    pub fn panel_count(&self) -> usize {
        self.n.div_ceil(NR)
    }

    /// Panel `p` (`[K][16]` f16).
    pub(crate) fn panel(&self, p: usize) -> &[f16] {
        &self.panels[p * self.k * NR..(p + 1) * self.k * NR]
    }

    /// The weight value `w[n, k]` (widened; exact).
    pub fn get(&self, n: usize, k: usize) -> Option<f32> {
        (n < self.n && k < self.k).then(|| self.panel(n / NR)[k * NR + n % NR].to_f32())
    }

    /// Bytes of packed storage.
    pub fn packed_bytes(&self) -> usize {
        2 * self.panels.len()
    }
}

/// An `N × K` f32 weight in the same panels as [`PackedF16`] (for [`super::gemm_f32_f32`]).
#[derive(Clone, Debug, PartialEq)]
pub struct PackedF32 {
    n: usize,
    k: usize,
    panels: Vec<f32>,
}

impl PackedF32 {
    /// Packs a row-major `n × k` f32 weight. Errors as [`PackedF16::pack`].
    pub fn pack(w: &[f32], n: usize, k: usize) -> Result<Self> {
        let (n, k, panels) = pack_panels(w, n, k, |v| v, 0.0)?;
        Ok(Self { n, k, panels })
    }

    /// Output features N.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input features K.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Panel `p` (`[K][16]` f32).
    pub(crate) fn panel(&self, p: usize) -> &[f32] {
        &self.panels[p * self.k * NR..(p + 1) * self.k * NR]
    }
}
