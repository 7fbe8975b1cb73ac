//! The AVX2 + FMA + F16C fp16 tile: up to 6 rows × 16 columns of f32 accumulators (12 ymm);
//! per k, two `vcvtph2ps` widen the panel's 16 f16 weights and each row's `x` broadcasts into
//! two `vfmadd231ps`. One fused multiply-add per output per k, in increasing k: the scalar
//! tile's chain exactly.

use std::arch::x86_64::*;

use half::f16;

use super::NR;

/// Most rows one tile keeps in registers.
pub(super) const MR: usize = 6;

/// Proof that the CPU has AVX2, FMA and F16C; only [`Avx2F16c::new`] makes one.
pub(super) struct Avx2F16c {
    _private: (),
}

impl Avx2F16c {
    /// The proof, if the CPU has the features.
    pub(super) fn new() -> Option<Self> {
        (is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c"))
        .then_some(Self { _private: () })
    }

    /// As the scalar tile: `acc[r·16 + j]` = the FMA chain over `kc` k of row `r`'s `x` and
    /// column `j` of the panel block `w` (`[kc][16]`), for `rows ≤ 6` rows, overwriting.
    ///
    /// Panics if `rows` is not in `1..=6` or a slice is shorter than the shapes need.
    pub(super) fn tile(
        &self,
        x: &[f32],
        ldx: usize,
        rows: usize,
        w: &[f16],
        kc: usize,
        acc: &mut [f32],
    ) {
        assert!((1..=MR).contains(&rows), "tile rows {rows}");
        assert!(kc >= 1 && ldx >= kc, "k block {kc}, stride {ldx}");
        assert!(x.len() >= (rows - 1) * ldx + kc, "x too short for the tile");
        assert!(
            w.len() >= kc * NR && acc.len() >= rows * NR,
            "panel or tile too short"
        );
        let f = TABLE[rows - 1];
        // SAFETY: `self` exists only after `new` detected AVX2, FMA and F16C (the features
        // the tiles are compiled for); the asserts above are the extents `tile_r` reads
        // (`rows` rows of `kc` f32 at stride `ldx`, `kc·16` f16) and writes (`rows·16` f32).
        unsafe { f(x.as_ptr(), ldx, w.as_ptr().cast(), kc, acc.as_mut_ptr()) }
    }
}

impl Avx2F16c {
    /// [`Avx2F16c::tile`] on an f32 panel block (`[kc][16]`), with no widening.
    ///
    /// Panics as [`Avx2F16c::tile`].
    pub(super) fn tile_f32(
        &self,
        x: &[f32],
        ldx: usize,
        rows: usize,
        w: &[f32],
        kc: usize,
        acc: &mut [f32],
    ) {
        assert!((1..=MR).contains(&rows), "tile rows {rows}");
        assert!(kc >= 1 && ldx >= kc, "k block {kc}, stride {ldx}");
        assert!(x.len() >= (rows - 1) * ldx + kc, "x too short for the tile");
        assert!(
            w.len() >= kc * NR && acc.len() >= rows * NR,
            "panel or tile too short"
        );
        let f = TABLE_F32[rows - 1];
        // SAFETY: as in `tile`: the CPU proof is `self`, the asserts are the extents.
        unsafe { f(x.as_ptr(), ldx, w.as_ptr(), kc, acc.as_mut_ptr()) }
    }
}

type TileF32Fn = unsafe fn(*const f32, usize, *const f32, usize, *mut f32);

const TABLE_F32: [TileF32Fn; MR] = [
    tile_f32_r::<1>,
    tile_f32_r::<2>,
    tile_f32_r::<3>,
    tile_f32_r::<4>,
    tile_f32_r::<5>,
    tile_f32_r::<6>,
];

/// [`tile_r`] on f32 weights.
///
/// # Safety
/// As [`tile_r`], with `w` pointing at `kc·16` f32.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_f32_r<const R: usize>(
    x: *const f32,
    ldx: usize,
    w: *const f32,
    kc: usize,
    acc: *mut f32,
) {
    let mut c0 = [_mm256_setzero_ps(); R];
    let mut c1 = [_mm256_setzero_ps(); R];
    // SAFETY: every offset stays inside the extents of the function's contract.
    unsafe {
        for k in 0..kc {
            let wk = w.add(k * NR);
            let b0 = _mm256_loadu_ps(wk);
            let b1 = _mm256_loadu_ps(wk.add(8));
            for r in 0..R {
                let a = _mm256_set1_ps(*x.add(r * ldx + k));
                c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);
                c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);
            }
        }
        for r in 0..R {
            _mm256_storeu_ps(acc.add(r * NR), c0[r]);
            _mm256_storeu_ps(acc.add(r * NR + 8), c1[r]);
        }
    }
}

type TileFn = unsafe fn(*const f32, usize, *const u16, usize, *mut f32);

const TABLE: [TileFn; MR] = [
    tile_r::<1>,
    tile_r::<2>,
    tile_r::<3>,
    tile_r::<4>,
    tile_r::<5>,
    tile_r::<6>,
];

/// One `R × 16` tile over `kc` k.
///
/// # Safety
/// AVX2, FMA and F16C available; `x` points at `R` rows (stride `ldx` floats) of `kc` f32,
/// `w` at `kc·16` f16 bit patterns, `acc` at `R·16` writable f32.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_r<const R: usize>(
    x: *const f32,
    ldx: usize,
    w: *const u16,
    kc: usize,
    acc: *mut f32,
) {
    let mut c0 = [_mm256_setzero_ps(); R];
    let mut c1 = [_mm256_setzero_ps(); R];
    // SAFETY: every offset stays inside the extents of the function's contract.
    unsafe {
        for k in 0..kc {
            let wk = w.add(k * NR);
            let b0 = _mm256_cvtph_ps(_mm_loadu_si128(wk.cast()));
            let b1 = _mm256_cvtph_ps(_mm_loadu_si128(wk.add(8).cast()));
            for r in 0..R {
                let a = _mm256_set1_ps(*x.add(r * ldx + k));
                c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);
                c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);
            }
        }
        for r in 0..R {
            _mm256_storeu_ps(acc.add(r * NR), c0[r]);
            _mm256_storeu_ps(acc.add(r * NR + 8), c1[r]);
        }
    }
}
