//! The AVX2 + FMA tile: `R ≤ 6` output channels × `V ≤ 2` vectors of 8 outputs in `R·V`
//! accumulators; per `k`, `V` loads from the panel row `k`, one broadcast weight per row,
//! `R·V` fused multiply-adds. One FMA per output per `k`, in increasing `k`: the scalar
//! tile's chain exactly.

use std::arch::x86_64::*;

use super::{LANES, MR, NC};

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
    /// Panics if `rows` is not in `1..=6`, `vectors` not in `1..=2`, `panel` shorter than
    /// `k · 16` or `w` shorter than `k · rows`.
    pub(super) fn tile(
        &self,
        panel: &[f32],
        k: usize,
        w: &[f32],
        rows: usize,
        vectors: usize,
        acc: &mut [f32; MR * NC],
    ) {
        assert!((1..=MR).contains(&rows), "tile rows {rows}");
        assert!((1..=2).contains(&vectors), "tile vectors {vectors}");
        assert!(
            k.checked_mul(NC).is_some_and(|n| n <= panel.len())
                && k.checked_mul(rows).is_some_and(|n| n <= w.len()),
            "panel or weights too short for k = {k}"
        );
        let f = TABLE[vectors - 1][rows - 1];
        // SAFETY: `self` exists only after `new` detected AVX2 and FMA; the asserts above are
        // the extents `tile_rv` reads (`k` panel rows of 16 f32, `k · rows` weights) and `acc`
        // holds its `rows · 16` writes.
        unsafe { f(panel.as_ptr(), k, w.as_ptr(), acc.as_mut_ptr()) }
    }
}

type TileFn = unsafe fn(*const f32, usize, *const f32, *mut f32);

const TABLE: [[TileFn; MR]; 2] = [
    [
        tile_rv::<1, 1>,
        tile_rv::<2, 1>,
        tile_rv::<3, 1>,
        tile_rv::<4, 1>,
        tile_rv::<5, 1>,
        tile_rv::<6, 1>,
    ],
    [
        tile_rv::<1, 2>,
        tile_rv::<2, 2>,
        tile_rv::<3, 2>,
        tile_rv::<4, 2>,
        tile_rv::<5, 2>,
        tile_rv::<6, 2>,
    ],
];

/// One `R × 8V` tile over `k` panel rows.
///
/// # Safety
/// AVX2 and FMA available; `panel` points at `k · 16` f32, `w` at `k · R` f32, `acc` at
/// `R · 16` writable f32.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_rv<const R: usize, const V: usize>(
    panel: *const f32,
    k: usize,
    w: *const f32,
    acc: *mut f32,
) {
    let mut c = [[_mm256_setzero_ps(); V]; R];
    // SAFETY: every offset stays inside the extents of the function's contract.
    unsafe {
        for kk in 0..k {
            let p = panel.add(kk * NC);
            let mut b = [_mm256_setzero_ps(); V];
            for (v, bv) in b.iter_mut().enumerate() {
                *bv = _mm256_loadu_ps(p.add(v * LANES));
            }
            let wk = w.add(kk * R);
            for (r, cr) in c.iter_mut().enumerate() {
                let a = _mm256_broadcast_ss(&*wk.add(r));
                for (cv, bv) in cr.iter_mut().zip(&b) {
                    *cv = _mm256_fmadd_ps(a, *bv, *cv);
                }
            }
        }
        for (r, cr) in c.iter().enumerate() {
            for (v, cv) in cr.iter().enumerate() {
                _mm256_storeu_ps(acc.add(r * NC + v * LANES), *cv);
            }
        }
    }
}
