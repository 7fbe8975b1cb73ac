//! The fp16 tiles on an **unpacked** row-major weight (`N × K`, PyTorch's Linear layout, f32 or
//! f16), with nothing cached between calls: a weight that changes (an optimizer step, a state
//! dict load) needs no invalidation.
//!
//! The roles of the operands are swapped: `yᵀ = W xᵀ`. The activations `x` (`M × K`, few rows)
//! are packed per call into panels of 16 rows (`[K][16]`, the layout of [`super::PackedF32`]),
//! which costs `M·K` copies, and the weight's rows stream through the tiles as the broadcast
//! operand, read in place (f16 rows are widened into a small scratch first, F16C). The `gemm`
//! crate instead packs the transposed weight on every call (`N·K` strided copies), which made
//! the fp32 Linear at 16 × 1024 × 1024 twice as slow as PyTorch's.
//!
//! Each output is still one FMA chain per K block of [`K_BLOCK`] over increasing k, the block
//! sums added in order, then bias and ReLU (`fma` is symmetric in its two factors), so the
//! results are the same bits as [`super::gemm_f32_f32`] on `PackedF32::pack(w)` (f32 weights)
//! and as [`super::gemm_f32_f16`] and the oracle [`super::reference_fp16_gemm`] (f16 weights).
//!
//! Loop order: activations in chunks of up to [`M_CHUNK`] rows; per chunk, K blocks outermost
//! (their sums must be added in order), then 6-row tiles of the weight, then the chunk's x
//! panels (one at a time in the AVX2 and scalar tiles, up to four per zmm tile in the AVX-512
//! one, which adds its sums into the transposed output itself). The weight is read once per
//! chunk and the chunk's panels (≤ 256 KiB per K block) stay in L2. A chunk of at least
//! [`PAR_MIN_MACS`] multiply-adds splits its weight rows (whole 6-row tiles) over the current
//! rayon pool, each task writing its own rows of the transposed output: the same chains, so
//! the same bits at every thread count.
//!
//! Around the tiles (the AVX-512 family; tuned on the Intel Xeon of session 20, where the
//! tiles run near the FMA ports' rate and these steps were a quarter of the time at 256 ×
//! 1024 → 1024): the panels and the transposed output start on 64-byte boundaries (a zmm
//! load or store then never straddles two cache lines); the packing and the untranspose move
//! 16 × 16 blocks through zmm transposes (`super::avx512_transpose`) instead of one scalar
//! load and store per value; and each thread keeps both buffers between calls (up to
//! [`KEEP_MAX`] values), so a call neither zeroes nor page-faults fresh memory (every value
//! is written before it is read); when a chunk splits over the pool, so do its packing (a
//! panel per task) and its untranspose (16 output rows per task). These only move values: the
//! bits are unchanged.

use half::f16;

#[cfg(target_arch = "x86_64")]
use super::avx512::{self, TileOut};
use super::driver::{MR, Panel, Tile, apply_epilogue, row_tiles};
use super::kernel::Fp16Kernel;
use super::{Fp16Epilogue, K_BLOCK, NR};
use crate::error::{GemmError, Result};
use crate::float::widen_f16_slice;
use crate::gemm;
use crate::par;

/// Most activation rows per chunk (eight 16-row panels). On Zen 4 (AVX-512 tile, 1 thread)
/// 128 rows against 64 took 512 × 4096 → 4096 from 178 to 169 ms (the weight, 64 MiB, is
/// read once per chunk) and left the 1024-wide shapes within noise; 256 rows gave 167–169 ms.
pub const M_CHUNK: usize = 128;

/// Chunks of at least this many multiply-adds (`rows·n·k`) split their weight rows over the
/// current rayon pool (16 × 1024 → 1024 is 16.8 M; LeNet's largest Linear at batch 64, 3.1 M).
pub const PAR_MIN_MACS: usize = 1 << 22;

/// A row-major weight used as stored: row `n` holds output `n`'s `K` weights, contiguous.
#[derive(Clone, Copy, Debug)]
pub enum WeightRows<'a> {
    /// f32 storage.
    F32(&'a [f32]),
    /// f16 storage (widened exactly before use).
    F16(&'a [f16]),
}

impl WeightRows<'_> {
    /// Number of stored values.
    pub fn len(&self) -> usize {
        match self {
            WeightRows::F32(w) => w.len(),
            WeightRows::F16(w) => w.len(),
        }
    }

    /// True when no value is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `out = epilogue(x wᵀ)` for `x` (`m` rows of `k` f32, row stride `ldx`) and a row-major
/// `n × k` weight used as stored (`n·k` values), into `out` (`m` rows of `n`, row stride
/// `ldo`), on [`Fp16Kernel::best`]. Returns the family that ran. The same bits as
/// [`super::gemm_f32_f32`] on `PackedF32::pack(w)` (f32) or [`super::gemm_f32_f16`] on
/// `PackedF16::pack(w)` (f16).
///
/// Errors: `n` or `k` zero ([`GemmError::EmptyDimension`]), a weight whose length is not `n·k`
/// ([`GemmError::BufferTooSmall`]), strides smaller than the rows, buffers too short, a bias
/// whose length is not `n`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_f32_rows(
    x: &[f32],
    m: usize,
    ldx: usize,
    w: WeightRows<'_>,
    n: usize,
    k: usize,
    out: &mut [f32],
    ldo: usize,
    epilogue: Fp16Epilogue<'_>,
) -> Result<Fp16Kernel> {
    gemm_f32_rows_with(Fp16Kernel::best(), x, m, ldx, w, n, k, out, ldo, epilogue)
}

/// [`gemm_f32_rows`] on an explicitly requested family (tests and benches); every family
/// gives the same bits. Errors as [`gemm_f32_rows`], plus
/// [`GemmError::UnsupportedFp16Kernel`].
#[allow(clippy::too_many_arguments)]
pub fn gemm_f32_rows_with(
    kind: Fp16Kernel,
    x: &[f32],
    m: usize,
    ldx: usize,
    w: WeightRows<'_>,
    n: usize,
    k: usize,
    out: &mut [f32],
    ldo: usize,
    epilogue: Fp16Epilogue<'_>,
) -> Result<Fp16Kernel> {
    if !kind.is_runnable() {
        return Err(GemmError::UnsupportedFp16Kernel { kind });
    }
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
    gemm::check_matrix("activations", x.len(), m, k, ldx)?;
    gemm::check_matrix("output", out.len(), m, n, ldo)?;
    if let Some(b) = epilogue.bias
        && b.len() != n
    {
        return Err(GemmError::QParamsLength {
            what: "bias",
            expected: n,
            got: b.len(),
        });
    }
    let tile = Tile::new(kind)?;
    // The calling thread's buffers from its last call, if it has them (a nested call on the
    // same thread, from a pool job it ran while waiting, takes new ones).
    let kept = KEPT.with(|k| k.try_borrow_mut().map(|mut k| std::mem::take(&mut *k)));
    let (mut panels_buf, mut out_t_buf) = kept.unwrap_or_default();
    run_chunks(
        &tile,
        (x, m, ldx),
        w,
        (n, k),
        out,
        ldo,
        (&mut panels_buf, &mut out_t_buf),
    );
    if panels_buf.len() + out_t_buf.len() <= KEEP_MAX {
        KEPT.with(|k| {
            if let Ok(mut k) = k.try_borrow_mut() {
                *k = (panels_buf, out_t_buf);
            }
        });
    }
    apply_epilogue(epilogue, out, m, n, ldo);
    Ok(kind)
}

/// Most values (panels and transposed output together) a thread keeps between calls: 5 MiB
/// of f32 (a 4096-wide layer's buffers take 4 MiB); larger buffers are freed after the call.
/// Allocating them per call cost the fp32 Linear at 256 × 1024 → 1024 its zeroing and page
/// faults (1–2 % on the Intel Xeon).
const KEEP_MAX: usize = 5 << 18;

thread_local! {
    /// The activation panels and transposed output a thread's last call used.
    static KEPT: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const {
        std::cell::RefCell::new((Vec::new(), Vec::new()))
    };
}

/// The chunks of [`gemm_f32_rows_with`] (arguments checked), into `out` before the epilogue.
fn run_chunks(
    tile: &Tile,
    (x, m, ldx): (&[f32], usize, usize),
    w: WeightRows<'_>,
    (n, k): (usize, usize),
    out: &mut [f32],
    ldo: usize,
    (panels_buf, out_t_buf): (&mut Vec<f32>, &mut Vec<f32>),
) {
    let mut wide = Vec::new();
    let mut scratch = Vec::new();
    // The chunk's outputs transposed (`n` rows of `ldt = 16·panels` values): the tiles write
    // runs of 16 contiguous values there; writing them straight into `out` would scatter
    // them 16 rows apart, which for wide layers are 4 KiB apart and evict each other from L1.
    for m0 in (0..m).step_by(M_CHUNK) {
        let mc = M_CHUNK.min(m - m0);
        let ldt = mc.div_ceil(NR) * NR;
        let panels = aligned(panels_buf, ldt * k);
        let np = mc.div_ceil(NR);
        let tasks = if mc * n * k >= PAR_MIN_MACS {
            rayon::current_num_threads().min(n.div_ceil(MR))
        } else {
            1
        };
        let xc = &x[m0 * ldx..];
        match tile {
            // Every value is written (zeros past the last row); one panel per task when the
            // chunk is split (the moves around the tiles were a tenth of the 2-thread time).
            #[cfg(target_arch = "x86_64")]
            Tile::Avx512(z, _) if tasks > 1 => {
                par::for_each_chunk(panels, k * NR, |(p, panel)| {
                    let rows = NR.min(mc - p * NR);
                    z.pack_panels(&xc[p * NR * ldx..], rows, ldx, k, panel);
                });
            }
            #[cfg(target_arch = "x86_64")]
            Tile::Avx512(z, _) => z.pack_panels(xc, mc, ldx, k, panels),
            _ => pack_x(xc, mc, ldx, k, panels),
        }
        let panels = &*panels;
        // Every value is written before it is read (the first K block stores its sums).
        let out_t = aligned(out_t_buf, n * ldt);
        if tasks <= 1 {
            let part = RowsPart {
                r_lo: 0,
                out_t,
                ldt,
            };
            run_rows(tile, w, k, panels, np, part, &mut scratch, &mut wide);
        } else {
            // Whole 6-row tiles per task; each task writes its own rows of `out_t`.
            let rows_per_task = n.div_ceil(tasks).div_ceil(MR) * MR;
            par::for_each_chunk_init(
                out_t,
                rows_per_task * ldt,
                || (Vec::new(), Vec::new()),
                |(scratch, wide), (i, out_t)| {
                    let part = RowsPart {
                        r_lo: i * rows_per_task,
                        out_t,
                        ldt,
                    };
                    run_rows(tile, w, k, panels, np, part, scratch, wide);
                },
            );
        }
        let oc = &mut out[m0 * ldo..(m0 + mc - 1) * ldo + n];
        match tile {
            // 16 output rows per task when the chunk is split.
            #[cfg(target_arch = "x86_64")]
            Tile::Avx512(z, _) if tasks > 1 => {
                let out_t = &*out_t;
                par::for_each_chunk(oc, NR * ldo, |(i, o)| {
                    let j0 = i * NR;
                    z.untranspose(&out_t[j0..], ldt, n, NR.min(mc - j0), o, ldo);
                });
            }
            #[cfg(target_arch = "x86_64")]
            Tile::Avx512(z, _) => z.untranspose(out_t, ldt, n, mc, oc, ldo),
            _ => untranspose(out_t, ldt, n, mc, oc, ldo),
        }
    }
}

/// Weight rows `r_lo..` of one chunk and their rows of the transposed output (`ldt` values
/// each; as many weight rows as `out_t` holds).
struct RowsPart<'a> {
    r_lo: usize,
    out_t: &'a mut [f32],
    ldt: usize,
}

/// Every K block of the part's weight rows against the chunk's `np` panels, in order.
#[allow(clippy::too_many_arguments)]
fn run_rows(
    tile: &Tile,
    w: WeightRows<'_>,
    k: usize,
    panels: &[f32],
    np: usize,
    part: RowsPart<'_>,
    scratch: &mut Vec<f32>,
    wide: &mut Vec<f32>,
) {
    let RowsPart { r_lo, out_t, ldt } = part;
    let part_rows = out_t.len() / ldt;
    for k0 in (0..k).step_by(K_BLOCK) {
        let kc = K_BLOCK.min(k - k0);
        for (t0, rows) in row_tiles(part_rows) {
            let r0 = r_lo + t0;
            let (wr, ldw): (&[f32], usize) = match w {
                WeightRows::F32(w) => (&w[r0 * k + k0..], k),
                // One K block spans whole rows: the tile's rows are one contiguous run,
                // widened in one call (small layers make hundreds of these calls).
                WeightRows::F16(w) if kc == k => {
                    scratch.resize(rows * k, 0.0);
                    widen_f16_slice(&w[r0 * k..(r0 + rows) * k], scratch);
                    (scratch, k)
                }
                WeightRows::F16(w) => {
                    scratch.resize(rows * kc, 0.0);
                    for (r, dst) in scratch.chunks_exact_mut(kc).enumerate() {
                        let start = (r0 + r) * k + k0;
                        widen_f16_slice(&w[start..start + kc], dst);
                    }
                    (scratch, kc)
                }
            };
            #[cfg(target_arch = "x86_64")]
            if let Tile::Avx512(z, _) = tile {
                for p0 in (0..np).step_by(avx512::MP) {
                    let dst = TileOut {
                        out: &mut out_t[t0 * ldt + p0 * NR..],
                        ld: ldt,
                        first: k0 == 0,
                    };
                    let count = avx512::MP.min(np - p0);
                    let start = (p0 * k + k0) * NR;
                    z.tile(
                        wr,
                        [ldw, 1],
                        rows,
                        &panels[start..],
                        [k * NR, NR],
                        count,
                        kc,
                        dst,
                    );
                }
                continue;
            }
            for p in 0..np {
                let panel = &panels[(p * k + k0) * NR..(p * k + k0 + kc) * NR];
                let mut acc = [0.0f32; MR * NR];
                tile.run(wr, ldw, rows, Panel::F32(panel), kc, &mut acc, wide);
                for (r, a) in acc.chunks_exact(NR).take(rows).enumerate() {
                    let t = &mut out_t[(t0 + r) * ldt + p * NR..(t0 + r) * ldt + (p + 1) * NR];
                    if k0 == 0 {
                        t.copy_from_slice(a);
                    } else {
                        t.iter_mut().zip(a).for_each(|(y, &v)| *y += v);
                    }
                }
            }
        }
    }
}

/// `out[j·ldo + t] = out_t[t·ldt + j]` for `j < rows`, `t < n`, 16 values of `t` at a time:
/// those 16 rows of `out_t` stay in L1 while every `j` reads them (one `j` at a time over all
/// `n` touched `n` lines per output row, from L2 or L3 for wide layers).
fn untranspose(out_t: &[f32], ldt: usize, n: usize, rows: usize, out: &mut [f32], ldo: usize) {
    for t0 in (0..n).step_by(NR) {
        let tn = NR.min(n - t0);
        for (j, row) in out.chunks_mut(ldo).take(rows).enumerate() {
            for (t, y) in row[t0..t0 + tn].iter_mut().enumerate() {
                *y = out_t[(t0 + t) * ldt + j];
            }
        }
    }
}

/// `len` values of `buf` starting on a 64-byte boundary (a cache line: the tiles' 16-value
/// loads and stores then never straddle two lines, which on the Intel Xeon cost 15 % of the
/// fp32 Linear at 256 × 1024 → 1024). The values are whatever `buf` held (zero when new).
fn aligned(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    const LINE: usize = 64 / std::mem::size_of::<f32>();
    if buf.len() < len + LINE {
        buf.resize(len + LINE, 0.0);
    }
    let off = buf.as_ptr().align_offset(64).min(LINE);
    &mut buf[off..off + len]
}

/// Packs `rows` rows of `x` (stride `ldx`, `k` values each) into panels of 16 rows,
/// `panels[(p·k + kk)·16 + j] = x[(16p + j)·ldx + kk]`, zero past the last row (`panels`
/// holds exactly `⌈rows / 16⌉·k·16` values).
fn pack_x(x: &[f32], rows: usize, ldx: usize, k: usize, panels: &mut [f32]) {
    panels.fill(0.0);
    for r in 0..rows {
        let (p, j) = (r / NR, r % NR);
        let panel = &mut panels[p * k * NR..(p + 1) * k * NR];
        for (kk, &v) in x[r * ldx..r * ldx + k].iter().enumerate() {
            panel[kk * NR + j] = v;
        }
    }
}
