//! The blocked, optionally parallel loop around a [`Microkernel`]: validation, the overflow
//! bound, zero-point folding, A packing per task, tiles, epilogue, and disjoint output writes.
//!
//! Every output element is computed by exactly one tile over the full K, with integer
//! arithmetic that is exact (modulo 2³², and the overflow check makes it exact), followed by
//! a per-element epilogue; so results do not depend on the task split or the thread count.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::aligned::AlignedBuf;
use super::microkernel::{Microkernel, TileJob};
use super::pack::PackedWeights;
use super::pipeline::{OutRow, RowFix, Stage};
use crate::error::{GemmError, Result};
use crate::par;

/// Multiply-accumulates above which the work is split over rayon's threads.
const PARALLEL_MACS: usize = 1 << 19;
/// Target size of one task's block of packed activations.
const A_BLOCK_BYTES: usize = 512 * 1024;
/// Accumulators (i32) a task keeps for one group of adjacent N tiles (64 KiB).
const ACC_GROUP_I32: usize = 16 * 1024;
/// Most N tiles per epilogue group.
const MAX_GROUP_TILES: usize = 16;
/// Parallel tasks per thread (see [`split`]).
const TASKS_PER_THREAD: usize = 8;

/// Quantized activations: `rows × K` u8 (K taken from the packed weights), row stride
/// `row_stride`, with one zero point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Activations<'a> {
    /// Row-major data, at least `(rows − 1)·row_stride + K` bytes.
    pub data: &'a [u8],
    /// Rows (M).
    pub rows: usize,
    /// Row stride (≥ K).
    pub row_stride: usize,
    /// Zero point, `0..=255`.
    pub zero_point: i32,
}

/// Elements an output row segment can hold (all-zero bytes are a valid value: `Zeroable`).
pub(crate) trait OutElem: Copy + Send + Sync + bytemuck::Zeroable {
    fn wrap(s: &mut [Self]) -> OutRow<'_>;
}
impl OutElem for u8 {
    fn wrap(s: &mut [Self]) -> OutRow<'_> {
        OutRow::U8(s)
    }
}
impl OutElem for f32 {
    fn wrap(s: &mut [Self]) -> OutRow<'_> {
        OutRow::F32(s)
    }
}
impl OutElem for i32 {
    fn wrap(s: &mut [Self]) -> OutRow<'_> {
        OutRow::I32(s)
    }
}

/// The output buffer shared by the tasks; each task writes a disjoint set of tiles.
struct SharedOut<T> {
    ptr: *mut T,
    len: usize,
    ldc: usize,
    /// The memory may be uninitialized (a `Vec`'s spare capacity): [`SharedOut::row`] zeroes
    /// each segment before handing it out, on the thread that then writes it.
    fresh: bool,
    /// Elements handed out by [`SharedOut::row`] (added once per task).
    written: AtomicUsize,
}

// SAFETY: SharedOut is only a pointer to a `&mut [T]` (or `&mut [MaybeUninit<T>]`) borrowed
// for the whole call; tasks write disjoint (row, column-range) segments (see `row`), so
// sharing it across threads is like handing out disjoint `&mut` sub-slices.
unsafe impl<T: Send> Sync for SharedOut<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for SharedOut<T> {}

impl<T: OutElem> SharedOut<T> {
    fn new(ptr: *mut T, len: usize, ldc: usize, fresh: bool) -> Self {
        Self {
            ptr,
            len,
            ldc,
            fresh,
            written: AtomicUsize::new(0),
        }
    }

    /// Row `m`, columns `n0..n0 + nc`. Callers guarantee no two live segments overlap, and
    /// that each segment is asked for once.
    #[allow(clippy::mut_from_ref)]
    fn row(&self, m: usize, n0: usize, nc: usize) -> &mut [T] {
        let start = m * self.ldc + n0;
        assert!(start + nc <= self.len, "output segment out of bounds");
        if self.fresh {
            // SAFETY: in bounds (asserted above) of the buffer this was made from, which
            // outlives the call, and no other segment overlaps it; writing zero bytes to
            // possibly uninitialized memory initializes it (`T: Zeroable`).
            unsafe { std::ptr::write_bytes(self.ptr.add(start), 0, nc) };
        }
        // SAFETY: in bounds (asserted above) of the `&mut [T]` this was made from (or of the
        // fresh buffer, whose segment was just zeroed, so every element is initialized),
        // which outlives the call; the tiles partition the output so segments are disjoint.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), nc) }
    }
}

/// Checks a buffer of `rows` rows of `cols` with stride `ld`.
pub(crate) fn check_matrix(
    what: &'static str,
    len: usize,
    rows: usize,
    cols: usize,
    ld: usize,
) -> Result<()> {
    if ld < cols {
        return Err(GemmError::StrideTooSmall {
            what,
            stride: ld,
            row_len: cols,
        });
    }
    if rows == 0 {
        return Ok(());
    }
    let needed = (rows - 1)
        .checked_mul(ld)
        .and_then(|x| x.checked_add(cols))
        .unwrap_or(usize::MAX);
    if len < needed {
        return Err(GemmError::BufferTooSmall {
            what,
            needed,
            got: len,
        });
    }
    Ok(())
}

/// Errors when `Σ_k (a − za)(w − zw)` could leave the i32 range.
pub(crate) fn check_overflow(k: usize, a_zero_point: i32, w: &PackedWeights) -> Result<()> {
    let a_max = a_zero_point.max(255 - a_zero_point) as u64;
    let bound = (k as u64)
        .saturating_mul(a_max)
        .saturating_mul(u64::from(w.w_abs_max()));
    if bound > i32::MAX as u64 {
        return Err(GemmError::AccumulatorOverflow {
            k,
            a_zero_point,
            w_abs_max: w.w_abs_max(),
            bound,
        });
    }
    Ok(())
}

/// The per-column zero-point correction of activations with zero point `za` on `w` for
/// `kernel`: `corr[n] = a_offset·Σ_k W[n,k] − za·(Σ_k W[n,k] − zw[n]·K)`, in wrapping i32 like
/// the kernels, for the columns `cols` (`corr.len() == cols.len()`).
pub(crate) fn column_fix(
    kernel: &dyn Microkernel,
    za: i32,
    w: &PackedWeights,
    cols: std::ops::Range<usize>,
    corr: &mut [i32],
) {
    let off = kernel.a_offset();
    let (sums, offsets) = (&w.weight_sums()[cols.clone()], &w.col_offsets()[cols]);
    #[cfg(target_arch = "x86_64")]
    if super::x86_64::column_fix(off, za, sums, offsets, corr) {
        return;
    }
    column_fix_portable(off, za, sums, offsets, corr);
}

/// [`column_fix`]'s loop (x86 compiles it again with AVX2 enabled).
#[inline(always)]
pub(crate) fn column_fix_portable(
    off: i32,
    za: i32,
    sums: &[i32],
    offsets: &[i32],
    corr: &mut [i32],
) {
    let terms = sums.iter().zip(offsets);
    if off == 0 {
        for (x, (_, &c)) in corr.iter_mut().zip(terms) {
            *x = za.wrapping_mul(c).wrapping_neg();
        }
    } else {
        for (x, (&s, &c)) in corr.iter_mut().zip(terms) {
            *x = off.wrapping_mul(s).wrapping_sub(za.wrapping_mul(c));
        }
    }
}

/// Runs the whole GEMM into `out` (already validated by the caller). `corr` is the
/// [`column_fix`] of the call's activation zero point if the caller prepared it; otherwise
/// each task computes it for its own columns (on the thread that reads it).
#[allow(clippy::too_many_arguments)]
pub(crate) fn run<T: OutElem>(
    kernel: &dyn Microkernel,
    a: &Activations<'_>,
    w: &PackedWeights,
    stage: &Stage<'_>,
    corr: Option<&[i32]>,
    out: &mut [T],
    ldc: usize,
) {
    let shared = SharedOut::new(out.as_mut_ptr(), out.len(), ldc, false);
    run_shared(kernel, a, w, stage, corr, &shared);
}

/// [`run`] into possibly uninitialized memory: the `M × N` result with row stride N, each
/// row segment zeroed and then written by the thread that computes it (no zeroing pass by the
/// caller, and no segment first owned by another core's cache). Returns how many elements
/// were written: `M·N` (every element) whenever the call returns.
pub(crate) fn run_uninit<T: OutElem>(
    kernel: &dyn Microkernel,
    a: &Activations<'_>,
    w: &PackedWeights,
    stage: &Stage<'_>,
    corr: Option<&[i32]>,
    out: &mut [MaybeUninit<T>],
) -> usize {
    let shared = SharedOut::new(out.as_mut_ptr().cast::<T>(), out.len(), w.n(), true);
    run_shared(kernel, a, w, stage, corr, &shared);
    shared.written.load(Ordering::Acquire)
}

fn run_shared<T: OutElem>(
    kernel: &dyn Microkernel,
    a: &Activations<'_>,
    w: &PackedWeights,
    stage: &Stage<'_>,
    corr: Option<&[i32]>,
    out: &SharedOut<T>,
) {
    let (m, n, k) = (a.rows, w.n(), w.k());
    if m == 0 {
        return;
    }
    let threads = rayon::current_num_threads();
    let parallel = threads > 1 && m.saturating_mul(n).saturating_mul(k) >= PARALLEL_MACS;
    if parallel {
        par::wake();
    }
    run_fixed(kernel, a, w, stage, corr, parallel, out);
}

#[allow(clippy::too_many_arguments)]
fn run_fixed<T: OutElem>(
    kernel: &dyn Microkernel,
    a: &Activations<'_>,
    w: &PackedWeights,
    stage: &Stage<'_>,
    corr: Option<&[i32]>,
    parallel: bool,
    out: &SharedOut<T>,
) {
    let (m, n, k) = (a.rows, w.n(), w.k());
    let threads = rayon::current_num_threads();
    let row_sums: Option<Vec<i32>> = (!w.is_symmetric()).then(|| {
        (0..m)
            .map(|r| {
                a.data[r * a.row_stride..r * a.row_stride + k]
                    .iter()
                    .fold(0i32, |acc, &x| acc.wrapping_add(i32::from(x)))
            })
            .collect()
    });

    let shape = kernel.tile_shape(m);
    let layout = kernel.layout();
    let kp = w.k_padded();
    let tile_cols = shape.panels * layout.nr;
    let m_tiles = m.div_ceil(shape.rows);
    let n_tiles = n.div_ceil(tile_cols);
    let tile_a = kernel.a_tile_bytes(shape.rows, kp);
    let mb = (A_BLOCK_BYTES / tile_a.max(1)).clamp(1, m_tiles);
    let (m_blocks, n_split) = if parallel {
        let a_bytes = m_tiles * tile_a;
        let w_bytes = w.panel_bytes() * n.div_ceil(layout.nr);
        split(m_tiles, n_tiles, mb, threads, (a_bytes, w_bytes))
    } else {
        (m_tiles.div_ceil(mb), 1)
    };
    let ctx = TaskCtx {
        kernel,
        a,
        w,
        stage,
        corr,
        row_sums: row_sums.as_deref(),
        out,
        reverse: w.next_sweep_reversed(),
        call: CALL_SEQ.fetch_add(1, Ordering::Relaxed),
    };
    let n_panels = n.div_ceil(layout.nr);
    if parallel && m_tiles == 1 {
        // Small M: the weights are the whole cost and are read again by the next call. Each
        // thread of the pool takes the same share of the panels on every call, so on a
        // pinned pool (or one the OS leaves in place) each core's L2 keeps its share. The
        // calling worker's share is larger ([`CALLER_SHARE`]): it starts at once, while the
        // others start after the hand-off (which share a thread computes never changes a bit).
        let caller = rayon::current_thread_index();
        par::for_each_thread(|i, count| {
            let panels = share(n_panels, count, caller, i);
            if !panels.is_empty() {
                ctx.run_block(0..1, panels);
            }
        });
        return;
    }
    // Consecutive tasks share an N part: rayon hands each thread a run of consecutive
    // indices, so a thread reads mostly its own share of the weights.
    let task = |t: usize| {
        let (ni, mi) = (t / m_blocks, t % m_blocks);
        let mt = part(m_tiles, m_blocks, mi);
        let nt = part(n_tiles, n_split, ni);
        if !nt.is_empty() && !mt.is_empty() {
            let panels = nt.start * shape.panels..(nt.end * shape.panels).min(n_panels);
            ctx.run_block(mt, panels);
        }
    };
    let tasks = m_blocks * n_split;
    if parallel {
        par::for_each_index(tasks, task);
    } else {
        (0..tasks).for_each(task);
    }
}

/// The calling worker's weight in [`share`], against [`OTHER_SHARE`] for each other thread: at
/// 2 threads it takes 12 of the 22 panels of a 1024-column weight. A 2-thread 1 × 1024 × 1024
/// call on the session-21 Xeon went from 6.4 to 5.3–5.7 µs static and from 6.7–7.0 to 5.8–6.3 µs
/// dynamic (four rounds each; docs/PERFORMANCE.md).
const CALLER_SHARE: usize = 6;
/// Every other thread's weight in [`share`].
const OTHER_SHARE: usize = 5;

/// Thread `i`'s consecutive range of `0..len` when `count` threads split it and thread
/// `caller` (the pool index of the thread that posted the work, if it is one of them) takes a
/// [`CALLER_SHARE`] : [`OTHER_SHARE`] larger share; near-equal parts without a caller. The
/// ranges cover `0..len` in order of `i`, without overlap.
fn share(len: usize, count: usize, caller: Option<usize>, i: usize) -> std::ops::Range<usize> {
    let Some(c) = caller.filter(|&c| c < count) else {
        return part(len, count, i);
    };
    let weight = |j: usize| if j == c { CALLER_SHARE } else { OTHER_SHARE };
    let total: usize = (0..count).map(weight).sum();
    let before: usize = (0..i).map(weight).sum();
    len * before / total..len * (before + weight(i)) / total
}

/// Part `i` of `0..len` cut into `parts` near-equal consecutive ranges.
fn part(len: usize, parts: usize, i: usize) -> std::ops::Range<usize> {
    len * i / parts..len * (i + 1) / parts
}

/// The parallel task grid `(m_blocks, n_split)` for `m_tiles × n_tiles` tiles with at most `mb`
/// M tiles per block: about [`TASKS_PER_THREAD`] tasks per thread (so that work stealing evens
/// out a thread that starts late or is preempted), cut where it streams the fewest bytes. Every
/// N part packs the activations of its M block again and every M block reads the weights of
/// its N part again, so with `(a_bytes, w_bytes)` the packed A of all M tiles and the packed
/// weights, a grid streams `a_bytes·n_split + w_bytes·m_blocks`: small M splits N only (each
/// thread then reads only its share of the weights, as one thread reads them once), large M
/// splits both. Grids of fewer than two tasks per thread (where the tiles allow as many) are
/// not considered; fewest M blocks on ties.
fn split(
    m_tiles: usize,
    n_tiles: usize,
    mb: usize,
    threads: usize,
    (a_bytes, w_bytes): (usize, usize),
) -> (usize, usize) {
    let target = TASKS_PER_THREAD * threads;
    let fewest = m_tiles.div_ceil(mb);
    let min_tasks = (2 * threads).min(m_tiles * n_tiles);
    (fewest..=m_tiles.min(target).max(fewest))
        .map(|m_blocks| (m_blocks, target.div_ceil(m_blocks).clamp(1, n_tiles)))
        .filter(|&(m_blocks, n_split)| m_blocks * n_split >= min_tasks)
        .min_by_key(|&(m_blocks, n_split)| {
            a_bytes
                .saturating_mul(n_split)
                .saturating_add(w_bytes.saturating_mul(m_blocks))
        })
        .unwrap_or((m_tiles.min(target).max(fewest), n_tiles.min(target)))
}

struct TaskCtx<'a, T> {
    kernel: &'a dyn Microkernel,
    a: &'a Activations<'a>,
    w: &'a PackedWeights,
    stage: &'a Stage<'a>,
    corr: Option<&'a [i32]>,
    row_sums: Option<&'a [i32]>,
    out: &'a SharedOut<T>,
    reverse: bool,
    /// This call's number ([`CALL_SEQ`]): a thread's packed A block is reused by its next
    /// task of the same call and M block.
    call: u64,
}

impl<T: OutElem> TaskCtx<'_, T> {
    /// Packs the A tiles of `m_tiles`, then runs every tile of `m_tiles` × the panels
    /// `panels` (N tiles of `TileShape::panels` panels from `panels.start`, the last one
    /// possibly narrower).
    fn run_block(&self, m_tiles: std::ops::Range<usize>, panels: std::ops::Range<usize>) {
        let (m, n, k) = (self.a.rows, self.w.n(), self.w.k());
        let kernel = self.kernel;
        let shape = kernel.tile_shape(m);
        let nr = kernel.layout().nr;
        let kp = self.w.k_padded();
        let tile_cols = shape.panels * nr;
        let tile_a = kernel.a_tile_bytes(shape.rows, kp);
        let kr = kernel.layout().kr;
        // K blocks keep a block of weights in L1 while the M tiles reuse it; with a single M
        // tile there is no reuse, and the whole K makes each panel one linear stream.
        let kc_max = if m_tiles.len() == 1 {
            kp
        } else {
            (kernel.k_block().max(kr) / kr * kr).min(kp)
        };
        // Adjacent N tiles are grouped so that each output row segment goes through the
        // epilogue once per group (one call per ~128 columns instead of per tile).
        let group = (ACC_GROUP_I32 / (m_tiles.len() * shape.rows * tile_cols).max(1))
            .clamp(1, MAX_GROUP_TILES);
        let group_cols = group * tile_cols;
        let tile_acc = shape.rows * group_cols;
        let mut scratch = Scratch::take();
        let key = (self.call, m_tiles.start, m_tiles.end);
        let packed = scratch.packed.replace(key) == Some(key);
        let (apack, acc, fix_buf) =
            scratch.split(tile_a * m_tiles.len(), tile_acc * m_tiles.len(), group_cols);
        for (i, mt) in m_tiles.clone().enumerate().filter(|_| !packed) {
            let r0 = mt * shape.rows;
            let rows = shape.rows.min(m - r0);
            let src = &self.a.data[r0 * self.a.row_stride..];
            let dst = &mut apack[i * tile_a..i * tile_a + kernel.a_tile_bytes(rows, kp)];
            kernel.pack_a(src, self.a.row_stride, rows, k, kp, dst);
        }
        let rows_of = |mt: usize| shape.rows.min(m - mt * shape.rows);
        // Groups, their tiles and the K blocks run backwards on reversed sweeps (see
        // `PackedWeights::next_sweep_reversed`).
        let order = |i: usize, len: usize| if self.reverse { len - 1 - i } else { i };
        let n_tiles = panels.len().div_ceil(shape.panels);
        // The first panel of tile `t` of this block (`panels.end` past the last), and its first
        // column (`n` past the last); no division in the tile loop (`nr` is not a power of 2).
        let tile_panel = |t: usize| (panels.start + t * shape.panels).min(panels.end);
        let tile_col = |t: usize| (tile_panel(t) * nr).min(n);
        let groups = n_tiles.div_ceil(group);
        let k_blocks = kp.div_ceil(kc_max);
        let mut written = 0;
        for gi in 0..groups {
            let nt = order(gi, groups) * group;
            let nt_end = (nt + group).min(n_tiles);
            let g0 = tile_col(nt);
            let gnc = tile_col(nt_end) - g0;
            for ti in 0..nt_end - nt {
                let t = nt + order(ti, nt_end - nt);
                let n0 = tile_col(t);
                let col = n0 - g0;
                let nc = tile_col(t + 1) - n0;
                // The panels of tile t: every panel holds at least one of the `n` columns.
                let p0 = tile_panel(t);
                let panels = tile_panel(t + 1) - p0;
                debug_assert_eq!(panels, nc.div_ceil(nr));
                let b = self.w.panel_bytes_of(p0, panels);
                // K blocks outer, M tiles inner: the block of weights stays in L1 across the
                // tiles.
                for bi in 0..k_blocks {
                    let k0 = order(bi, k_blocks) * kc_max;
                    let kc = kc_max.min(kp - k0);
                    for (i, mt) in m_tiles.clone().enumerate() {
                        let rows = rows_of(mt);
                        kernel.compute(TileJob {
                            a: &apack[i * tile_a..i * tile_a + kernel.a_tile_bytes(rows, kp)],
                            rows,
                            b,
                            panels,
                            cols: nc,
                            kp,
                            k0,
                            kc,
                            accumulate: bi > 0,
                            acc: &mut acc[i * tile_acc + col..(i + 1) * tile_acc],
                            acc_ld: group_cols,
                        });
                    }
                }
            }
            let zw = &self.w.zero_points()[g0..g0 + gnc];
            let corr: &[i32] = match self.corr {
                Some(c) => &c[g0..g0 + gnc],
                None => {
                    let fix = &mut fix_buf[..gnc];
                    column_fix(kernel, self.a.zero_point, self.w, g0..g0 + gnc, fix);
                    fix
                }
            };
            for (i, mt) in m_tiles.clone().enumerate() {
                let r0 = mt * shape.rows;
                for r in 0..rows_of(mt) {
                    let at = i * tile_acc + r * group_cols;
                    let fix = RowFix {
                        corr,
                        row: self.row_sums.map(|s| (s[r0 + r], zw)),
                    };
                    let dst = self.out.row(r0 + r, g0, gnc);
                    kernel.finish_fixed(self.stage, g0, &mut acc[at..at + gnc], fix, T::wrap(dst));
                    written += gnc;
                }
            }
        }
        self.out.written.fetch_add(written, Ordering::AcqRel);
        scratch.give_back();
    }
}

thread_local! {
    /// Each thread's packed-A and accumulator buffers, reused across calls (a fresh zeroed
    /// allocation per task, up to [`A_BLOCK_BYTES`] + 64 KiB, costs page faults and zeroing
    /// on every call). Each thread keeps the largest it has needed.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Numbers the parallel GEMM calls of the process (see `TaskCtx::call`).
static CALL_SEQ: AtomicU64 = AtomicU64::new(0);

/// A task's scratch buffers (64-byte aligned), taken from this thread's [`SCRATCH`] (empty if
/// it is in use).
#[derive(Default)]
struct Scratch {
    a: AlignedBuf,
    acc: AlignedBuf,
    /// `(call, first M tile, end M tile)` whose packed A the start of `a` holds.
    packed: Option<(u64, usize, usize)>,
}

impl Scratch {
    fn take() -> Self {
        SCRATCH
            .with(|s| s.try_borrow_mut().map(|mut v| std::mem::take(&mut *v)))
            .unwrap_or_default()
    }

    /// `a_len` bytes, `acc_len` accumulators and `fix_len` column corrections (the
    /// accumulator buffer's tail), the first two starting on a 64-byte boundary. Their
    /// contents are stale: every packed A row, accumulator and correction is written before
    /// it is read (the first K block of a tile overwrites).
    fn split(
        &mut self,
        a_len: usize,
        acc_len: usize,
        fix_len: usize,
    ) -> (&mut [u8], &mut [i32], &mut [i32]) {
        self.a.grow(a_len);
        self.acc.grow(4 * (acc_len + fix_len));
        let (acc, fix) = self.acc.i32s(acc_len + fix_len).split_at_mut(acc_len);
        (self.a.bytes(a_len), acc, fix)
    }

    /// Returns the buffers to this thread's slot, keeping the larger ones.
    fn give_back(self) {
        SCRATCH.with(|s| {
            if let Ok(mut slot) = s.try_borrow_mut() {
                if slot.a.capacity_bytes() <= self.a.capacity_bytes() {
                    slot.a = self.a;
                    slot.packed = self.packed;
                }
                if slot.acc.capacity_bytes() < self.acc.capacity_bytes() {
                    slot.acc = self.acc;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn shares_cover_the_range_in_order_with_the_caller_larger() {
        use super::share;
        for len in [0usize, 1, 2, 21, 22, 64, 1000] {
            for count in 1..=5 {
                for caller in [None, Some(0), Some(1), Some(count - 1), Some(count)] {
                    let mut next = 0;
                    for i in 0..count {
                        let r = share(len, count, caller, i);
                        assert_eq!(r.start, next, "len {len} count {count} caller {caller:?}");
                        next = r.end;
                    }
                    assert_eq!(next, len);
                }
            }
        }
        assert_eq!(share(22, 2, Some(0), 0), 0..12);
        assert_eq!(share(22, 2, Some(1), 0), 0..10);
        assert_eq!(share(22, 2, Some(1), 1), 10..22);
        assert_eq!(share(22, 2, None, 0), 0..11);
    }

    #[test]
    fn small_m_splits_n_only_and_large_m_both() {
        // 8-row tiles, 48-column tiles, 2 threads (target 16 tasks); bytes ∝ rows of K.
        assert_eq!(split(2, 22, 60, 2, (16, 1024)), (1, 16));
        assert_eq!(split(8, 22, 60, 2, (64, 1024)), (1, 16));
        assert_eq!(split(32, 22, 60, 2, (256, 1024)), (2, 8));
        // The A block limit (`mb`) keeps at least ⌈m_tiles / mb⌉ M blocks.
        assert_eq!(split(64, 86, 15, 2, (512, 4096)), (5, 4));
        // One N tile: M blocks give the tasks.
        assert_eq!(split(32, 1, 60, 2, (256, 48)), (4, 1));
        // AMX 128 × 768 × 3072: A 104 KiB, weights 2.3 MiB: one M block (A packed 16 times,
        // the weights read once).
        assert_eq!(split(8, 64, 8, 2, (106_496, 2_359_296)), (1, 16));
        // AMX 1×1 conv 196 × 256 × 1024: A 63 KiB, weights 256 KiB: two M blocks.
        assert_eq!(split(13, 22, 13, 2, (66_560, 262_144)), (2, 8));
    }
}
