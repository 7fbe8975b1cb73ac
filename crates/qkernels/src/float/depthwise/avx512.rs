//! The AVX-512 plane kernel for undilated 3 x 3 and 5 x 5 depthwise filters of stride 1 or 2:
//! it reads the NCHW input plane in place, with no padded copy (that copy, a memory-bound pass
//! over the input from L3 not overlapped with the compute, was about a third of a 144 x 56 x 56
//! call).
//!
//! The plane is computed in column blocks of up to [`VECTORS`] 16-float vectors per row, each
//! block rolling down the plane: every padded input row is loaded once and feeds the output
//! rows that use it (`⌈k / stride⌉` sets of accumulators, one per output row in progress), and
//! an output row is stored as soon as its last tap row is in; all `k·k` weights stay in
//! registers (spilled in part for 5 x 5). Stride 1 loads each tap column's vectors shifted;
//! stride 2 loads the 16-float vectors of the row once and picks every second column out of
//! two of them with `vpermt2ps` (no phase-split copy). Padding costs no copy: the columns left
//! and right of the plane are the zeroed lanes of masked loads (`vmovups` with a zeroing mask,
//! which never touches the masked-off addresses), the rows above and below read a zero row,
//! and the last vector of a row is stored under a mask. Every output's chain is the oracle's:
//! `acc = bias`, then `acc = fma(w[i, j], x_in, acc)` for the taps in row-major order, with
//! `x_in = +0` in the padding. Zen 4, one thread: 144 x 56 x 56 3 x 3 147 -> 100 µs,
//! 96 x 112 x 112 3 x 3 stride 2 246 -> 119 µs (padded copies and the 256-bit row kernel before).

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use crate::float::window::ConvWindow;

/// Floats per vector.
const LANES: usize = 16;

/// Vectors per row of a column block: `KH x 2` accumulators (6 for 3 x 3: enough to keep
/// the FMA unit busy, 512-bit FMAs issuing one a cycle on Zen 4), the weights and the loaded
/// vectors fit in the 32 registers. Measured on 144 x 56 x 56 (4 vectors a row) and
/// 32 x 112 x 112 (7): 2 vectors 100 and 75 µs, 3 vectors 102 and 77, 4 vectors 112 and 80;
/// 5 x 5 on 240 x 28 x 28: 121 µs (1 or 3 vectors: 127).
const VECTORS: usize = 2;

/// Proof that the CPU has AVX-512F and that the window is one this kernel computes; only
/// [`Planes::new`] makes one.
pub(super) struct Planes {
    kernel: usize,
    stride: usize,
    input: [usize; 2],
    padding: [usize; 2],
    output: [usize; 2],
    /// `input[1]` zeros: the input row of every tap row in the vertical padding.
    zero: Vec<f32>,
}

impl Planes {
    /// The kernel for `win`, if it is an undilated 3 x 3 or 5 x 5 window of stride 1 or 2 and
    /// the CPU has AVX-512F.
    pub(super) fn new(win: &ConvWindow) -> Option<Self> {
        let k = win.kernel[0];
        let fits = win.kernel[1] == k
            && matches!(k, 3 | 5)
            && matches!(win.stride, [1, 1] | [2, 2])
            && win.dilation == [1, 1];
        let output = win.output().ok()?;
        (fits && is_x86_feature_detected!("avx512f")).then(|| Self {
            kernel: k,
            stride: win.stride[0],
            input: win.input,
            padding: win.padding,
            output,
            zero: vec![0.0; win.input[1]],
        })
    }

    /// One plane: `out[oy·ow + ox] = bias`, then `fma(w[i·k + j], x_in, ·)` over the taps in
    /// row-major order, `x_in` the input at row `s·oy + i - ph`, column `s·ox + j - pw` (`s`
    /// the stride), or `0` outside the plane.
    ///
    /// Panics if `x`, `w` or `out` do not have the plane's, the filter's and the output
    /// plane's lengths.
    pub(super) fn plane(&self, x: &[f32], w: &[f32], bias: f32, out: &mut [MaybeUninit<f32>]) {
        let ([h, wi], [oh, ow]) = (self.input, self.output);
        assert_eq!(x.len(), h * wi, "input plane");
        assert_eq!(w.len(), self.kernel * self.kernel, "filter");
        assert_eq!(out.len(), oh * ow, "output plane");
        let p = Plane {
            x: x.as_ptr(),
            zero: self.zero.as_ptr(),
            h,
            w: wi,
            padding: self.padding,
            out: out.as_mut_ptr().cast(),
            output: self.output,
        };
        // SAFETY: `new` detected AVX-512F; the asserts above are the extents `Plane` describes
        // (`zero` holds `w` floats).
        unsafe {
            match (self.kernel, self.stride) {
                (3, 1) => plane::<3, 3, 1, 3>(&p, w.as_ptr(), bias),
                (5, 1) => plane::<5, 5, 1, 5>(&p, w.as_ptr(), bias),
                (3, _) => plane::<3, 3, 2, 2>(&p, w.as_ptr(), bias),
                _ => plane::<5, 5, 2, 3>(&p, w.as_ptr(), bias),
            }
        }
    }
}

/// A plane's buffers and sizes: `x` has `h·w` floats, `zero` `w` zeros, `out` `oh·ow` floats.
struct Plane {
    x: *const f32,
    zero: *const f32,
    h: usize,
    w: usize,
    padding: [usize; 2],
    out: *mut f32,
    output: [usize; 2],
}

impl Plane {
    /// The input row at padded row `y` (`zero` in the padding).
    fn row(&self, y: usize) -> *const f32 {
        match y.checked_sub(self.padding[0]) {
            Some(y) if y < self.h => self.x.wrapping_add(y * self.w),
            _ => self.zero,
        }
    }
}

/// The lanes `l < 16` with `0 <= start + l < w` (the input columns of a vector starting at
/// column `start`).
fn lanes(start: isize, w: usize) -> __mmask16 {
    let lo = (-start).clamp(0, 16) as u32;
    let hi = (w as isize).saturating_sub(start).clamp(0, 16) as u32;
    let below = |n: u32| ((1u32 << n) - 1) as u16;
    below(hi) & !below(lo.min(hi))
}

/// The whole plane of a `KH x KW` filter at stride `S` (`NS = ⌈KH / S⌉` output rows in
/// progress at a time), in column blocks of up to [`VECTORS`] vectors.
///
/// # Safety
/// AVX-512F available; `p` as its docs say, for a stride-`S` window; `wt` points at `KH·KW`
/// floats.
#[target_feature(enable = "avx512f")]
unsafe fn plane<const KH: usize, const KW: usize, const S: usize, const NS: usize>(
    p: &Plane,
    wt: *const f32,
    bias: f32,
) {
    debug_assert_eq!(NS, KH.div_ceil(S));
    let ow = p.output[1];
    let vectors = ow.div_ceil(LANES);
    // SAFETY: the filter has `KH·KW` floats; each block covers the output columns
    // `v0·16 .. min(ow, (v0 + v)·16)` of every row, as `block` requires.
    unsafe {
        let wv: [[__m512; KW]; KH] =
            std::array::from_fn(|i| std::array::from_fn(|j| _mm512_set1_ps(*wt.add(i * KW + j))));
        let mut v0 = 0;
        while v0 < vectors {
            let v = (vectors - v0).min(VECTORS);
            let b = Block {
                col: (S * v0 * LANES) as isize - p.padding[1] as isize,
                out: p.out.add(v0 * LANES),
                outputs: ow - v0 * LANES,
            };
            match v {
                VECTORS => block::<KH, KW, S, NS, VECTORS>(p, &b, &wv, bias),
                _ => block::<KH, KW, S, NS, 1>(p, &b, &wv, bias),
            }
            v0 += v;
        }
    }
}

/// A column block of a plane: output column `o` of the block reads input column
/// `col + S·o + j` for tap column `j` and is written at `out + oy·ow + o`; `outputs` valid
/// outputs per row.
struct Block {
    col: isize,
    out: *mut f32,
    outputs: usize,
}

/// `V` vectors of every output row, rolling down the plane: each padded input row `y` is
/// loaded once and feeds the output rows `(y - i) / S` that use it (accumulator set `oy mod
/// NS` holds output row `oy`); an output row is stored when its last tap row is in. Per
/// output, the tap rows come in increasing order and the columns in increasing order within
/// a row: the oracle's chain.
///
/// # Safety
/// AVX-512F available; `p` as its docs say; `b.out + oy·ow .. + min(outputs, 16·V)` inside
/// `p.out`'s plane for every output row `oy`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn block<
    const KH: usize,
    const KW: usize,
    const S: usize,
    const NS: usize,
    const V: usize,
>(
    p: &Plane,
    b: &Block,
    wv: &[[__m512; KW]; KH],
    bias: f32,
) {
    let oh = p.output[0];
    let taps: [[__mmask16; KW]; V] = std::array::from_fn(|v| {
        std::array::from_fn(|j| lanes(b.col + (v * LANES + j) as isize, p.w))
    });
    let wide: [__mmask16; 2 * VECTORS + 1] =
        std::array::from_fn(|m| lanes(b.col + (m * LANES) as isize, p.w));
    let stores: [__mmask16; V] = std::array::from_fn(|v| {
        let n = b.outputs.saturating_sub(v * LANES).min(LANES) as u32;
        ((1u32 << n) - 1) as __mmask16
    });
    let picks: [[u32; LANES]; KW] = std::array::from_fn(pick);
    let r = Roll {
        plane: p,
        block: b,
        taps,
        wide,
        stores,
        // SAFETY: each `picks[j]` is 16 `u32`.
        picks: std::array::from_fn(|j| unsafe { _mm512_loadu_si512(picks[j].as_ptr().cast()) }),
        bias,
    };
    let mut acc = [[_mm512_set1_ps(bias); V]; NS];
    // padded rows `0 .. S·(oh - 1) + KH`, `U = S·NS` at a time so that the sets' roles are
    // constants (rows past the last output row's only feed missing output rows)
    let u = S * NS;
    let end = S * (oh - 1) + KH;
    let mut y = 0;
    // SAFETY: as this function's contract.
    unsafe {
        while y < end {
            // every output row of these padded rows exists: no checks
            if y >= KH - 1 && (y + u - 1) / S < oh {
                r.steps::<KH, S, NS, false>(y, wv, &mut acc);
            } else {
                r.steps::<KH, S, NS, true>(y, wv, &mut acc);
            }
            y += u;
        }
    }
}

/// The `vpermt2ps` indices that take tap column `j` of 16 stride-2 outputs from the vectors
/// the step has: `j < 2` from the two 16-float vectors at the block's columns (even or odd
/// lanes), `j = 2k + r ≥ 2` from the parity-`r` vector shifted down by `k` lanes, topped up
/// from the third vector.
fn pick(j: usize) -> [u32; 16] {
    std::array::from_fn(|l| match j {
        0 | 1 => (2 * l + j) as u32,
        _ => {
            let (k, r) = (j / 2, j % 2);
            if l + k < LANES {
                (l + k) as u32
            } else {
                (LANES + r + 2 * (l + k - LANES)) as u32
            }
        }
    })
}

/// The constants of one [`block`] call.
struct Roll<'a, const KW: usize, const V: usize> {
    plane: &'a Plane,
    block: &'a Block,
    /// Stride 1, per vector and tap column: the load's lanes inside the input row.
    taps: [[__mmask16; KW]; V],
    /// Stride 2, per 16-float vector `m` at column `col + 16·m`: its lanes inside the row.
    wide: [__mmask16; 2 * VECTORS + 1],
    /// Per vector: the lanes inside the output row.
    stores: [__mmask16; V],
    /// Stride 2, per tap column: the [`pick`] indices.
    picks: [__m512i; KW],
    bias: f32,
}

impl<const KW: usize, const V: usize> Roll<'_, KW, V> {
    /// Padded rows `y .. y + S·NS` (`y` a multiple of `S·NS`), one [`Roll::step`] each.
    ///
    /// # Safety
    /// As [`block`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn steps<const KH: usize, const S: usize, const NS: usize, const CHECK: bool>(
        &self,
        y: usize,
        wv: &[[__m512; KW]; KH],
        acc: &mut [[__m512; V]; NS],
    ) {
        let u = S * NS;
        // SAFETY: as this function's contract.
        unsafe {
            self.step::<KH, S, NS, 0, CHECK>(y, wv, acc);
            self.step::<KH, S, NS, 1, CHECK>(y + 1, wv, acc);
            self.step::<KH, S, NS, 2, CHECK>(y + 2, wv, acc);
            if u > 3 {
                self.step::<KH, S, NS, 3, CHECK>(y + 3, wv, acc);
            }
            if u > 4 {
                self.step::<KH, S, NS, 4, CHECK>(y + 4, wv, acc);
            }
            if u > 5 {
                self.step::<KH, S, NS, 5, CHECK>(y + 5, wv, acc);
            }
        }
    }

    /// Padded row `y` (`y ≡ P mod S·NS`) into the output rows `(y - i) / S` that exist (tap
    /// rows `i ≡ y mod S`); stores output row `(y - (KH - 1)) / S` if it exists and restarts
    /// its set from the bias.
    ///
    /// # Safety
    /// As [`block`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn step<
        const KH: usize,
        const S: usize,
        const NS: usize,
        const P: usize,
        const CHECK: bool,
    >(
        &self,
        y: usize,
        wv: &[[__m512; KW]; KH],
        acc: &mut [[__m512; V]; NS],
    ) {
        let (p, b) = (self.plane, self.block);
        let [oh, ow] = p.output;
        let u = S * NS;
        let row = p.row(y);
        let mut feed = |j: usize, x: [__m512; V]| {
            for (i, wi) in wv.iter().enumerate() {
                // output row `(y - i) / S`, if `i` is one of this row's taps and it exists
                if !(P + u - i).is_multiple_of(S) || CHECK && y.wrapping_sub(i) / S >= oh {
                    continue;
                }
                let set = &mut acc[(P + u - i) / S % NS];
                for (a, xv) in set.iter_mut().zip(&x) {
                    *a = _mm512_fmadd_ps(wi[j], *xv, *a);
                }
            }
        };
        // SAFETY: every load is masked to the lanes whose column is inside `0 .. w` of a row
        // of the plane or of `zero` (the masked-off lanes are not accessed, so their addresses,
        // formed with wrapping arithmetic, may lie outside the row); every store is of an
        // output row `oy < oh`, masked to the block's outputs.
        unsafe {
            if S == 1 {
                for j in 0..KW {
                    feed(
                        j,
                        std::array::from_fn(|v| {
                            let at = row.wrapping_offset(b.col + (v * LANES + j) as isize);
                            _mm512_maskz_loadu_ps(self.taps[v][j], at)
                        }),
                    );
                }
            } else {
                // columns `col + 16·m ..` for `m ≤ 2·V`: vector `v` takes its outputs' inputs
                // from `m = 2v, 2v + 1` (taps 0 and 1) and `2v + 2` (the rest)
                let l: [__m512; 2 * VECTORS + 1] = std::array::from_fn(|m| {
                    let at = row.wrapping_offset(b.col + (m * LANES) as isize);
                    if m <= 2 * V {
                        _mm512_maskz_loadu_ps(self.wide[m], at)
                    } else {
                        _mm512_setzero_ps()
                    }
                });
                let half: [[__m512; V]; 2] = std::array::from_fn(|r| {
                    std::array::from_fn(|v| {
                        _mm512_permutex2var_ps(l[2 * v], self.picks[r], l[2 * v + 1])
                    })
                });
                for j in 0..KW {
                    feed(
                        j,
                        std::array::from_fn(|v| match j {
                            0 | 1 => half[j][v],
                            _ => {
                                _mm512_permutex2var_ps(half[j % 2][v], self.picks[j], l[2 * v + 2])
                            }
                        }),
                    );
                }
            }
            // output row `(y - (KH - 1)) / S` has all its taps: store it, restart its set
            if (P + u + 1 - KH).is_multiple_of(S) {
                let set = &mut acc[(P + u + 1 - KH) / S % NS];
                let oy = y.wrapping_sub(KH - 1) / S;
                if !CHECK || oy < oh {
                    for (v, a) in set.iter().enumerate() {
                        _mm512_mask_storeu_ps(b.out.add(oy * ow + v * LANES), self.stores[v], *a);
                    }
                }
                *set = [_mm512_set1_ps(self.bias); V];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{lanes, pick};

    #[test]
    fn picks_take_every_second_column_from_the_tap_on() {
        // the concatenation of the three vectors holds columns `0 .. 48`; tap `j` of output
        // `l` is column `2l + j`, from the parity-`j mod 2` half (lanes `0 .. 16`) or the
        // third vector (lanes `16 ..`)
        for j in 0..5 {
            for (l, &ix) in pick(j).iter().enumerate() {
                let col = match (j, ix) {
                    (0 | 1, ix) => ix as usize,
                    (_, ix) if ix < 16 => 2 * ix as usize + j % 2,
                    (_, ix) => ix as usize + 16,
                };
                assert_eq!(col, 2 * l + j, "tap {j}, output {l}");
            }
        }
    }

    #[test]
    fn lanes_are_the_columns_inside_the_row() {
        assert_eq!(lanes(0, 56), 0xffff);
        assert_eq!(lanes(-1, 56), 0xfffe);
        assert_eq!(lanes(-2, 56), 0xfffc);
        assert_eq!(lanes(47, 56), 0x01ff);
        assert_eq!(lanes(55, 56), 0x0001);
        assert_eq!(lanes(56, 56), 0);
        assert_eq!(lanes(-1, 3), 0x000e);
        assert_eq!(lanes(-20, 3), 0);
        assert_eq!(lanes(-3, 2), 0x0018);
    }
}
