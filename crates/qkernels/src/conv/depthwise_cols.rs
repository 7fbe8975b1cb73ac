//! The column product of the AVX-512 depthwise row kernel ([`Product::Cols`]): exact 3×3
//! windows without dilation, stride 1 or 2 along x.
//!
//! For each input column `ix` of the row's three input lines, one byte interleave (two
//! byte and two word unpacks per pair of vectors, eight in all) forms, per channel, the
//! dword `(x₀, x₁, x₂, 0)` of the three lines' bytes, in the accumulator layout of
//! [`super::depthwise_avx512`] (vector j, 128-bit lane L: channels `16L + 4j .. 16L + 4j +
//! 4`). Output pixel x reads columns `x·sx − px + tx` (tx < 3): three columns of four
//! vectors, one `vpdpbusd` each against the weights `(w[tx], w[3 + tx], w[6 + tx], 0)`,
//! so a pixel costs 12 `vpdpbusd` and, at stride 1, the eight unpacks of its one new
//! column (the old product: 16 unpacks and a shuffle per pixel). Columns outside the
//! input are input zero points, a padding line is read at step 0 from a run of them.

use super::depthwise_avx2::RowTaps;
use super::depthwise_avx512::{Block, Product, RowKernel512, pack_store};
use super::depthwise_lanes::{Lanes, Ymm, Zmm};

/// Runs block `blk` of one output row on the column product.
///
/// # Safety
/// AVX-512 F/BW/VL + VNNI available (`k` exists); `k.product` is [`Product::Cols`]; the
/// lengths of [`RowKernel512::row`]'s assertions hold and `blk` is one of `k`'s blocks;
/// `taps` was filled for this row (three line pointers, each addressing `iw` input pixels
/// of O bytes at step O, or O readable bytes at step 0); `out` holds `ow·O` bytes.
pub(super) unsafe fn row_block(k: &RowKernel512, blk: &Block, taps: &RowTaps, out: &mut [u8]) {
    debug_assert!(k.product == Product::Cols);
    let clamp = !(k.lo == 0 && k.hi == 255);
    // SAFETY: forwarded contract; the block's width selects the vector type.
    unsafe {
        macro_rules! go {
            ($l:ty, $full:expr) => {
                match (k.sx, clamp, k.bias_ab.is_some()) {
                    (1, true, true) => cols::<$l, 1, $full, true, true>(k, blk, taps, out),
                    (1, true, false) => cols::<$l, 1, $full, true, false>(k, blk, taps, out),
                    (1, false, true) => cols::<$l, 1, $full, false, true>(k, blk, taps, out),
                    (1, false, false) => cols::<$l, 1, $full, false, false>(k, blk, taps, out),
                    (_, true, true) => cols::<$l, 2, $full, true, true>(k, blk, taps, out),
                    (_, true, false) => cols::<$l, 2, $full, true, false>(k, blk, taps, out),
                    (_, false, true) => cols::<$l, 2, $full, false, true>(k, blk, taps, out),
                    (_, false, false) => cols::<$l, 2, $full, false, false>(k, blk, taps, out),
                }
            };
        }
        match (blk.width, blk.n == blk.width) {
            (64, true) => go!(Zmm, true),
            (64, false) => go!(Zmm, false),
            (_, true) => go!(Ymm, true),
            (_, false) => go!(Ymm, false),
        }
    }
}

/// The column loop of one block at stride `S` (1 or 2) on vectors `L` (`FULL`: all the
/// block's channels are real; `CLAMP`: the output bounds are not `0..=255`; `ADD`: the
/// requantization adds the folded bias `k.bias_ab` instead of its fma).
///
/// # Safety
/// [`row_block`]'s contract, with `L::W` the block's width and `S` the kernel's stride.
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn cols<L: Lanes, const S: usize, const FULL: bool, const CLAMP: bool, const ADD: bool>(
    k: &RowKernel512,
    blk: &Block,
    taps: &RowTaps,
    out: &mut [u8],
) {
    let o = k.o;
    let ow = out.len() / o;
    let iw = taps.iw;
    let c0 = blk.c0;
    let q = L::W / 4;
    let mask = u64::MAX >> (64 - blk.n);
    let lines: [(*const u8, usize); 3] = [taps.line_ptrs[0], taps.line_ptrs[1], taps.line_ptrs[2]];
    // SAFETY: the block's 12 weight vectors of `L::W` bytes start at c0·12 (the layout
    // `RowKernel512::new` built); the per-channel vectors hold c0 + `L::W` entries; a column
    // 0 ≤ ix < iw reads bytes c0..c0 + n ≤ O of pixel ix of each line (step 0: the line's
    // O bytes); `base + x·O` addresses the block's channels of output pixel x < ow.
    unsafe {
        let wmem = k.w.as_ptr().add(c0 * 12);
        let mut w = [L::zero(); 12];
        for (u, v) in w.iter_mut().enumerate() {
            *v = L::load(wmem.add(u * L::W).cast());
        }
        let mut init = [L::zero(); 4];
        for (j, v) in init.iter_mut().enumerate() {
            *v = L::load_i32(k.init.as_ptr().add(c0 + j * q));
        }
        let (ba, bb, m) = (
            k.bias_a.as_ptr().add(c0),
            k.bias_b.as_ptr().add(c0),
            k.mult.as_ptr().add(c0),
        );
        // (`ADD` is set only when the folded bias exists; it has the vectors' length)
        let bab = k.bias_ab.as_ref().map_or(bb, |v| v.as_ptr().add(c0));
        let zp = L::splat16(k.zero_point as i16);
        let (lo, hi) = (L::splat8(k.lo as u8 as i8), L::splat8(k.hi as u8 as i8));
        let za = L::splat8(k.za as i8);
        let pad = quad::<L>(za, za, za);
        let cols = Cols::<L, FULL> {
            lines,
            iw,
            c0,
            mask,
            pad,
        };
        let base = out.as_mut_ptr().add(c0);
        let x0 = -(k.px as isize);
        let finish = |acc: [L::V; 4], x: usize| {
            let mut qv = [L::zero(); 4];
            for (j, v) in qv.iter_mut().enumerate() {
                *v = if ADD {
                    L::requant_add(acc[j], bab.add(j * q), m.add(j * q))
                } else {
                    L::requant(acc[j], ba.add(j * q), bb.add(j * q), m.add(j * q))
                };
            }
            pack_store::<L, FULL, CLAMP>(qv, zp, lo, hi, mask, base.add(x * o), 0);
        };
        // Three column slots used in rotation (the loop is unrolled three times so no
        // column moves between registers). (Interleaving pixel x − 1's epilogue with pixel
        // x's products, as the per-pixel product does, was slower here.)
        let (mut a, mut b, mut c) = (cols.col(x0), cols.col(x0 + 1), cols.col(x0 + 2));
        let mut x = 0;
        macro_rules! pixel {
            ($p0:ident, $p1:ident, $p2:ident) => {
                let mut acc = init;
                for j in 0..4 {
                    acc[j] = L::dpbusd(acc[j], $p0[j], w[j]);
                    acc[j] = L::dpbusd(acc[j], $p1[j], w[4 + j]);
                    acc[j] = L::dpbusd(acc[j], $p2[j], w[8 + j]);
                }
                finish(acc, x);
                x += 1;
                if x == ow {
                    break;
                }
                // the columns of pixel x: stride 1 reuses two (the next pixel reads
                // ($p1, $p2, $p0)), stride 2 one (($p2, $p0, $p1))
                let ix = (S * x) as isize + x0;
                if S == 1 {
                    $p0 = cols.col(ix + 2);
                } else {
                    $p0 = cols.col(ix + 1);
                    $p1 = cols.col(ix + 2);
                }
            };
        }
        if ow > 0 {
            loop {
                if S == 1 {
                    pixel!(a, b, c);
                    pixel!(b, c, a);
                    pixel!(c, a, b);
                } else {
                    pixel!(a, b, c);
                    pixel!(c, a, b);
                    pixel!(b, c, a);
                }
            }
        }
    }
}

/// Per channel, the dwords `(r0, r1, r2, 0)` of three line vectors in accumulator order.
///
/// # Safety
/// AVX-512 F/BW/VL + VNNI available.
#[inline(always)]
unsafe fn quad<L: Lanes>(r0: L::V, r1: L::V, r2: L::V) -> [L::V; 4] {
    // SAFETY: the caller's contract (the ISA).
    unsafe {
        let zero = L::zero();
        let (l01, h01) = (L::unpacklo8(r0, r1), L::unpackhi8(r0, r1));
        let (l2, h2) = (L::unpacklo8(r2, zero), L::unpackhi8(r2, zero));
        [
            L::unpacklo16(l01, l2),
            L::unpackhi16(l01, l2),
            L::unpacklo16(h01, h2),
            L::unpackhi16(h01, h2),
        ]
    }
}

/// The column source of one block of one row.
struct Cols<L: Lanes, const FULL: bool> {
    /// Per input line, its first pixel and pixel step (0 for a padding line).
    lines: [(*const u8, usize); 3],
    iw: usize,
    c0: usize,
    mask: u64,
    /// The column of a padding pixel (input zero points).
    pad: [L::V; 4],
}

impl<L: Lanes, const FULL: bool> Cols<L, FULL> {
    /// Input column `ix` as [`quad`]s (padding outside `0..iw`).
    ///
    /// # Safety
    /// AVX-512 F/BW/VL + VNNI available; every line addresses `iw` pixels of `c0 + n`
    /// readable bytes at its step (the mask's `n` when not `FULL`, else `L::W`).
    #[inline(always)]
    unsafe fn col(&self, ix: isize) -> [L::V; 4] {
        if ix < 0 || ix as usize >= self.iw {
            return self.pad;
        }
        // SAFETY: 0 ≤ ix < iw (checked above) and the caller's contract.
        unsafe {
            let ld = |r: usize| {
                let (p, step) = self.lines[r];
                let p = p.add(ix as usize * step + self.c0);
                if FULL {
                    L::load(p)
                } else {
                    L::load_mask(p, self.mask)
                }
            };
            quad::<L>(ld(0), ld(1), ld(2))
        }
    }
}
