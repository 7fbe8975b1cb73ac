//! The AVX2 + FMA tile: `R ≤ 6` output channels × `V ≤ 2` vectors of 8 outputs in `R·V`
//! accumulators; per `k`, `V` loads from the panel row `k`, one broadcast weight per row (read
//! straight from the `[cout][K]` weight, one sequential stream per row), `R·V` fused
//! multiply-adds. One FMA per output per `k`, in increasing `k`: the scalar tile's chain
//! exactly.

use std::arch::x86_64::*;

use super::{LANES, MR, NC, SourceRows, TileOut};

/// Proof that the CPU has AVX2 and FMA; only [`Avx2Fma::new`] makes one.
pub(super) struct Avx2Fma {
    _private: (),
}

impl Avx2Fma {
    /// The proof, if the CPU has the features.
    pub(super) fn new() -> Option<Self> {
        (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
            .then_some(Self { _private: () })
    }

    /// As the scalar tile, for `rows` rows and `vectors · 8` columns.
    ///
    /// Panics if `rows` is not in `1..=6`, `vectors` not in `1..=2`, a row of `at` runs past
    /// `src`, `kc = at.offsets.len()` exceeds `ldw`, `w` is shorter than
    /// `(rows - 1) · ldw + kc`, `out.ld` is below `vectors · 8` or
    /// `out.sums` is shorter than `(rows - 1) · out.ld + vectors · 8`, or a bias has fewer than
    /// `rows` values.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn tile(
        &self,
        src: &[f32],
        at: SourceRows<'_>,
        w: &[f32],
        ldw: usize,
        rows: usize,
        vectors: usize,
        out: TileOut<'_>,
    ) {
        let kc = at.offsets.len();
        assert!((1..=MR).contains(&rows), "tile rows {rows}");
        assert!((1..=2).contains(&vectors), "tile vectors {vectors}");
        let extent = |ld: usize, len: usize| (rows - 1).checked_mul(ld)?.checked_add(len);
        assert!(
            kc <= ldw
                && at
                    .far
                    .checked_add(vectors * LANES)
                    .is_some_and(|n| n <= src.len())
                && extent(ldw, kc).is_some_and(|n| n <= w.len())
                && out.ld >= vectors * LANES
                && extent(out.ld, vectors * LANES).is_some_and(|n| n <= out.sums.len())
                && out.bias.is_none_or(|b| b.len() >= rows),
            "weights, sums or bias too short for {rows} rows of k = {kc}"
        );
        let f = TABLE[usize::from(!at.dense)][vectors - 1][rows - 1];
        let bias = out.bias.map_or(std::ptr::null(), |b| b.as_ptr());
        // SAFETY: `self` exists only after `new` detected AVX2 and FMA; the asserts above are
        // the extents `tile_rv` reads (`vectors · 8` f32 at each of the `kc` offsets of `at`,
        // every one at most `at.far`, `kc` weights from each of
        // `rows` rows `ldw` apart, `rows` biases when not null) and reads and writes
        // (`vectors · 8` sums of each of `rows` rows `out.ld` apart).
        unsafe {
            f(
                src.as_ptr(),
                at.offsets.as_ptr(),
                kc,
                w.as_ptr(),
                ldw,
                out.sums.as_mut_ptr(),
                out.ld,
                out.carry,
                bias,
            )
        }
    }
}

type TileFn = unsafe fn(
    *const f32,
    *const usize,
    usize,
    *const f32,
    usize,
    *mut f32,
    usize,
    bool,
    *const f32,
);

/// By `[offsets other than kk·16][vectors - 1][rows - 1]`.
const TABLE: [[[TileFn; MR]; 2]; 2] = [
    [
        [
            tile_rv::<1, 1, false>,
            tile_rv::<2, 1, false>,
            tile_rv::<3, 1, false>,
            tile_rv::<4, 1, false>,
            tile_rv::<5, 1, false>,
            tile_rv::<6, 1, false>,
        ],
        [
            tile_rv::<1, 2, false>,
            tile_rv::<2, 2, false>,
            tile_rv::<3, 2, false>,
            tile_rv::<4, 2, false>,
            tile_rv::<5, 2, false>,
            tile_rv::<6, 2, false>,
        ],
    ],
    [
        [
            tile_rv::<1, 1, true>,
            tile_rv::<2, 1, true>,
            tile_rv::<3, 1, true>,
            tile_rv::<4, 1, true>,
            tile_rv::<5, 1, true>,
            tile_rv::<6, 1, true>,
        ],
        [
            tile_rv::<1, 2, true>,
            tile_rv::<2, 2, true>,
            tile_rv::<3, 2, true>,
            tile_rv::<4, 2, true>,
            tile_rv::<5, 2, true>,
            tile_rv::<6, 2, true>,
        ],
    ],
];

/// One `R × 8V` tile over `kc` source rows, from the sums in `acc` when `carry`, else from 0;
/// stores the sums, plus `bias[r]` per row when `bias` is not null.
///
/// # Safety
/// AVX2 and FMA available; `src + offsets[kk]` points at `8V` f32 for every `kk < kc` (and
/// `offsets[kk] = kk·16` unless `SPARSE`), `w` at `R` rows of `kc` f32
/// `ldw` apart, `acc` at `R` rows of `8V` readable and writable f32 `ld` apart, `bias` is
/// null or points at `R` f32.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_rv<const R: usize, const V: usize, const SPARSE: bool>(
    src: *const f32,
    offsets: *const usize,
    kc: usize,
    w: *const f32,
    ldw: usize,
    acc: *mut f32,
    ld: usize,
    carry: bool,
    bias: *const f32,
) {
    // SAFETY: every offset stays inside the extents of the function's contract.
    unsafe {
        let mut c = [[_mm256_setzero_ps(); V]; R];
        if carry {
            for (r, cr) in c.iter_mut().enumerate() {
                for (v, cv) in cr.iter_mut().enumerate() {
                    *cv = _mm256_loadu_ps(acc.add(r * ld + v * LANES));
                }
            }
        }
        let wr: [*const f32; R] = std::array::from_fn(|r| w.add(r * ldw));
        for kk in 0..kc {
            // dense rows (`offsets[kk] = kk·16`) need no offset load
            let p = src.add(if SPARSE { *offsets.add(kk) } else { kk * NC });
            let mut b = [_mm256_setzero_ps(); V];
            for (v, bv) in b.iter_mut().enumerate() {
                *bv = _mm256_loadu_ps(p.add(v * LANES));
            }
            for (cr, wp) in c.iter_mut().zip(&wr) {
                let a = _mm256_broadcast_ss(&*wp.add(kk));
                for (cv, bv) in cr.iter_mut().zip(&b) {
                    *cv = _mm256_fmadd_ps(a, *bv, *cv);
                }
            }
        }
        if !bias.is_null() {
            for (r, cr) in c.iter_mut().enumerate() {
                let b = _mm256_broadcast_ss(&*bias.add(r));
                for cv in cr.iter_mut() {
                    *cv = _mm256_add_ps(*cv, b);
                }
            }
        }
        for (r, cr) in c.iter().enumerate() {
            for (v, cv) in cr.iter().enumerate() {
                _mm256_storeu_ps(acc.add(r * ld + v * LANES), *cv);
            }
        }
    }
}
