//! Implicit-GEMM convolution on the GEMM micro-kernels.
//!
//! Per group, the convolution is the GEMM `out[m, n] = Σ_k A[m, k]·W[n, k]` where row `m` is
//! an output pixel and `k = tap·(C/groups) + c`. A is never materialized: each task gathers
//! the rows of its own block of M tiles (one contiguous channel run per tap, or the input
//! zero point for padding taps) into a tile-sized staging row, hands them to the family's
//! `pack_a`, and then runs the same N-tile × K-block × M-tile loop as the GEMM driver.
//! Every output is computed by one tile over the full K, so results do not depend on the
//! task split or the thread count.

use crate::par;

use super::geometry::ConvGeometry;
use crate::gemm::{AlignedBuf, KernelKind, Microkernel, OutRow, PackedWeights, Stage, TileJob};

/// Multiply-accumulates above which work is split over rayon's threads.
const PARALLEL_MACS: usize = 1 << 19;
/// Target size of one task's block of packed activations.
const A_BLOCK_BYTES: usize = 256 * 1024;

/// Whether the family packs A in the default row-major u8 layout of
/// `Microkernel::pack_a` (row `r` at `r·a_row_stride`, K bytes then zeros), so rows can be
/// gathered straight into the packed tile. Every family is checked against the oracle.
fn a_is_row_major(kind: KernelKind) -> bool {
    matches!(
        kind,
        KernelKind::Scalar
            | KernelKind::Avx2Saturating
            | KernelKind::AvxVnni
            | KernelKind::Avx512Vnni
            | KernelKind::Amx
    )
}

/// One group's packed weights with its prepared pipeline and zero-point correction.
pub(crate) struct GroupPlan<'a> {
    pub w: &'a PackedWeights,
    pub stage: Stage<'static>,
    /// `a_offset·Σ_k W − za·(Σ_k W − zw·K)` per output channel (wrapping).
    pub corr: Vec<i32>,
}

impl<'a> GroupPlan<'a> {
    pub(crate) fn new(
        kernel: &dyn Microkernel,
        w: &'a PackedWeights,
        stage: Stage<'static>,
        za: i32,
    ) -> Self {
        let kk = w.k() as i64;
        let off = i64::from(kernel.a_offset());
        let corr = w
            .weight_sums()
            .iter()
            .zip(w.zero_points())
            .map(|(&s, &zw)| {
                let s = i64::from(s);
                (off * s - i64::from(za) * (s - i64::from(zw) * kk)) as i32
            })
            .collect();
        GroupPlan { w, stage, corr }
    }
}

/// Everything a task needs.
pub(crate) struct Plan<'a> {
    pub kernel: &'a dyn Microkernel,
    pub g: &'a ConvGeometry,
    pub out_dims: [usize; 3],
    pub input: &'a [u8],
    pub za: i32,
    pub groups: Vec<GroupPlan<'a>>,
}

impl Plan<'_> {
    /// Runs the whole convolution into the NDHWC `out` (validated by the caller).
    pub(crate) fn run(&self, out: &mut [u8]) {
        let g = self.g;
        let m = g.batch * self.out_dims.iter().product::<usize>();
        let o = g.out_channels;
        let k = g.k();
        let shape = self.kernel.tile_shape(m);
        let kp = self.groups[0].w.k_padded();
        let tile_a = self.kernel.a_tile_bytes(shape.rows, kp);
        let m_tiles = m.div_ceil(shape.rows);
        let mut mb = (A_BLOCK_BYTES / tile_a.max(1)).clamp(1, m_tiles);
        let threads = rayon::current_num_threads();
        let parallel = threads > 1 && m.saturating_mul(o).saturating_mul(k) >= PARALLEL_MACS;
        if parallel {
            mb = mb.min(m_tiles.div_ceil(8 * threads)).max(1);
        }
        let chunk = mb * shape.rows * o;
        let task = |(bi, dst): (usize, &mut [u8])| {
            let t0 = bi * mb;
            self.run_block(t0..(t0 + mb).min(m_tiles), m, dst);
        };
        par::for_each_chunk_if(parallel, out, chunk, task);
    }

    /// Gathers row `m` of group `grp` (all taps) into `row` (length K). Along the width a
    /// run of in-bounds taps with dilation 1 and one group is one contiguous copy.
    pub(crate) fn gather_row(&self, m: usize, grp: usize, row: &mut [u8]) {
        let g = self.g;
        let [od, oh, ow] = self.out_dims;
        let x = m % ow;
        let y = (m / ow) % oh;
        let z = (m / (ow * oh)) % od;
        let n = m / (ow * oh * od);
        let cg = g.group_in();
        let c0 = grp * cg;
        let [id, ih, iw] = g.input;
        let kw = g.kernel[2];
        let fill = self.za as u8;
        // Width taps in bounds: tx in lo..hi (for dilation 1; general case per tap below).
        let x0 = (x * g.stride[2]) as isize - g.padding[2] as isize;
        let contiguous = g.dilation[2] == 1 && g.groups == 1;
        let lo = (-x0).clamp(0, kw as isize) as usize;
        let hi = (iw as isize - x0).clamp(lo as isize, kw as isize) as usize;
        let mut t = 0;
        for tz in 0..g.kernel[0] {
            let iz = g.input_coord(0, z, tz);
            for ty in 0..g.kernel[1] {
                let seg = &mut row[t * cg..(t + kw) * cg];
                t += kw;
                let (Some(iz), Some(iy)) = (iz, g.input_coord(1, y, ty)) else {
                    seg.fill(fill);
                    continue;
                };
                let line = ((n * id + iz) * ih + iy) * iw;
                if contiguous {
                    if lo > 0 {
                        seg[..lo * cg].fill(fill);
                    }
                    if hi > lo {
                        let at = (line + (x0 + lo as isize) as usize) * g.in_channels;
                        seg[lo * cg..hi * cg].copy_from_slice(&self.input[at..at + (hi - lo) * cg]);
                    }
                    if hi < kw {
                        seg[hi * cg..].fill(fill);
                    }
                } else {
                    for (tx, dst) in seg.chunks_exact_mut(cg).enumerate() {
                        match g.input_coord(2, x, tx) {
                            Some(ix) => {
                                let at = (line + ix) * g.in_channels + c0;
                                dst.copy_from_slice(&self.input[at..at + cg]);
                            }
                            None => dst.fill(fill),
                        }
                    }
                }
            }
        }
    }

    /// Runs M tiles `tiles` (output rows starting at `tiles.start · MR`) into `dst`.
    fn run_block(&self, tiles: std::ops::Range<usize>, m: usize, dst: &mut [u8]) {
        let kernel = self.kernel;
        let o = self.g.out_channels;
        let og = self.g.group_out();
        let k = self.g.k();
        let shape = kernel.tile_shape(m);
        let layout = kernel.layout();
        let nr = layout.nr;
        let kp = self.groups[0].w.k_padded();
        let tile_cols = shape.panels * nr;
        let tile_a = kernel.a_tile_bytes(shape.rows, kp);
        let rows_of = |mt: usize| shape.rows.min(m - mt * shape.rows);
        let r_first = tiles.start * shape.rows;
        // 64-byte aligned (AMX tile loads of unaligned rows are several times slower).
        let mut apack_buf = AlignedBuf::zeroed(tile_a * tiles.len());
        let apack = apack_buf.bytes(tile_a * tiles.len());
        let mut staging = vec![0u8; shape.rows * k];
        let row_major = a_is_row_major(kernel.kind());
        let a_stride = kernel.a_row_stride(kp);
        let mut row_sums = vec![0i32; tiles.len() * shape.rows];
        let tile_acc = shape.rows * tile_cols;
        let mut acc_buf = AlignedBuf::zeroed(4 * tile_acc * tiles.len());
        let acc = acc_buf.i32s(tile_acc * tiles.len());
        let kc_max = (kernel.k_block().max(layout.kr) / layout.kr * layout.kr).min(kp);
        for (grp, plan) in self.groups.iter().enumerate() {
            let symmetric = plan.w.is_symmetric();
            for (i, mt) in tiles.clone().enumerate() {
                let rows = rows_of(mt);
                let d = &mut apack[i * tile_a..i * tile_a + kernel.a_tile_bytes(rows, kp)];
                let sum = |v: &[u8]| v.iter().map(|&b| i32::from(b)).sum::<i32>();
                if row_major {
                    // The family's packed A is the default row-major u8 layout: gather in place.
                    // Bytes k.. of each row stay zero from the allocation (never written).
                    for (r, dr) in d.chunks_exact_mut(a_stride).take(rows).enumerate() {
                        self.gather_row(mt * shape.rows + r, grp, &mut dr[..k]);
                        if !symmetric {
                            row_sums[i * shape.rows + r] = sum(&dr[..k]);
                        }
                    }
                } else {
                    for r in 0..rows {
                        let row = &mut staging[r * k..(r + 1) * k];
                        self.gather_row(mt * shape.rows + r, grp, row);
                        if !symmetric {
                            row_sums[i * shape.rows + r] = sum(row);
                        }
                    }
                    kernel.pack_a(&staging, k, rows, k, kp, d);
                }
            }
            for nt in 0..og.div_ceil(tile_cols) {
                let n0 = nt * tile_cols;
                let nc = tile_cols.min(og - n0);
                let panels = nc.div_ceil(nr);
                let b = plan.w.panel_bytes_of(n0 / nr, panels);
                let mut k0 = 0;
                while k0 < kp {
                    let kc = kc_max.min(kp - k0);
                    for (i, mt) in tiles.clone().enumerate() {
                        let rows = rows_of(mt);
                        kernel.compute(TileJob {
                            a: &apack[i * tile_a..i * tile_a + kernel.a_tile_bytes(rows, kp)],
                            rows,
                            b,
                            panels,
                            cols: panels * nr,
                            kp,
                            k0,
                            kc,
                            accumulate: k0 > 0,
                            acc: &mut acc[i * tile_acc..(i + 1) * tile_acc],
                            acc_ld: tile_cols,
                        });
                    }
                    k0 += kc;
                }
                let zw = &plan.w.zero_points()[n0..n0 + nc];
                let corr = &plan.corr[n0..n0 + nc];
                for (i, mt) in tiles.clone().enumerate() {
                    for r in 0..rows_of(mt) {
                        let at = i * tile_acc + r * tile_cols;
                        let raw = &mut acc[at..at + nc];
                        let rs = row_sums[i * shape.rows + r];
                        for ((x, &c), &z) in raw.iter_mut().zip(corr).zip(zw) {
                            *x = x.wrapping_add(c);
                            if !symmetric {
                                *x = x.wrapping_sub(rs.wrapping_mul(z));
                            }
                        }
                        let row = mt * shape.rows + r - r_first;
                        let c0 = row * o + grp * og + n0;
                        kernel.finish(&plan.stage, n0, raw, OutRow::U8(&mut dst[c0..c0 + nc]));
                    }
                }
            }
        }
    }
}
