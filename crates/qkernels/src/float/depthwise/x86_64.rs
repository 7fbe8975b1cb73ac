//! The AVX2 + FMA row kernel: 8 outputs per vector; up to 3 output rows × 4 vectors (12
//! independent FMA chains, enough to hide the FMA latency) per pass over the taps; per tap one
//! broadcast weight and one unaligned load per vector. Each output's chain is the oracle's.

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use super::{LANES, ROWS, Rows};

/// Proof that the CPU has AVX2 and FMA (and AVX-512F + VL when `vl`); only [`Avx2Fma::new`]
/// makes one.
pub(super) struct Avx2Fma {
    /// AVX-512F and AVX-512VL too: the row-reusing kernel runs where it applies.
    vl: bool,
}

impl Avx2Fma {
    /// The proof, if the CPU has the features (AVX-512F and VL too with `vl`).
    pub(super) fn new(vl: bool) -> Option<Self> {
        let avx512 = || is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl");
        (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && (!vl || avx512()))
            .then_some(Self { vl })
    }

    /// As the scalar rows: for every output `(r, o)` of `g`, `out[r·ldo + o] = bias`, then per
    /// tap `t` `out[r·ldo + o] = fma(w[t], src[base + r·stride + offs[t] + o], out[r·ldo + o])`.
    ///
    /// Panics if `g.len` is not a multiple of 8, `g.ldo < g.len`
    /// with several rows, `w` is shorter than `offs`, a tap's run is outside `src` or a row
    /// outside `out`.
    pub(super) fn rows(
        &self,
        src: &[f32],
        offs: &[usize],
        w: &[f32],
        bias: f32,
        g: Rows,
        out: &mut [MaybeUninit<f32>],
    ) {
        let Some(last) = g.rows.checked_sub(1) else {
            return;
        };
        assert!(g.len.is_multiple_of(LANES), "row of {} outputs", g.len);
        assert!(g.rows == 1 || g.ldo >= g.len, "rows overlap");
        assert!(
            w.len() >= offs.len(),
            "{} weights for {} taps",
            w.len(),
            offs.len()
        );
        let end =
            |start: usize, ld: usize| last.checked_mul(ld)?.checked_add(start)?.checked_add(g.len);
        let far = offs.iter().copied().max().unwrap_or(0);
        assert!(
            g.base
                .checked_add(far)
                .and_then(|s| end(s, g.stride))
                .is_some_and(|e| e <= src.len()),
            "a tap's run is outside the source"
        );
        assert!(
            end(0, g.ldo).is_some_and(|e| e <= out.len()),
            "rows outside the output"
        );
        // SAFETY: `self` exists only after `new` detected AVX2 and FMA; the asserts above are
        // the extents the groups of up to 3 rows read (`len` f32 from `src` at
        // `base + r·stride + offs[t]` for every row and tap, one weight per tap) and write
        // (`len` f32 at `r·ldo` of `out` per row, `len` a multiple of 8).
        unsafe {
            let (src, out) = (src.as_ptr().add(g.base), out.as_mut_ptr().cast::<f32>());
            let mut first = 0;
            if let Some(ru) = g.reuse.filter(|_| self.vl)
                && ru.matches(offs, g.stride)
            {
                first = match (ru.kernel, ru.sh) {
                    ([3, 3], 1) => {
                        reuse::<4, 3, 3, 3, 1>(src, ru.pitch, offs, w.as_ptr(), bias, out, g)
                    }
                    // 5 x 5 (25 weights) and stride 2 measured no faster than the per-tap loop
                    _ => 0,
                };
            }
            for r0 in (first..g.rows).step_by(ROWS) {
                let f = match g.rows - r0 {
                    1 => rows_impl::<1>,
                    2 => rows_impl::<2>,
                    _ => rows_impl::<ROWS>,
                };
                let (s, o) = (src.add(r0 * g.stride), out.add(r0 * g.ldo));
                f(s, g.stride, offs, w.as_ptr(), bias, o, g.ldo, g.len);
            }
        }
    }
}

/// The whole groups of `R` rows of `g` on [`reuse_rows`]; returns the rows done.
///
/// # Safety
/// As [`reuse_rows`] for every row of `g` (`src` already at `g.base`), and `offs` laid out as
/// [`super::Reuse::matches`] checks.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
unsafe fn reuse<
    const R: usize,
    const V: usize,
    const KH: usize,
    const KW: usize,
    const SH: usize,
>(
    src: *const f32,
    pitch: usize,
    offs: &[usize],
    w: *const f32,
    bias: f32,
    out: *mut f32,
    g: Rows,
) -> usize {
    let cols: [usize; KW] = std::array::from_fn(|j| offs[j]);
    let groups = g.rows / R;
    // SAFETY: group `q` covers rows `q·R .. q·R + R ≤ rows`, within the contract.
    unsafe {
        for q in 0..groups {
            reuse_rows::<R, V, KH, KW, SH>(
                src.add(q * R * g.stride),
                pitch,
                &cols,
                w,
                bias,
                out.add(q * R * g.ldo),
                g.ldo,
                g.len,
            );
        }
    }
    groups * R
}

/// # Safety
/// AVX2 and FMA available; `src + r·stride + offs[t] .. + len` readable for every row
/// `r < R` and tap `t`, `w` points at `offs.len()` f32, `out + r·ldo .. + len` writable for
/// every row, `len` a multiple of 8.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_impl<const R: usize>(
    src: *const f32,
    stride: usize,
    offs: &[usize],
    w: *const f32,
    bias: f32,
    out: *mut f32,
    ldo: usize,
    len: usize,
) {
    let mut o = 0;
    // SAFETY: each call covers outputs `o .. o + V·8 ≤ len` of every row, within the
    // contract's extents.
    unsafe {
        while o + 4 * LANES <= len {
            block::<R, 4>(src, stride, offs, w, bias, out, ldo, o);
            o += 4 * LANES;
        }
        match (len - o) / LANES {
            3 => block::<R, 3>(src, stride, offs, w, bias, out, ldo, o),
            2 => block::<R, 2>(src, stride, offs, w, bias, out, ldo, o),
            1 => block::<R, 1>(src, stride, offs, w, bias, out, ldo, o),
            _ => {}
        }
    }
}

/// Outputs `o .. o + V·8` of the `R` rows.
///
/// # Safety
/// As [`rows_impl`], with `o + V·8 ≤ len`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn block<const R: usize, const V: usize>(
    src: *const f32,
    stride: usize,
    offs: &[usize],
    w: *const f32,
    bias: f32,
    out: *mut f32,
    ldo: usize,
    o: usize,
) {
    let mut acc = [[_mm256_set1_ps(bias); V]; R];
    // SAFETY: every read is `src + r·stride + offs[t] + o + v·8 .. + 8` with `o + V·8 ≤ len`,
    // every write `out + r·ldo + o + v·8 .. + 8`: inside the contract's extents.
    unsafe {
        let rows: [*const f32; R] = std::array::from_fn(|r| src.add(r * stride + o));
        for (t, &off) in offs.iter().enumerate() {
            let wt = _mm256_set1_ps(*w.add(t));
            for (ar, &row) in acc.iter_mut().zip(&rows) {
                let p = row.add(off);
                for (v, a) in ar.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(wt, _mm256_loadu_ps(p.add(v * LANES)), *a);
                }
            }
        }
        for (r, ar) in acc.iter().enumerate() {
            for (v, a) in ar.iter().enumerate() {
                _mm256_storeu_ps(out.add(r * ldo + o + v * LANES), *a);
            }
        }
    }
}

/// Row-reusing variant (stride-1 vertical dilation): output row `r` of a group reads padded
/// rows `r·SH .. r·SH + KH`; each input vector is loaded once per `(row, column tap)` and feeds
/// every output row of the group that uses it, with all `KH·KW` weights in registers (32 ymm
/// registers of AVX-512VL). For each output the taps still come in row-major order: rows in
/// increasing order, columns in increasing order within a row.
///
/// # Safety
/// AVX2, FMA, AVX-512F and AVX-512VL available; for every group row `r < R`, tap `(i, j)`:
/// `src + r·SH·pitch + i·pitch + cols[j] .. + len` readable; `w` points at `KH·KW` f32;
/// `out + r·ldo .. + len` writable; `len` a multiple of 8.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
pub(super) unsafe fn reuse_rows<
    const R: usize,
    const V: usize,
    const KH: usize,
    const KW: usize,
    const SH: usize,
>(
    src: *const f32,
    pitch: usize,
    cols: &[usize; KW],
    w: *const f32,
    bias: f32,
    out: *mut f32,
    ldo: usize,
    len: usize,
) {
    // SAFETY: reads and writes stay within the contract's extents (`o + V·8 ≤ len`).
    unsafe {
        let wv: [[__m256; KW]; KH] =
            std::array::from_fn(|i| std::array::from_fn(|j| _mm256_set1_ps(*w.add(i * KW + j))));
        let mut o = 0;
        while o + V * LANES <= len {
            reuse_block::<R, V, KH, KW, SH>(src.add(o), pitch, cols, &wv, bias, out.add(o), ldo);
            o += V * LANES;
        }
        while o < len {
            reuse_block::<R, 1, KH, KW, SH>(src.add(o), pitch, cols, &wv, bias, out.add(o), ldo);
            o += LANES;
        }
    }
}

/// `V` vectors of the `R` rows of [`reuse_rows`].
///
/// # Safety
/// As [`reuse_rows`] with `len = V·8`.
#[inline]
#[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
unsafe fn reuse_block<
    const R: usize,
    const V: usize,
    const KH: usize,
    const KW: usize,
    const SH: usize,
>(
    src: *const f32,
    pitch: usize,
    cols: &[usize; KW],
    wv: &[[__m256; KW]; KH],
    bias: f32,
    out: *mut f32,
    ldo: usize,
) {
    let mut acc = [[_mm256_set1_ps(bias); V]; R];
    // SAFETY: as the contract of `reuse_rows`.
    unsafe {
        for yy in 0..(R - 1) * SH + KH {
            let row = src.add(yy * pitch);
            for (j, &c) in cols.iter().enumerate() {
                let p = row.add(c);
                let x: [__m256; V] = std::array::from_fn(|v| _mm256_loadu_ps(p.add(v * LANES)));
                for (r, ar) in acc.iter_mut().enumerate() {
                    let Some(i) = yy.checked_sub(r * SH) else {
                        continue;
                    };
                    if i >= KH {
                        continue;
                    }
                    for (a, xv) in ar.iter_mut().zip(&x) {
                        *a = _mm256_fmadd_ps(wv[i][j], *xv, *a);
                    }
                }
            }
        }
        for (r, ar) in acc.iter().enumerate() {
            for (v, a) in ar.iter().enumerate() {
                _mm256_storeu_ps(out.add(r * ldo + v * LANES), *a);
            }
        }
    }
}
