//! The AVX-512 tile of [`super::gemm_f32_rows`] and of the Winograd convolution's products
//! (`crate::float`): up to 6 broadcast rows × 4 panels of 16 lanes (24 zmm accumulators). Per k, 4 panel loads and 6 broadcasts feed 24 `vfmadd231ps`
//! (10 loads per 24 zmm FMAs, against 8 per 12 ymm FMAs in the AVX2 tile: Zen 4 splits a zmm
//! FMA into two 256-bit halves, so the FMA rate is the same and the win is the load ratio).
//!
//! On the Intel Xeon of session 20 (Sapphire/Granite Rapids class, two full-rate 512-bit FMA
//! ports, 48 KiB L1d, 2 MiB L2) the same tile keeps the two FMA ports ~85 % busy with its
//! panels in L1 and about as busy streaming them from L2 (24 accumulators are 12 cycles of
//! FMAs per k, well past the 4-cycle latency; 10 loads fit the two load ports in 5). Measured
//! there and dropped: other register shapes (8 × 3, 12 × 2, 14 × 2 — within noise of 6 × 4,
//! which has the fewest loads per FMA of the shapes that fit 32 registers), cutting K into
//! L1-sized pieces with the chains resumed from memory (20–35 % slower: the weight rows then
//! arrive in short runs from L3), software prefetch of the weight rows or of the sums (within
//! noise). What the Intel core needs is the panels on 64-byte boundaries: an unaligned zmm
//! load touches two cache lines, and at one panel line per FMA group that cost 10–15 %
//! (`super::rows` aligns its buffers).
//!
//! Each accumulator is one fused multiply-add chain over k in increasing order, started from
//! zero: the scalar tile's chain exactly (`fma` is symmetric in its factors). The chain's sum
//! is stored into the output tile, or added to it (one f32 addition, the driver's in-order sum
//! of K blocks).

use std::arch::x86_64::*;

use super::NR;

/// Most broadcast rows per tile.
pub(crate) const MR: usize = 6;

/// Most 16-lane panels per tile.
pub(crate) const MP: usize = 4;

/// Proof that the CPU has AVX-512F (and the AVX2, FMA and F16C the family's other tiles
/// need); only [`Avx512::new`] makes one.
pub(crate) struct Avx512 {
    _private: (),
}

/// Where a tile's sums go: `rows` rows of `16·panels` values at stride `ld`.
pub(crate) struct TileOut<'a> {
    /// The output values.
    pub out: &'a mut [f32],
    /// Row stride of `out`.
    pub ld: usize,
    /// Overwrite (`true`, the first K block) or add to the values there.
    pub first: bool,
}

impl Avx512 {
    /// The proof, if the CPU has the features.
    pub(crate) fn new() -> Option<Self> {
        (is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c"))
        .then_some(Self { _private: () })
    }

    /// `out[r·ld + 16p + j] (=|+=) Σ_k fma chain w[r·ldw + k·lkw]·panels[p·lp + k·lk + j]`
    /// for `rows ≤ 6` rows of `w` and `count ≤ 4` panels of 16 lanes: `[kc][16]` blocks `lp`
    /// floats apart with `lk = 16` (the GEMM's packing, `lkw = 1`), or `kc` rows `lk` floats
    /// apart of `16·count` values with `lp = 16` (the Winograd products, whose broadcast rows
    /// may be the columns of a matrix: `ldw = 1`, `lkw` its row stride).
    ///
    /// Panics if `rows` or `count` is out of range or a slice is shorter than the shapes need.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn tile(
        &self,
        w: &[f32],
        [ldw, lkw]: [usize; 2],
        rows: usize,
        panels: &[f32],
        [lp, lk]: [usize; 2],
        count: usize,
        kc: usize,
        dst: TileOut<'_>,
    ) {
        assert!((1..=MR).contains(&rows), "tile rows {rows}");
        assert!((1..=MP).contains(&count), "tile panels {count}");
        assert!(kc >= 1, "k block {kc}");
        assert!(
            w.len() > (rows - 1) * ldw + (kc - 1) * lkw,
            "w too short for the tile"
        );
        assert!(
            panels.len() >= (count - 1) * lp + (kc - 1) * lk + NR,
            "panels too short"
        );
        assert!(
            dst.ld >= count * NR && dst.out.len() >= (rows - 1) * dst.ld + count * NR,
            "output too short for the tile"
        );
        let f = TABLE[rows - 1][count - 1];
        // SAFETY: `self` exists only after `new` detected AVX-512F (the feature the tiles are
        // compiled for); the asserts above are the extents `tile_rp` reads (`rows` rows of
        // `kc` f32, `lkw` apart, at stride `ldw`; for `count` panels `kc` runs of 16 f32, `lk` apart, the
        // panels `lp` apart) and
        // reads and writes (`rows` rows of `16·count` f32 at stride `ld`).
        unsafe {
            f(
                w.as_ptr(),
                [ldw, lkw],
                panels.as_ptr(),
                lp,
                lk,
                kc,
                dst.out.as_mut_ptr(),
                dst.ld,
                dst.first,
            )
        }
    }
}

type TileFn =
    unsafe fn(*const f32, [usize; 2], *const f32, usize, usize, usize, *mut f32, usize, bool);

/// `TABLE[rows - 1][panels - 1]`.
const TABLE: [[TileFn; MP]; MR] = [
    [
        tile_rp::<1, 1>,
        tile_rp::<1, 2>,
        tile_rp::<1, 3>,
        tile_rp::<1, 4>,
    ],
    [
        tile_rp::<2, 1>,
        tile_rp::<2, 2>,
        tile_rp::<2, 3>,
        tile_rp::<2, 4>,
    ],
    [
        tile_rp::<3, 1>,
        tile_rp::<3, 2>,
        tile_rp::<3, 3>,
        tile_rp::<3, 4>,
    ],
    [
        tile_rp::<4, 1>,
        tile_rp::<4, 2>,
        tile_rp::<4, 3>,
        tile_rp::<4, 4>,
    ],
    [
        tile_rp::<5, 1>,
        tile_rp::<5, 2>,
        tile_rp::<5, 3>,
        tile_rp::<5, 4>,
    ],
    [
        tile_rp::<6, 1>,
        tile_rp::<6, 2>,
        tile_rp::<6, 3>,
        tile_rp::<6, 4>,
    ],
];

/// One `R × 16P` tile over `kc` k.
///
/// # Safety
/// AVX-512F available; `w` points at `R` rows (stride `ldw` floats) of `kc` f32 (stride `lkw`
/// floats), `panels` at
/// `P` panels (stride `lp` floats) of `kc` runs of 16 f32 (stride `lk` floats), `out` at `R` rows (stride `ld`) of `16·P`
/// readable and writable f32.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
unsafe fn tile_rp<const R: usize, const P: usize>(
    w: *const f32,
    [ldw, lkw]: [usize; 2],
    panels: *const f32,
    lp: usize,
    lk: usize,
    kc: usize,
    out: *mut f32,
    ld: usize,
    first: bool,
) {
    let mut c = [[_mm512_setzero_ps(); P]; R];
    // SAFETY: every offset stays inside the extents of the function's contract.
    unsafe {
        for k in 0..kc {
            let mut b = [_mm512_setzero_ps(); P];
            for (p, bp) in b.iter_mut().enumerate() {
                *bp = _mm512_loadu_ps(panels.add(p * lp + k * lk));
            }
            for (r, cr) in c.iter_mut().enumerate() {
                let a = _mm512_set1_ps(*w.add(r * ldw + k * lkw));
                for (cp, &bp) in cr.iter_mut().zip(&b) {
                    *cp = _mm512_fmadd_ps(a, bp, *cp);
                }
            }
        }
        for (r, cr) in c.iter().enumerate() {
            for (p, &cp) in cr.iter().enumerate() {
                let o = out.add(r * ld + p * NR);
                let v = if first {
                    cp
                } else {
                    _mm512_add_ps(_mm512_loadu_ps(o), cp)
                };
                _mm512_storeu_ps(o, v);
            }
        }
    }
}
