//! The AVX-512 moves around [`super::gemm_f32_rows`]'s tiles: packing the activations into
//! 16-row panels and writing the transposed output back, 16 × 16 blocks transposed in zmm
//! registers (16 loads, 64 shuffles, 16 stores) instead of one scalar load and store per
//! value. At 256 × 1024 → 1024 on the Intel Xeon the scalar loops took 10–11 % of the call.
//! Only values move (no arithmetic), so the results are the scalar loops' bits.

use std::arch::x86_64::*;

use super::NR;
use super::avx512::Avx512;

impl Avx512 {
    /// Packs `rows` rows of `x` (stride `ldx`, `k` values each) into panels of 16 rows,
    /// `panels[(p·k + kk)·16 + j] = x[(16p + j)·ldx + kk]`, zero past the last row
    /// (`panels` holds exactly `⌈rows / 16⌉·k·16` values).
    ///
    /// Panics if a slice is shorter than the shapes need.
    pub(crate) fn pack_panels(
        &self,
        x: &[f32],
        rows: usize,
        ldx: usize,
        k: usize,
        panels: &mut [f32],
    ) {
        let np = rows.div_ceil(NR);
        assert_eq!(panels.len(), np * k * NR, "panels length");
        if rows == 0 || k == 0 {
            return;
        }
        assert!(ldx >= k && x.len() >= (rows - 1) * ldx + k, "x too short");
        // SAFETY: `self` proves AVX-512F; the asserts are the extents `pack_rp` reads (`rows`
        // rows of `k` f32 at stride `ldx`) and writes (`np·k·16` f32).
        unsafe { pack_rp(x.as_ptr(), rows, ldx, k, panels.as_mut_ptr()) }
    }

    /// `out[j·ldo + t] = out_t[t·ldt + j]` for `j < rows`, `t < n`; each row of `out_t` is
    /// read in runs of 16 up to `⌈rows / 16⌉·16` values (`ldt` at least that, and the last
    /// row too).
    ///
    /// Panics if a slice is shorter than the shapes need.
    pub(crate) fn untranspose(
        &self,
        out_t: &[f32],
        ldt: usize,
        n: usize,
        rows: usize,
        out: &mut [f32],
        ldo: usize,
    ) {
        if rows == 0 || n == 0 {
            return;
        }
        let run = rows.div_ceil(NR) * NR;
        assert!(
            ldt >= run && out_t.len() >= (n - 1) * ldt + run,
            "out_t too short"
        );
        assert!(
            ldo >= n && out.len() >= (rows - 1) * ldo + n,
            "out too short"
        );
        // SAFETY: `self` proves AVX-512F; the asserts are the extents `untranspose_rp` reads
        // (`n` rows at stride `ldt` of `⌈rows / 16⌉·16` f32) and writes (`rows` rows of `n`
        // f32 at stride `ldo`).
        unsafe { untranspose_rp(out_t.as_ptr(), ldt, n, rows, out.as_mut_ptr(), ldo) }
    }
}

/// Transposes the 16 × 16 block `r` in place (`r[i]` lane `j` ↦ `r[j]` lane `i`).
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose16(r: &mut [__m512; 16]) {
    // Pairs of rows interleaved, then groups of four rows: `u[g][j]`'s 128-bit lane `l` holds
    // column `4l + j` of rows `4g..4g + 4`.
    let mut u = [[_mm512_setzero_ps(); 4]; 4];
    for (g, ug) in u.iter_mut().enumerate() {
        let [a, b, c, d] = [r[4 * g], r[4 * g + 1], r[4 * g + 2], r[4 * g + 3]];
        let (t0, t1) = (_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
        let (t2, t3) = (_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
        ug[0] = _mm512_shuffle_ps::<0x44>(t0, t2);
        ug[1] = _mm512_shuffle_ps::<0xEE>(t0, t2);
        ug[2] = _mm512_shuffle_ps::<0x44>(t1, t3);
        ug[3] = _mm512_shuffle_ps::<0xEE>(t1, t3);
    }
    // Then the 128-bit lanes: output row `4l + j` is lane `l` of `u[0..4][j]`.
    for j in 0..4 {
        let v0 = _mm512_shuffle_f32x4::<0x88>(u[0][j], u[1][j]);
        let w0 = _mm512_shuffle_f32x4::<0xDD>(u[0][j], u[1][j]);
        let v1 = _mm512_shuffle_f32x4::<0x88>(u[2][j], u[3][j]);
        let w1 = _mm512_shuffle_f32x4::<0xDD>(u[2][j], u[3][j]);
        r[j] = _mm512_shuffle_f32x4::<0x88>(v0, v1);
        r[8 + j] = _mm512_shuffle_f32x4::<0xDD>(v0, v1);
        r[4 + j] = _mm512_shuffle_f32x4::<0x88>(w0, w1);
        r[12 + j] = _mm512_shuffle_f32x4::<0xDD>(w0, w1);
    }
}

/// The mask of the first `n ≤ 16` lanes.
#[inline]
fn lanes(n: usize) -> __mmask16 {
    if n >= 16 { !0 } else { (1u16 << n) - 1 }
}

/// # Safety
/// AVX-512F available; `x` points at `rows ≥ 1` rows (stride `ldx`) of `k` readable f32,
/// `panels` at `⌈rows / 16⌉·k·16` writable f32.
#[target_feature(enable = "avx512f")]
unsafe fn pack_rp(x: *const f32, rows: usize, ldx: usize, k: usize, panels: *mut f32) {
    let zero = _mm512_setzero_ps();
    for p in 0..rows.div_ceil(NR) {
        let pr = NR.min(rows - p * NR);
        for k0 in (0..k).step_by(NR) {
            let kt = NR.min(k - k0);
            let m = lanes(kt);
            let mut r = [zero; 16];
            for (j, rj) in r.iter_mut().enumerate().take(pr) {
                // SAFETY: row `16p + j < rows`, values `k0..k0 + kt` of it (masked load).
                *rj = unsafe { _mm512_maskz_loadu_ps(m, x.add((p * NR + j) * ldx + k0)) };
            }
            transpose16(&mut r);
            for (kk, rk) in r.iter().enumerate().take(kt) {
                // SAFETY: `(p·k + k0 + kk)·16 + 16 ≤ np·k·16` since `k0 + kk < k`.
                unsafe { _mm512_storeu_ps(panels.add((p * k + k0 + kk) * NR), *rk) };
            }
        }
    }
}

/// # Safety
/// AVX-512F available; `out_t` points at `n` rows (stride `ldt`) of `⌈rows / 16⌉·16`
/// readable f32, `out` at `rows` rows (stride `ldo`) of `n` writable f32.
#[target_feature(enable = "avx512f")]
unsafe fn untranspose_rp(
    out_t: *const f32,
    ldt: usize,
    n: usize,
    rows: usize,
    out: *mut f32,
    ldo: usize,
) {
    let zero = _mm512_setzero_ps();
    for t0 in (0..n).step_by(NR) {
        let tn = NR.min(n - t0);
        let m = lanes(tn);
        for j0 in (0..rows).step_by(NR) {
            let jn = NR.min(rows - j0);
            let mut r = [zero; 16];
            for (t, rt) in r.iter_mut().enumerate().take(tn) {
                // SAFETY: row `t0 + t < n` of `out_t`, values `j0..j0 + 16 ≤ ⌈rows / 16⌉·16`.
                *rt = unsafe { _mm512_loadu_ps(out_t.add((t0 + t) * ldt + j0)) };
            }
            transpose16(&mut r);
            for (j, rj) in r.iter().enumerate().take(jn) {
                // SAFETY: row `j0 + j < rows` of `out`, values `t0..t0 + tn ≤ n` (masked).
                unsafe { _mm512_mask_storeu_ps(out.add((j0 + j) * ldo + t0), m, *rj) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row and column tail of both moves equals the definition, value for value, and
    /// nothing outside the rows is written.
    #[test]
    fn moves_equal_their_definitions_on_every_tail() {
        let Some(z) = Avx512::new() else { return };
        for rows in [1usize, 5, 15, 16, 17, 33, 64] {
            for cols in [1, 7, 16, 17, 40] {
                // pack: `rows × cols` activations with a padded stride
                let ldx = cols + 3;
                let x: Vec<f32> = (0..rows * ldx).map(|i| i as f32).collect();
                let np = rows.div_ceil(NR);
                let mut panels = vec![f32::NAN; np * cols * NR];
                z.pack_panels(&x, rows, ldx, cols, &mut panels);
                for p in 0..np {
                    for kk in 0..cols {
                        for j in 0..NR {
                            let r = p * NR + j;
                            let want = if r < rows { x[r * ldx + kk] } else { 0.0 };
                            let got = panels[(p * cols + kk) * NR + j];
                            assert_eq!(got.to_bits(), want.to_bits(), "pack {rows}×{cols}");
                        }
                    }
                }
                // untranspose: `cols` rows of `ldt` values back into `rows × cols`
                let ldt = np * NR;
                let out_t: Vec<f32> = (0..cols * ldt).map(|i| i as f32 + 0.5).collect();
                let ldo = cols + 2;
                let mut out = vec![-7.0f32; rows * ldo + 5];
                z.untranspose(&out_t, ldt, cols, rows, &mut out, ldo);
                for (i, &v) in out.iter().enumerate() {
                    let (j, t) = (i / ldo, i % ldo);
                    let want = if j < rows && t < cols {
                        out_t[t * ldt + j]
                    } else {
                        -7.0
                    };
                    assert_eq!(
                        v.to_bits(),
                        want.to_bits(),
                        "untranspose {rows}×{cols} at {i}"
                    );
                }
            }
        }
    }
}
