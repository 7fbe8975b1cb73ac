//! The AVX-512 tile of the Winograd products: up to 6 weight rows × 4 zmm vectors of 16 tiles
//! (24 accumulators). Per channel `c`, 4 loads from the transformed input row `c` and 6
//! broadcasts from the transformed weight rows feed 24 `vfmadd231ps`. Each accumulator is one
//! fused multiply-add chain over `c` in increasing order from zero: the portable tile's chain.

use std::arch::x86_64::*;

use super::super::MR;

/// Most vectors of 16 tiles per tile call.
pub(super) const MP: usize = 4;

/// Proof that the CPU has AVX-512F; only [`Avx512::new`] makes one.
pub(super) struct Avx512 {
    _private: (),
}

impl Avx512 {
    /// The proof, if the CPU has the feature.
    pub(super) fn new() -> Option<Self> {
        is_x86_feature_detected!("avx512f").then_some(Self { _private: () })
    }

    /// `out[r·ld + v] = fma chain over c < kc of w[r·ldw + c] · src[c·lds + v]` for `rows ≤ 6`
    /// rows and `v < 16·vectors` (`vectors ≤ 4`).
    ///
    /// Panics if a count is out of range or a slice is shorter than the shapes need.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn tile(
        &self,
        w: &[f32],
        ldw: usize,
        rows: usize,
        src: &[f32],
        lds: usize,
        kc: usize,
        vectors: usize,
        out: &mut [f32],
        ld: usize,
    ) {
        assert!((1..=MR).contains(&rows), "tile rows {rows}");
        assert!((1..=MP).contains(&vectors), "tile vectors {vectors}");
        let width = 16 * vectors;
        assert!(
            kc >= 1 && ldw >= kc && lds >= width && ld >= width,
            "strides"
        );
        assert!(w.len() >= (rows - 1) * ldw + kc, "weights too short");
        assert!(src.len() >= (kc - 1) * lds + width, "source too short");
        assert!(out.len() >= (rows - 1) * ld + width, "output too short");
        let f = TABLE[rows - 1][vectors - 1];
        // SAFETY: `self` exists only after `new` detected AVX-512F; the asserts above are the
        // extents `tile_rp` reads (`rows` rows of `kc` weights `ldw` apart, `kc` source rows of
        // `16·vectors` values `lds` apart) and writes (`rows` rows of `16·vectors` `ld` apart).
        unsafe { f(w.as_ptr(), ldw, src.as_ptr(), lds, kc, out.as_mut_ptr(), ld) }
    }
}

type TileFn = unsafe fn(*const f32, usize, *const f32, usize, usize, *mut f32, usize);

/// `TABLE[rows - 1][vectors - 1]`.
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

/// One `R × 16P` tile over `kc` channels.
///
/// # Safety
/// AVX-512F available; `w` points at `R` rows (`ldw` apart) of `kc` f32, `src` at `kc` rows
/// (`lds` apart) of `16P` f32, `out` at `R` rows (`ld` apart) of `16P` writable f32.
#[target_feature(enable = "avx512f")]
unsafe fn tile_rp<const R: usize, const P: usize>(
    w: *const f32,
    ldw: usize,
    src: *const f32,
    lds: usize,
    kc: usize,
    out: *mut f32,
    ld: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); P]; R];
    // SAFETY: every offset stays inside the extents of the function's contract.
    unsafe {
        let wr: [*const f32; R] = std::array::from_fn(|r| w.add(r * ldw));
        for c in 0..kc {
            let row = src.add(c * lds);
            let b: [__m512; P] = std::array::from_fn(|p| _mm512_loadu_ps(row.add(16 * p)));
            for (ar, wp) in acc.iter_mut().zip(&wr) {
                let a = _mm512_set1_ps(*wp.add(c));
                for (av, &bv) in ar.iter_mut().zip(&b) {
                    *av = _mm512_fmadd_ps(a, bv, *av);
                }
            }
        }
        for (r, ar) in acc.iter().enumerate() {
            for (p, &av) in ar.iter().enumerate() {
                _mm512_storeu_ps(out.add(r * ld + 16 * p), av);
            }
        }
    }
}

/// `g[t][l] = src[9l + t]`: the taps of 16 filters, tap-major, by 9 gathers (scalar moves
/// into the array stalled on store forwarding).
///
/// # Safety
/// AVX-512F available.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn gather_taps(src: &[f32; 144], g: &mut [[f32; 16]; 9]) {
    let idx = _mm512_setr_epi32(
        0, 9, 18, 27, 36, 45, 54, 63, 72, 81, 90, 99, 108, 117, 126, 135,
    );
    for (t, gt) in g.iter_mut().enumerate() {
        // SAFETY: the 16 indices `9l + t ≤ 143` stay inside `src`; `gt` holds 16 floats.
        unsafe {
            let v = _mm512_i32gather_ps::<4>(idx, src.as_ptr().add(t));
            _mm512_storeu_ps(gt.as_mut_ptr(), v);
        }
    }
}
