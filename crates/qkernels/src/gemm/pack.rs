//! [`PackedWeights`]: qint8 Linear weights packed once for one kernel family.
//!
//! Input layout is PyTorch's Linear weight: `N × K` row-major (`out_features × in_features`).
//! The packed layout is the family's [`PanelLayout`]: panels of `nr` output columns, each
//! panel `[K/kr][nr][kr]` bytes with K zero-padded to a multiple of `kr` and the last panel's
//! missing columns zero-filled. Packing also records, per output channel, the raw weight sum
//! `Σ_k W[n,k]` (so the activation zero point folds into a per-call bias with no pass over the
//! weights), the scales and zero points, and the largest `|W - zw|` for the overflow bound.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::kind::KernelKind;
use super::microkernel::{self, PanelLayout};
use crate::error::{GemmError, Result};

/// Quantization parameters of qint8 weights, as PyTorch stores them after prepack (the scale
/// as `float`, the zero point as an integer in `-128..=127`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WeightQParams<'a> {
    /// One scale and zero point for the whole weight (`per_tensor_affine`).
    PerTensor {
        /// Weight scale.
        scale: f32,
        /// Weight zero point.
        zero_point: i32,
    },
    /// One scale and zero point per output channel (`per_channel_affine`, axis 0).
    PerChannel {
        /// Scales, length N.
        scales: &'a [f32],
        /// Zero points, length N.
        zero_points: &'a [i32],
    },
}

impl<'a> WeightQParams<'a> {
    /// The qparams as PyTorch's modules hold them: a scale and zero-point list per output
    /// channel when `per_channel`, else the first entries of the lists (a per-tensor weight
    /// stores one of each).
    ///
    /// Errors: an empty list in per-tensor mode. Per-channel lengths are checked by
    /// [`PackedWeights::pack`], which knows N.
    pub fn from_slices(
        per_channel: bool,
        scales: &'a [f32],
        zero_points: &'a [i32],
    ) -> Result<Self> {
        if per_channel {
            return Ok(WeightQParams::PerChannel {
                scales,
                zero_points,
            });
        }
        match (scales.first(), zero_points.first()) {
            (Some(&scale), Some(&zero_point)) => Ok(WeightQParams::PerTensor { scale, zero_point }),
            (None, _) => Err(GemmError::QParamsLength {
                what: "weight scales",
                expected: 1,
                got: 0,
            }),
            (_, None) => Err(GemmError::QParamsLength {
                what: "weight zero points",
                expected: 1,
                got: 0,
            }),
        }
    }
}

/// A 64-byte aligned line of packed weight bytes (aligned so zmm loads never split lines).
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct Line([i8; 64]);

/// The direction of the next call's sweep over the packed panels (see
/// [`PackedWeights::next_sweep_reversed`]). Not part of the value: clones copy it, equality
/// ignores it.
#[derive(Debug, Default)]
struct Sweep(AtomicBool);

impl Clone for Sweep {
    fn clone(&self) -> Self {
        Sweep(AtomicBool::new(self.0.load(Ordering::Relaxed)))
    }
}

impl PartialEq for Sweep {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Which packing a [`PackedWeights`] value comes from (clones keep it): what a
/// [`super::PreparedRequantize`] is tied to. Not part of the value: equality ignores it.
#[derive(Clone, Copy, Debug)]
struct PackId(u64);

impl PackId {
    fn fresh() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        PackId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl PartialEq for PackId {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// qint8 weights packed for one [`KernelKind`], with their qparams and precomputed sums.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedWeights {
    kind: KernelKind,
    layout: PanelLayout,
    n: usize,
    k: usize,
    k_padded: usize,
    lines: Vec<Line>,
    weight_sums: Vec<i32>,
    col_offsets: Vec<i32>,
    scales: Vec<f32>,
    zero_points: Vec<i32>,
    symmetric: bool,
    per_channel: bool,
    w_abs_max: u32,
    sweep: Sweep,
    id: PackId,
}

impl PackedWeights {
    /// Packs `weights` (`n × k` row-major, PyTorch Linear layout) for `kind`.
    ///
    /// Errors: zero `n`/`k`, a short buffer, per-channel slices not of length `n`, a scale
    /// that is not finite and positive, a zero point outside `-128..=127`, or a `kind` this
    /// process cannot run ([`KernelKind::is_runnable`]).
    pub fn pack(
        weights: &[i8],
        n: usize,
        k: usize,
        qparams: WeightQParams<'_>,
        kind: KernelKind,
    ) -> Result<Self> {
        let layout = microkernel::kernel_for(kind)?.layout();
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
        let needed = n.checked_mul(k).ok_or(GemmError::BufferTooSmall {
            what: "weights",
            needed: usize::MAX,
            got: weights.len(),
        })?;
        if weights.len() < needed {
            return Err(GemmError::BufferTooSmall {
                what: "weights",
                needed,
                got: weights.len(),
            });
        }
        let (scales, zero_points, per_channel) = expand_qparams(qparams, n)?;
        let k_padded = k.div_ceil(layout.kr) * layout.kr;
        let panels = n.div_ceil(layout.nr);
        let total = panels * k_padded * layout.nr;
        let mut lines = vec![Line([0; 64]); total.div_ceil(64)];
        let bytes: &mut [i8] = bytemuck::cast_slice_mut(&mut lines);
        let mut weight_sums = vec![0i32; n];
        let mut w_abs_max = 0u32;
        for (col, row) in weights[..needed].chunks_exact(k).enumerate() {
            let (panel, j) = (col / layout.nr, col % layout.nr);
            let base = panel * k_padded * layout.nr + j * layout.kr;
            let zw = zero_points[col];
            let mut sum = 0i32;
            for (kk, &w) in row.iter().enumerate() {
                let at = base + (kk / layout.kr) * layout.nr * layout.kr + kk % layout.kr;
                bytes[at] = w;
                sum = sum.wrapping_add(i32::from(w));
                w_abs_max = w_abs_max.max((i32::from(w) - zw).unsigned_abs());
            }
            weight_sums[col] = sum;
        }
        let kw = k as i32; // wrapping, like every sum here
        let col_offsets = weight_sums
            .iter()
            .zip(&zero_points)
            .map(|(&s, &z)| s.wrapping_sub(z.wrapping_mul(kw)))
            .collect();
        let symmetric = zero_points.iter().all(|&z| z == 0);
        Ok(PackedWeights {
            kind,
            layout,
            n,
            k,
            k_padded,
            lines,
            weight_sums,
            col_offsets,
            scales,
            zero_points,
            symmetric,
            per_channel,
            w_abs_max,
            sweep: Sweep::default(),
            id: PackId::fresh(),
        })
    }

    /// Packs for [`KernelKind::best`].
    pub fn pack_best(
        weights: &[i8],
        n: usize,
        k: usize,
        qparams: WeightQParams<'_>,
    ) -> Result<Self> {
        Self::pack(weights, n, k, qparams, KernelKind::best())
    }

    /// The kernel family the weights were packed for.
    pub fn kind(&self) -> KernelKind {
        self.kind
    }

    /// Output channels (N, `out_features`).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Reduction length (K, `in_features`).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Whether the qparams are per channel (selects fbgemm's per-channel bias form).
    pub fn is_per_channel(&self) -> bool {
        self.per_channel
    }

    /// Weight scales, one per output channel (repeated for per-tensor).
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// Weight zero points, one per output channel (repeated for per-tensor).
    pub fn zero_points(&self) -> &[i32] {
        &self.zero_points
    }

    /// Whether every weight zero point is 0 (then no activation row sums are needed).
    pub fn is_symmetric(&self) -> bool {
        self.symmetric
    }

    /// Raw weight sums `Σ_k W[n,k]` (wrapping i32, like every sum here), one per output channel.
    pub fn weight_sums(&self) -> &[i32] {
        &self.weight_sums
    }

    /// fbgemm's `col_offsets[n] = Σ_k W[n,k] − zw[n]·K` (wrapping i32), computed at packing.
    pub fn col_offsets(&self) -> &[i32] {
        &self.col_offsets
    }

    /// The largest `|W[n,k] − zw[n]|` over all weights (used by the overflow bound).
    pub fn w_abs_max(&self) -> u32 {
        self.w_abs_max
    }

    /// The packing this value comes from (shared by its clones).
    pub(crate) fn id(&self) -> u64 {
        self.id.0
    }

    pub(crate) fn k_padded(&self) -> usize {
        self.k_padded
    }

    /// Bytes of one packed panel (`k_padded · nr`).
    pub(crate) fn panel_bytes(&self) -> usize {
        self.k_padded * self.layout.nr
    }

    /// Whether this call walks the weights backwards, flipping the direction for the next
    /// call. Successive calls alternate, so a call starts on the end of the weights the
    /// previous call read last, which is still in L2 when the weights are larger than L2
    /// (a 1024 × 1024 Linear on a 1 MiB L2: a repeated same-direction sweep evicts every line
    /// before it is read again). Integer sums do not depend on the order.
    pub(crate) fn next_sweep_reversed(&self) -> bool {
        self.sweep.0.fetch_xor(true, Ordering::Relaxed)
    }

    /// `count` consecutive panels starting at `first`.
    pub(crate) fn panel_bytes_of(&self, first: usize, count: usize) -> &[i8] {
        let bytes: &[i8] = bytemuck::cast_slice(&self.lines);
        let pb = self.panel_bytes();
        &bytes[first * pb..(first + count) * pb]
    }
}

/// Validates qparams and expands them to one scale and zero point per output channel.
fn expand_qparams(qparams: WeightQParams<'_>, n: usize) -> Result<(Vec<f32>, Vec<i32>, bool)> {
    let (scales, zps, per_channel) = match qparams {
        WeightQParams::PerTensor { scale, zero_point } => {
            (vec![scale; n], vec![zero_point; n], false)
        }
        WeightQParams::PerChannel {
            scales,
            zero_points,
        } => {
            if scales.len() != n {
                return Err(GemmError::QParamsLength {
                    what: "weight scales",
                    expected: n,
                    got: scales.len(),
                });
            }
            if zero_points.len() != n {
                return Err(GemmError::QParamsLength {
                    what: "weight zero points",
                    expected: n,
                    got: zero_points.len(),
                });
            }
            (scales.to_vec(), zero_points.to_vec(), true)
        }
    };
    if let Some(&scale) = scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Err(GemmError::InvalidScale {
            what: "weight scale",
            scale,
        });
    }
    if let Some(&zero_point) = zps.iter().find(|z| !(-128..=127).contains(*z)) {
        return Err(GemmError::ZeroPointOutOfRange {
            what: "weight zero point",
            zero_point,
            min: -128,
            max: 127,
        });
    }
    Ok((scales, zps, per_channel))
}
