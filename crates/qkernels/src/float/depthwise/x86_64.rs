//! The AVX2 + FMA row kernel: 8 outputs per vector, up to 4 vectors (32 outputs) per pass
//! over the taps so that 4 independent FMA chains hide the FMA latency; per tap one broadcast
//! weight and one unaligned load per vector. Each output's chain is the oracle's.

use std::arch::x86_64::*;

use super::LANES;

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

    /// As the scalar row: `out[o] = bias`, then per tap `t`
    /// `out[o] = fma(w[t], src[offs[t] + o], out[o])`, for every `o` of `out`.
    ///
    /// Panics if `out.len()` is not a multiple of 8, `w` is shorter than `offs`, or a tap's
    /// run `offs[t]..offs[t] + out.len()` is outside `src`.
    pub(super) fn row(&self, src: &[f32], offs: &[usize], w: &[f32], bias: f32, out: &mut [f32]) {
        let len = out.len();
        assert!(len.is_multiple_of(LANES), "row of {len} outputs");
        assert!(
            w.len() >= offs.len(),
            "{} weights for {} taps",
            w.len(),
            offs.len()
        );
        assert!(
            offs.iter()
                .all(|&o| o.checked_add(len).is_some_and(|end| end <= src.len())),
            "a tap's run is outside the source"
        );
        // SAFETY: `self` exists only after `new` detected AVX2 and FMA; the asserts above are
        // the extents `row_impl` reads (`len` f32 from `src` at every offset, one weight per
        // tap) and writes (`len` f32 of `out`, a multiple of 8).
        unsafe { row_impl(src.as_ptr(), offs, w.as_ptr(), bias, out.as_mut_ptr(), len) }
    }
}

/// # Safety
/// AVX2 and FMA available; `src + offs[t] .. + len` readable for every tap `t`, `w` points
/// at `offs.len()` f32, `out` at `len` writable f32, `len` a multiple of 8.
#[target_feature(enable = "avx2,fma")]
unsafe fn row_impl(
    src: *const f32,
    offs: &[usize],
    w: *const f32,
    bias: f32,
    out: *mut f32,
    len: usize,
) {
    let mut o = 0;
    // SAFETY: each call covers outputs `o .. o + V·8 ≤ len`, within the contract's extents.
    unsafe {
        while o + 4 * LANES <= len {
            block::<4>(src, offs, w, bias, out, o);
            o += 4 * LANES;
        }
        if o + 2 * LANES <= len {
            block::<2>(src, offs, w, bias, out, o);
            o += 2 * LANES;
        }
        if o + LANES <= len {
            block::<1>(src, offs, w, bias, out, o);
        }
    }
}

/// Outputs `o .. o + V·8` of the row.
///
/// # Safety
/// As [`row_impl`], with `o + V·8 ≤ len`.
#[target_feature(enable = "avx2,fma")]
unsafe fn block<const V: usize>(
    src: *const f32,
    offs: &[usize],
    w: *const f32,
    bias: f32,
    out: *mut f32,
    o: usize,
) {
    let mut acc = [_mm256_set1_ps(bias); V];
    // SAFETY: every read is `src + offs[t] + o + v·8 .. + 8` with `o + V·8 ≤ len`, every
    // write `out + o + v·8 .. + 8`: inside the contract's extents.
    unsafe {
        for (t, &off) in offs.iter().enumerate() {
            let wt = _mm256_set1_ps(*w.add(t));
            let p = src.add(off + o);
            for (v, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(wt, _mm256_loadu_ps(p.add(v * LANES)), *a);
            }
        }
        for (v, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(out.add(o + v * LANES), *a);
        }
    }
}
