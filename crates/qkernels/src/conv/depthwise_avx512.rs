//! The AVX-512 depthwise row kernel (AVX-512 F/BW/VL + VNNI, the `Avx512Vnni` family): one
//! output row per call, like [`super::depthwise_avx2`] and on the same tap pointers
//! ([`RowTaps`]), but 64 channels per zmm (a last block of at most 32 channels runs on ymm at
//! half the cost, one of at most 16 on the per-pixel products with two pixels per ymm, one
//! per 128-bit lane: [`super::depthwise_lanes`]) with the block's weights in registers
//! across the row.
//!
//! Accumulator layout: a block's four i32 vectors `A_j` hold, in 128-bit lane `L`, the
//! channels `16L + 4j .. 16L + 4j + 4`. That is what the in-lane byte and word unpacks produce
//! from whole tap vectors, and the in-lane packs of the epilogue undo it, so the output bytes
//! come out in channel order.
//!
//! Three products, chosen per call:
//! * **pair-saturating** (fbgemm's depthwise fast path, when some weight pair can saturate):
//!   the taps `(2p, 2p + 1)` are byte-interleaved and multiplied by `vpmaddubsw` (its i16
//!   saturation is fbgemm's, bit for bit), two pairs' sums word-interleaved and added exactly
//!   into i32 by `vpdpwssd` with ones;
//! * **exact** (any other depthwise convolution, and the fast path when no pair can leave
//!   i16: `255·(|w₀| + |w₁|) < 2¹⁵` for same-sign pairs, so saturation never happens): four
//!   taps byte-interleaved per channel and accumulated by `vpdpbusd`;
//! * **columns** (the exact product of 2-d 3×3 windows without dilation at stride 1 or 2
//!   along x, [`super::depthwise_cols`]): per input column the three rows' bytes form one
//!   `vpdpbusd` group, shared by the pixels that read the column.
//!
//! An odd last tap is exact in both: one `vpshufb` transposes its bytes so that dword e of
//! lane L holds the channels of dword e of the four accumulators, and four `vpdpbusd` with
//! weights in byte j only add channel `16L + 4j + e` to accumulator j. The accumulators start at `−za·Σ_t w` and are
//! requantized in registers with the operations of [`crate::gemm::requantize_one`]
//! (`cvtdq2ps`, FMA with the bias, multiply, `cvtps2dq`, saturating packs, clamp; all
//! products add the bias instead when `bias_a·bias_b` is exact, as with per-channel qparams,
//! and all skip a clamp to `0..=255`).
//! Symmetric weights only (the caller keeps the per-pixel kernel for weight zero points ≠ 0).

use super::depthwise_avx2::RowTaps;
use super::depthwise_lanes::{Lanes, Ymm, Ymm2, Zmm};
use super::depthwise_pairs9 as pairs9;
use super::geometry::ConvGeometry;
use super::pack::DepthwiseWeights;
use crate::gemm::Stage;
use crate::isa::Isa;

/// `for $s in 0..$n { $body }`, unrolled (up to 8 iterations, the 5×5 kernel's 7 steps)
/// when `$fixed` (a constant tap count): LLVM does not fully unroll the large step bodies.
macro_rules! steps_loop {
    ($fixed:expr, $n:expr, $s:ident => $body:block) => {{
        let n: usize = $n;
        if $fixed {
            debug_assert!(n <= 8);
            steps_loop!(@unrolled n, $s, $body, 0 1 2 3 4 5 6 7);
        } else {
            for $s in 0..n $body
        }
    }};
    (@unrolled $n:ident, $s:ident, $body:block, $($k:literal)*) => {
        $(if $k < $n {
            let $s: usize = $k;
            $body
        })*
    };
}

/// Weight vectors a block keeps in registers (the 5×5 kernel's 28; more taps load them).
const MAX_REGS: usize = 28;

/// One channel block: channels `c0..c0 + n` on a vector of `width` bytes (64 or 32).
#[derive(Clone, Copy, Debug)]
pub(super) struct Block {
    pub(super) c0: usize,
    pub(super) n: usize,
    pub(super) width: usize,
    /// Two pixels per ymm, one per 128-bit lane ([`Ymm2`]): a tail of at most 16 channels
    /// on the per-pixel products (its per-channel vectors repeat lane 0 in lane 1).
    pub(super) paired: bool,
}

/// The blocks of O channels: whole zmm blocks, then a tail of at most 32 channels on ymm
/// or a longer one on a masked zmm.
fn blocks(o: usize) -> Vec<Block> {
    let mut v: Vec<Block> = (0..o / 64)
        .map(|b| Block {
            c0: b * 64,
            n: 64,
            width: 64,
            paired: false,
        })
        .collect();
    let r = o % 64;
    if r > 0 {
        v.push(Block {
            c0: o - r,
            n: r,
            width: if r <= 32 { 32 } else { 64 },
            paired: false,
        });
    }
    v
}

/// Channel (relative to its block) of element `i` of accumulator vector `j` of a block of
/// `width` bytes: lane `i / 4`, channels `16·lane + 4j + i % 4`.
pub(super) fn acc_channel(j: usize, i: usize) -> usize {
    16 * (i / 4) + 4 * j + i % 4
}

/// Whether some channel's tap pair `(2p, 2p + 1)` can leave i16 (`vpmaddubsw` saturates):
/// with u8 activations the pair sum reaches `255·Σ max(w, 0)` and `255·Σ min(w, 0)`.
fn pairs_can_saturate(w: &[i16], taps: usize, o: usize) -> bool {
    (0..o).any(|c| {
        (0..taps / 2).any(|p| {
            let (a, b) = (
                i32::from(w[2 * p * o + c]),
                i32::from(w[(2 * p + 1) * o + c]),
            );
            let pos = 255 * (a.max(0) + b.max(0));
            let neg = 255 * (a.min(0) + b.min(0));
            pos > i32::from(i16::MAX) || neg < i32::from(i16::MIN)
        })
    })
}

/// The product a [`RowKernel512`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Product {
    /// fbgemm's pair saturation (`vpmaddubsw`).
    Pairs,
    /// Exact, four taps of one pixel per `vpdpbusd`.
    Exact,
    /// Exact 3×3 without dilation at stride 1 or 2: per input column the three rows'
    /// bytes as one `vpdpbusd` group, shared by the pixels that read the column
    /// ([`super::depthwise_cols`]).
    Cols,
}

/// The weight vectors of the blocks for `product` (`units` vectors of each block's width
/// per block, from the `[tap][O]` weights `w`), in the order the products read them.
fn weight_layout(w: &[i16], o: usize, taps: usize, product: Product, blocks: &[Block]) -> Vec<i8> {
    let padded = blocks.last().map_or(0, |b| b.c0 + b.width);
    let units = RowKernel512::units(taps, product);
    let pairs = taps / 2;
    let mut wv = vec![0i8; padded * units];
    // the values are i8 weights widened to i16, so narrowing back is exact
    let wt = |t: usize, c: usize| -> i8 { if c < o { w[t * o + c] as i8 } else { 0 } };
    for b in blocks {
        // the block's weight vectors, `units` of `width` bytes
        let bw = &mut wv[b.c0 * units..(b.c0 + b.width) * units];
        let mut vecs = bw.chunks_exact_mut(b.width);
        if product == Product::Cols {
            // per kernel column tx and accumulator j: dword e of lane L is channel
            // 16L + 4j + e, bytes (w[tx], w[3 + tx], w[6 + tx], 0) (the three rows)
            for tx in 0..3 {
                for j in 0..4 {
                    let v = vecs.next().expect("units");
                    for (i, x) in v.iter_mut().enumerate() {
                        if i % 4 < 3 {
                            *x = wt(3 * (i % 4) + tx, b.c0 + acc_channel(j, i / 4));
                        }
                    }
                }
            }
            continue;
        }
        if product == Product::Pairs {
            // per pair, the low and high byte unpacks: word i of lane L is channel
            // 16L + i (low) or 16L + 8 + i (high), bytes (w[2p], w[2p + 1])
            for p in 0..pairs {
                for half in 0..2 {
                    let v = vecs.next().expect("units");
                    for (i, x) in v.iter_mut().enumerate() {
                        let c = b.c0 + 16 * (i / 16) + 8 * half + (i % 16) / 2;
                        *x = wt(2 * p + i % 2, c);
                    }
                }
            }
        } else {
            // per two pairs and accumulator j: dword e of lane L is channel
            // 16L + 4j + e, bytes (w[2p], w[2p + 1], w[2p + 2], w[2p + 3])
            for g in 0..pairs.div_ceil(2) {
                for j in 0..4 {
                    let v = vecs.next().expect("units");
                    for (i, x) in v.iter_mut().enumerate() {
                        let t = 4 * g + i % 4;
                        if t < 2 * pairs {
                            *x = wt(t, b.c0 + acc_channel(j, i / 4));
                        }
                    }
                }
            }
        }
        if taps % 2 == 1 {
            // the odd last tap: for accumulator j the weight in byte j of each dword
            // (the byte `lone_ctl` puts there)
            for j in 0..4 {
                let v = vecs.next().expect("units");
                for (i, x) in v.iter_mut().enumerate().skip(j).step_by(4) {
                    *x = wt(taps - 1, b.c0 + acc_channel(j, i / 4));
                }
            }
        }
        if b.paired {
            // lane 1 (the second pixel) takes lane 0's channels: channels ≥ 16 are
            // beyond the block's n ≤ 16, so lane 1 held zeros
            for v in bw.chunks_exact_mut(32) {
                v.copy_within(..16, 16);
            }
        }
    }
    wv
}

/// 64 bytes on a cache line (the `asm!` loops' per-channel vectors are loaded whole).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(super) struct Line(pub [u32; 16]);

/// Per-call constants of the AVX-512 row kernel; vectors in accumulator order per block.
pub(crate) struct RowKernel512<'a> {
    pub(super) o: usize,
    taps: usize,
    pub(super) product: Product,
    blocks: Vec<Block>,
    /// Weight vectors per block (`units` vectors of the block's width), see [`Self::units`]
    /// (built once per product and kept in the packed weights' layouts).
    pub(super) w: &'a [i8],
    /// The `vpshufb` control of the odd last tap.
    pub(super) lone_ctl: [i8; 64],
    pub(super) init: Vec<i32>,
    pub(super) mult: Vec<f32>,
    pub(super) bias_a: Vec<f32>,
    pub(super) bias_b: Vec<f32>,
    /// `bias_a·bias_b` when every channel's product is exact in f32 (per-channel qparams:
    /// `bias_a` is 1 or both are 0), so `fma(bias_a, bias_b, x)` is `x + bias_ab`.
    pub(super) bias_ab: Option<Vec<f32>>,
    /// With the folded bias on the pair-saturating 3×3 product (the `asm!` interior loops,
    /// [`super::depthwise_pairs9`]): per block from word `3·c0`, as raw 32-bit words, its
    /// `width` accumulator starts (i32), bias values and multipliers (f32), one pointer
    /// for all.
    pub(super) epi: Option<Vec<Line>>,
    /// The activation zero point (the padding value).
    pub(super) za: u8,
    /// Horizontal stride and left padding (the column kernel's).
    pub(super) sx: usize,
    pub(super) px: usize,
    pub(super) zero_point: i32,
    pub(super) lo: i32,
    pub(super) hi: i32,
}

impl<'a> RowKernel512<'a> {
    /// The kernel for `w` (symmetric weights) with activation zero point `za`, pairs
    /// saturated as fbgemm's if `saturate` (and some pair can saturate), or `None` when
    /// the CPU lacks the `Avx512Vnni` level, the weights are asymmetric or the stage is not
    /// a requantization.
    pub(crate) fn new(
        g: &ConvGeometry,
        w: &'a DepthwiseWeights,
        za: i32,
        stage: &Stage,
        saturate: bool,
    ) -> Option<Self> {
        let Stage::Requant(r) = stage else {
            return None;
        };
        let product = Self::product(g, w, saturate)?;
        let saturate = product == Product::Pairs;
        let o = g.out_channels;
        let taps = g.taps();
        let mut blocks = blocks(o);
        for b in &mut blocks {
            // (the column product shares columns between pixels, one pixel per vector)
            b.paired = b.width == 32 && b.n <= 16 && product != Product::Cols;
        }
        let padded = blocks.last().map_or(0, |b| b.c0 + b.width);
        // the weight vectors, built on the first call for this product and kept with the
        // packed weights
        let wv = w.layouts.0[product as usize]
            .get_or_init(|| weight_layout(&w.w, o, taps, product, &blocks));
        // per-channel vectors: entry c0 + j·(width/4) + i of a block is the channel
        // acc_channel(j, i) of accumulator j (zero for channels ≥ O)
        let mut init = vec![0i32; padded];
        let (mut mult, mut bias_a, mut bias_b) =
            (vec![0f32; padded], vec![0f32; padded], vec![0f32; padded]);
        for b in &blocks {
            let q = b.width / 4;
            for j in 0..4 {
                for i in 0..q {
                    let c = b.c0 + acc_channel(j, i);
                    if c < o {
                        let at = b.c0 + j * q + i;
                        init[at] = w.col_offsets[c].wrapping_mul(za).wrapping_neg();
                        mult[at] = r.mult[c];
                        bias_a[at] = r.bias_a[c];
                        bias_b[at] = r.bias_b[c];
                    }
                }
            }
            if b.paired {
                // lane 1 (the second pixel) takes lane 0's channels
                for j in 0..4 {
                    let at = b.c0 + j * 8;
                    init.copy_within(at..at + 4, at + 4);
                    for v in [&mut mult, &mut bias_a, &mut bias_b] {
                        v.copy_within(at..at + 4, at + 4);
                    }
                }
            }
        }
        // a 4×4 byte transpose in each lane: byte 4e + j takes byte 4j + e, so dword e
        // holds the channels of dword e of the four accumulators
        let lone_ctl = std::array::from_fn(|i| (4 * (i % 4) + (i % 16) / 4) as i8);
        let bias_ab = (0..o)
            .all(|c| {
                let p = f64::from(r.bias_a[c]) * f64::from(r.bias_b[c]);
                f64::from(p as f32) == p
            })
            .then(|| {
                bias_a
                    .iter()
                    .zip(&bias_b)
                    .map(|(a, b)| a * b)
                    .collect::<Vec<f32>>()
            });
        let epi = bias_ab
            .as_ref()
            .filter(|_| saturate && taps == 9)
            .map(|ab| {
                let mut e = vec![0u32; 3 * padded];
                for b in &blocks {
                    let (c, n) = (b.c0, b.width);
                    for i in 0..n {
                        e[3 * c + i] = init[c + i] as u32;
                        e[3 * c + n + i] = ab[c + i].to_bits();
                        e[3 * c + 2 * n + i] = mult[c + i].to_bits();
                    }
                }
                e.chunks_exact(16)
                    .map(|c| Line(c.try_into().expect("16 words")))
                    .collect()
            });
        Some(RowKernel512 {
            o,
            taps,
            product,
            blocks,
            w: wv,
            lone_ctl,
            init,
            mult,
            bias_a,
            bias_b,
            bias_ab,
            epi,
            za: za as u8,
            sx: g.stride[2],
            px: g.padding[2],
            zero_point: r.zero_point,
            lo: r.lo,
            hi: r.hi,
        })
    }

    /// Runs block `blk` of width `L::W` (`FULL`: all its channels are real) on the
    /// instantiation for the tap count and product.
    ///
    /// # Safety
    /// [`row_block`]'s contract.
    #[inline(always)]
    unsafe fn dispatch<L: Lanes, const FULL: bool>(
        &self,
        blk: &Block,
        taps: &RowTaps,
        out: &mut [u8],
    ) {
        // SAFETY: forwarded contract.
        unsafe {
            // (`CLAMP`: the output bounds are not 0..=255; the generic tap count always
            // clamps, a no-op for those bounds)
            macro_rules! go {
                ($add:expr, $c:expr) => {
                    match (self.taps, self.product == Product::Pairs) {
                        (9, true) => row_block::<L, 9, true, FULL, $add, $c>(self, blk, taps, out),
                        (9, false) => {
                            row_block::<L, 9, false, FULL, $add, $c>(self, blk, taps, out)
                        }
                        (25, true) => {
                            row_block::<L, 25, true, FULL, $add, $c>(self, blk, taps, out)
                        }
                        (25, false) => {
                            row_block::<L, 25, false, FULL, $add, $c>(self, blk, taps, out)
                        }
                        (_, true) => {
                            row_block::<L, 0, true, FULL, $add, true>(self, blk, taps, out)
                        }
                        (_, false) => {
                            row_block::<L, 0, false, FULL, $add, true>(self, blk, taps, out)
                        }
                    }
                };
            }
            match (self.bias_ab.is_some(), self.lo == 0 && self.hi == 255) {
                (true, true) => go!(true, false),
                (true, false) => go!(true, true),
                (false, true) => go!(false, false),
                (false, false) => go!(false, true),
            }
        }
    }

    /// Weight vectors per block: pair-saturating, two per tap pair; exact, four per two
    /// pairs; plus four for an odd last tap; columns, four per kernel column.
    pub(super) fn units(taps: usize, product: Product) -> usize {
        let pairs = taps / 2;
        let lone = 4 * (taps % 2);
        match product {
            Product::Pairs => 2 * pairs + lone,
            Product::Exact => 4 * pairs.div_ceil(2) + lone,
            Product::Cols => 12,
        }
    }

    /// Whether the kernel runs `w` on this CPU (the Avx512Vnni level, symmetric weights),
    /// given a requantizing stage, and if so with which product: pair-saturating when
    /// `saturate` asks for fbgemm's pair saturation and some weight pair can saturate, else
    /// the column product on 2-d 3×3 windows without dilation at stride 1 or 2 along x,
    /// else the exact one.
    pub(crate) fn product(
        g: &ConvGeometry,
        w: &DepthwiseWeights,
        saturate: bool,
    ) -> Option<Product> {
        (Isa::Avx512Vnni.is_supported() && w.zero_points.iter().all(|&z| z == 0)).then(|| {
            if saturate && pairs_can_saturate(&w.w, g.taps(), g.out_channels) {
                Product::Pairs
            } else if g.kernel == [1, 3, 3]
                && g.dilation[1..] == [1, 1]
                && matches!(g.stride[2], 1 | 2)
            {
                Product::Cols
            } else {
                Product::Exact
            }
        })
    }

    /// The name of a product: `"avx512-pairs"` (fbgemm's pair saturation),
    /// `"avx512-cols"` or `"avx512-exact"`.
    pub(crate) fn product_name(product: Product) -> &'static str {
        match product {
            Product::Pairs => "avx512-pairs",
            Product::Exact => "avx512-exact",
            Product::Cols => "avx512-cols",
        }
    }

    /// Computes one output row (`ow·O` bytes of `out`) from the tap pointers `taps` filled
    /// for it.
    pub(crate) fn row(&self, taps: &RowTaps, out: &mut [u8]) {
        let o = self.o;
        let nt = self.taps + self.taps % 2;
        let ow = out.len() / o;
        let (a, b) = taps.interior;
        assert!(out.len().is_multiple_of(o) && taps.tab.len() >= ow * nt);
        assert!(taps.bases.len() == nt && a <= b && b <= ow && taps.o == o);
        let padded = self.blocks.last().map_or(0, |b| b.c0 + b.width);
        let units = Self::units(self.taps, self.product);
        assert!(self.w.len() == padded * units && self.init.len() == padded);
        assert!(
            [&self.mult, &self.bias_a, &self.bias_b]
                .into_iter()
                .chain(&self.bias_ab)
                .all(|v| v.len() == padded)
        );
        if self.product == Product::Cols {
            assert!(taps.line_ptrs.len() == 3);
            for blk in &self.blocks {
                // SAFETY: as below; `RowTaps::fill` derives each line pointer from a slice
                // of iw·O readable bytes (step O) or O readable bytes (step 0).
                unsafe { super::depthwise_cols::row_block(self, blk, taps, out) }
            }
            return;
        }
        for blk in &self.blocks {
            // SAFETY: `new` checked the Avx512Vnni level (AVX-512 F/BW/VL + VNNI); the
            // lengths are asserted above and every block lies inside them; `RowTaps::fill`
            // (the only code that sets its pointers) derives each from a slice with O
            // readable bytes for every pixel it serves, and a block reads channels
            // c0..c0 + n ≤ O of them.
            unsafe {
                match (blk.width, blk.paired, blk.n) {
                    (64, _, 64) => self.dispatch::<Zmm, true>(blk, taps, out),
                    (64, _, _) => self.dispatch::<Zmm, false>(blk, taps, out),
                    (_, true, 16) => self.dispatch::<Ymm2, true>(blk, taps, out),
                    (_, true, _) => self.dispatch::<Ymm2, false>(blk, taps, out),
                    (_, false, 32) => self.dispatch::<Ymm, true>(blk, taps, out),
                    (_, false, _) => self.dispatch::<Ymm, false>(blk, taps, out),
                }
            }
        }
    }
}

/// A block's loop constants: its weight vectors (the first [`MAX_REGS`] held in registers
/// when the tap count is a constant), the odd tap's controls, the accumulators' start, the
/// per-channel epilogue vectors, the channel mask and the epilogue's splats.
struct Regs<L: Lanes> {
    w: [L::V; MAX_REGS],
    /// The weights in memory (`units` vectors of `L::W` bytes).
    wmem: *const i8,
    lone_ctl: L::V,
    /// The accumulators' start (4 vectors of `L::W / 4`) in registers, unless `init_each`.
    init: [L::V; 4],
    /// The same in memory.
    init_p: *const i32,
    /// Whether each pixel loads `init_p` afresh: when the weights take most registers (the
    /// 5×5 kernel's 28 units; on 1,240,28 103 → 98 µs with full-range weights and 105 →
    /// 95 µs exact; with 3×3's 12 it was slower, 88 → 94 µs on 1,144,56).
    init_each: bool,
    bias_a: *const f32,
    bias_b: *const f32,
    /// The folded bias (`bias_b` when there is none).
    bias_ab: *const f32,
    mult: *const f32,
    mask: u64,
    ones: L::V,
    zp: L::V,
    lo: L::V,
    hi: L::V,
}

impl<L: Lanes> Regs<L> {
    /// The accumulators' start: `init`, or with `init_each` loaded afresh (not held in
    /// registers across pixels).
    ///
    /// # Safety
    /// AVX-512 F/BW/VL + VNNI available; `init_p` addresses the block's 4·`L::W / 4` values.
    #[inline(always)]
    unsafe fn start(&self) -> [L::V; 4] {
        if !self.init_each {
            return self.init;
        }
        // SAFETY: the caller's contract.
        unsafe { std::array::from_fn(|j| L::load_i32_each(self.init_p.add(j * (L::W / 4)))) }
    }
}

/// One block of one row: border pixels through the table, interior pixels from the bases.
/// `T > 0` fixes the tap count (3×3, 5×5) so the tap loops unroll and the weights stay in
/// registers; `T = 0` reads it from `k`. `ADD`: the requantization adds the folded bias
/// (`k.bias_ab` exists). `CLAMP`: the output bounds are not `0..=255`.
///
/// # Safety
/// AVX-512 F/BW/VL + VNNI available; the lengths and pointers of [`RowKernel512::row`]'s
/// contract; `blk` is one of `k`'s blocks and its width is `L::W`.
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn row_block<
    L: Lanes,
    const T: usize,
    const SAT: bool,
    const FULL: bool,
    const ADD: bool,
    const CLAMP: bool,
>(
    k: &RowKernel512,
    blk: &Block,
    taps: &RowTaps,
    out: &mut [u8],
) {
    let t = if T > 0 { T } else { k.taps };
    let units = RowKernel512::units(t, if SAT { Product::Pairs } else { Product::Exact });
    let nt = t + t % 2;
    let ow = out.len() / k.o;
    let (a, b) = taps.interior;
    let tab = taps.tab.as_ptr();
    let bases = taps.bases.as_ptr();
    let q = L::W / 4;
    // SAFETY: the block's `units` weight vectors of `L::W` bytes start at c0·units (the
    // layout `new` built, length asserted by `row`); the control rows hold 64 ≥ `L::W`
    // bytes; the per-channel vectors hold c0 + `L::W` entries; border pixels x < a or
    // x ≥ b have nt table entries at x·nt, interior pixels read base + (x − a)·step inside
    // the run `fill` sliced; out holds ow·O bytes and the block's channels are < O.
    unsafe {
        let wmem = k.w.as_ptr().add(blk.c0 * units);
        let mut w = [L::zero(); MAX_REGS];
        if T > 0 {
            for (u, v) in w.iter_mut().enumerate().take(units.min(MAX_REGS)) {
                *v = L::load(wmem.add(u * L::W).cast());
            }
        }
        let c0 = blk.c0;
        let init = k.init.as_ptr().add(c0);
        let r = Regs::<L> {
            w,
            wmem,
            lone_ctl: L::load(k.lone_ctl.as_ptr().cast()),
            init: std::array::from_fn(|j| L::load_i32(init.add(j * q))),
            init_p: init,
            init_each: T > 0 && units >= 24,
            bias_a: k.bias_a.as_ptr().add(c0),
            bias_b: k.bias_b.as_ptr().add(c0),
            bias_ab: k.bias_ab.as_ref().unwrap_or(&k.bias_b).as_ptr().add(c0),
            mult: k.mult.as_ptr().add(c0),
            mask: u64::MAX >> (64 - blk.n),
            ones: L::splat16(1),
            zp: L::splat16(k.zero_point as i16),
            lo: L::splat8(k.lo as u8 as i8),
            hi: L::splat8(k.hi as u8 as i8),
        };
        let steps = steps(t);
        let base = out.as_mut_ptr();
        let dst = |x: usize| base.add(x * k.o + c0);
        // A vector holds `L::PX` pixels (x, x + 1, …): their taps are `step` bytes apart in
        // the interior and their outputs O bytes apart. A single pixel (a border one, or
        // the interior's last when its count is odd) fills every lane (delta 0) and stores
        // the same bytes from each.
        let step = taps.step;
        let single = |x: usize, ptrs: *const *const u8, off: usize| {
            let mut acc = r.start();
            steps_loop!(T > 0, steps, s => {
                acc_step::<L, T, SAT, FULL>(k, &r, c0, ptrs, off, 0, s, &mut acc);
            });
            let qv: [L::V; 4] = std::array::from_fn(|j| requant::<L, ADD>(&r, acc[j], j));
            store::<L, FULL, CLAMP>(&r, qv, dst(x), 0);
        };
        for x in (0..a).chain(b..ow) {
            single(x, tab.add(x * nt), 0);
        }
        let vecs = (b - a) / L::PX;
        // whole zmm blocks of the pair-saturating 3×3 product with the folded bias at
        // stride 1 or 2, and whole 16-channel tails (pixel pairs, two per ymm): the `asm!`
        // interior loops (the same operations in fixed registers; one asm call per border
        // pixel instead of `single` was slower, 86 → 94 µs on 1,144,56)
        let asm9 = T == 9 && SAT && FULL && ADD && k.epi.is_some();
        if vecs > 0 && asm9 && L::PX == 2 {
            pairs9::interior_pairs::<CLAMP>(k, c0, &taps.bases, step, vecs, dst(a));
        } else if vecs > 0 && asm9 && L::W == 64 && k.sx == 1 {
            pairs9::interior::<1, CLAMP>(k, c0, &taps.bases, vecs, dst(a));
        } else if vecs > 0 && asm9 && L::W == 64 && k.sx == 2 {
            pairs9::interior::<2, CLAMP>(k, c0, &taps.bases, vecs, dst(a));
        } else if vecs > 0 {
            // Software-pipelined: the epilogue of vector v − 1 is interleaved with the
            // accumulation of vector v, so the scheduler always holds ready work (a pixel's
            // chain from the tap loads to the store is ~50 cycles; in sequence the vector
            // scheduler fills with its waiting epilogue).
            // Vector v − 1's four requantizations spread over the steps but the last
            // (with an odd tap count, its short one): 4·s / spread ≤ j < 4·(s + 1) / spread
            // (3×3: two at steps 0 and 1; at steps 0, 1, 2 before, 1,32,112 took 7 % more)
            let spread = (steps - 1).max(1);
            let (px, o) = (L::PX, k.o);
            let mut prev = r.start();
            steps_loop!(T > 0, steps, s => {
                acc_step::<L, T, SAT, FULL>(k, &r, c0, bases, 0, step, s, &mut prev);
            });
            for v in 1..vecs {
                let mut acc = r.start();
                let mut qv = [L::zero(); 4];
                let off = v * px * step;
                steps_loop!(T > 0, steps, s => {
                    acc_step::<L, T, SAT, FULL>(k, &r, c0, bases, off, step, s, &mut acc);
                    for (j, q) in qv.iter_mut().enumerate() {
                        if (4 * s / spread..4 * (s + 1) / spread).contains(&j) {
                            *q = requant::<L, ADD>(&r, prev[j], j);
                        }
                    }
                });
                store::<L, FULL, CLAMP>(&r, qv, dst(a + (v - 1) * px), o);
                prev = acc;
            }
            let qv: [L::V; 4] = std::array::from_fn(|j| requant::<L, ADD>(&r, prev[j], j));
            store::<L, FULL, CLAMP>(&r, qv, dst(a + (vecs - 1) * px), o);
        }
        for x in a + vecs * L::PX..b {
            single(x, bases, (x - a) * step);
        }
    }
}

/// Accumulation steps of one pixel: one per two tap pairs, one for an odd last tap.
#[inline(always)]
fn steps(taps: usize) -> usize {
    (taps / 2).div_ceil(2) + taps % 2
}

/// Step `s` of the accumulation of one vector's pixels ([`steps`]): tap pairs `2s` and
/// `2s + 1` (the second may be missing), or the odd last tap; tap i of the vector's pixel
/// k is at `ptrs[i] + off + k·delta`.
///
/// # Safety
/// AVX-512 F/BW/VL + VNNI available; every `ptrs[i] + off + k·delta` (k < `L::PX`)
/// addresses O readable bytes, of which the block reads `c0..c0 + n`; the weights of `r`
/// are the block's.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn acc_step<L: Lanes, const T: usize, const SAT: bool, const FULL: bool>(
    k: &RowKernel512,
    r: &Regs<L>,
    c0: usize,
    ptrs: *const *const u8,
    off: usize,
    delta: usize,
    s: usize,
    acc: &mut [L::V; 4],
) {
    let t = if T > 0 { T } else { k.taps };
    let pairs = t / 2;
    // SAFETY: tap loads read the block's n ≤ O − c0 bytes at offset c0 of a tap (O readable
    // bytes); weight vector u < units lies in the block's weights.
    unsafe {
        let wv = |u: usize| -> L::V {
            if T > 0 && u < MAX_REGS {
                r.w[u]
            } else {
                L::load(r.wmem.add(u * L::W).cast())
            }
        };
        let tap = |i: usize| {
            let p = (*ptrs.add(i)).add(off + c0);
            if FULL {
                L::load_px(p, delta)
            } else {
                L::load_mask_px(p, delta, r.mask)
            }
        };
        let p = 2 * s;
        if p < pairs {
            // pairs p and p + 1 (or a zero pair); their weights start at unit 2p in both
            // layouts (two units per pair, or four per two pairs)
            let two = p + 1 < pairs;
            let u = 2 * p;
            let (a0, a1) = (tap(2 * p), tap(2 * p + 1));
            let (b0, b1) = if two {
                (tap(2 * p + 2), tap(2 * p + 3))
            } else {
                (L::zero(), L::zero())
            };
            let (alo, ahi) = (L::unpacklo8(a0, a1), L::unpackhi8(a0, a1));
            let (blo, bhi) = (L::unpacklo8(b0, b1), L::unpackhi8(b0, b1));
            if SAT {
                let sa = (L::maddubs(alo, wv(u)), L::maddubs(ahi, wv(u + 1)));
                let sb = if two {
                    (L::maddubs(blo, wv(u + 2)), L::maddubs(bhi, wv(u + 3)))
                } else {
                    (L::zero(), L::zero())
                };
                acc[0] = L::dpwssd(acc[0], L::unpacklo16(sa.0, sb.0), r.ones);
                acc[1] = L::dpwssd(acc[1], L::unpackhi16(sa.0, sb.0), r.ones);
                acc[2] = L::dpwssd(acc[2], L::unpacklo16(sa.1, sb.1), r.ones);
                acc[3] = L::dpwssd(acc[3], L::unpackhi16(sa.1, sb.1), r.ones);
            } else {
                acc[0] = L::dpbusd(acc[0], L::unpacklo16(alo, blo), wv(u));
                acc[1] = L::dpbusd(acc[1], L::unpackhi16(alo, blo), wv(u + 1));
                acc[2] = L::dpbusd(acc[2], L::unpacklo16(ahi, bhi), wv(u + 2));
                acc[3] = L::dpbusd(acc[3], L::unpackhi16(ahi, bhi), wv(u + 3));
            }
        } else {
            // the odd last tap, after all pairs' weight vectors
            let u = RowKernel512::units(t, if SAT { Product::Pairs } else { Product::Exact }) - 4;
            let y = L::shuffle8(tap(t - 1), r.lone_ctl);
            for (j, a) in acc.iter_mut().enumerate() {
                *a = L::dpbusd(*a, y, wv(u + j));
            }
        }
    }
}

/// Requantized accumulator vector `j` of the block:
/// `cvt_rne(fma(bias_a, bias_b, f32(acc))·mult)`, or with `ADD` the same as
/// `cvt_rne((f32(acc) + bias_ab)·mult)`.
///
/// # Safety
/// AVX-512 F/BW/VL + VNNI available; the per-channel pointers of `r` cover the block.
#[inline(always)]
unsafe fn requant<L: Lanes, const ADD: bool>(r: &Regs<L>, acc: L::V, j: usize) -> L::V {
    let q = L::W / 4;
    // SAFETY: vector j's W/4 entries lie inside the block's per-channel vectors.
    unsafe {
        if ADD {
            L::requant_add(acc, r.bias_ab.add(j * q), r.mult.add(j * q))
        } else {
            L::requant(
                acc,
                r.bias_a.add(j * q),
                r.bias_b.add(j * q),
                r.mult.add(j * q),
            )
        }
    }
}

/// Packs the four requantized vectors to bytes in channel order and stores the block's
/// channels of the vector's pixel k at `dst + k·delta` ([`pack_store`] with the block's
/// constants; the clamp to `lo..=hi` only with `CLAMP`, when the bounds are not `0..=255`).
///
/// # Safety
/// [`pack_store`]'s contract, with the mask of `r`.
#[inline(always)]
unsafe fn store<L: Lanes, const FULL: bool, const CLAMP: bool>(
    r: &Regs<L>,
    qv: [L::V; 4],
    dst: *mut u8,
    delta: usize,
) {
    // SAFETY: the caller's contract.
    unsafe { pack_store::<L, FULL, CLAMP>(qv, r.zp, r.lo, r.hi, r.mask, dst, delta) }
}

/// Packs the four requantized vectors to bytes in channel order and stores the block's
/// channels at `dst`: the i16 packs saturate (|q| ≥ 2¹⁵ stays beyond [0, 255] after adding
/// zp ∈ 0..=255 with i16 saturation), the u8 pack clamps to [0, 255], then [lo, hi] ⊂
/// [0, 255] (skipped unless `CLAMP`, for callers whose bounds are 0 and 255): the scalar
/// `clamp(q + zp, lo, hi)` of [`crate::gemm::requantize_one`]. `zp` holds the output zero
/// point as i16, `lo` and `hi` the bounds as bytes. Pixel k of the vector goes to
/// `dst + k·delta` (`L::PX` pixels).
///
/// # Safety
/// AVX-512 F/BW/VL + VNNI available; each pixel's `dst + k·delta` addresses the `mask`'s
/// bytes writable (all `L::W / L::PX` of them when `FULL`).
#[inline(always)]
pub(super) unsafe fn pack_store<L: Lanes, const FULL: bool, const CLAMP: bool>(
    qv: [L::V; 4],
    zp: L::V,
    lo: L::V,
    hi: L::V,
    mask: u64,
    dst: *mut u8,
    delta: usize,
) {
    // SAFETY: the caller's contract; a partial block stores only its masked bytes.
    unsafe {
        let w01 = L::adds16(L::packs32(qv[0], qv[1]), zp);
        let w23 = L::adds16(L::packs32(qv[2], qv[3]), zp);
        let mut v = L::packus16(w01, w23);
        if CLAMP {
            v = L::clamp8(v, lo, hi);
        }
        if FULL {
            L::store_px(dst, delta, v)
        } else {
            L::store_mask_px(dst, delta, v, mask)
        }
    }
}
