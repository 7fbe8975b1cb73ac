//! The F(2×2, 3×3) transforms, written once as `#[inline(always)]` bodies and compiled per
//! family through `#[target_feature]` wrappers ([`Lanes`]), so that every family runs the same
//! additions in the same order (the compiler only widens them over lanes: float adds are never
//! reassociated or fused) and gives the bits of the oracle.
//!
//! With `Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]`, `G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]`
//! and `Aᵀ = [1 1 1 0; 0 1 -1 -1]`, a 4×4 input tile `d` becomes `V = Bᵀ d B`, a 3×3 filter
//! `g` becomes `U = G g Gᵀ`, and the 2×2 output is `Aᵀ M A` with `M = Σ_c U ⊙ V`. Each of
//! the three is a 1-d transform applied to the columns first, then to the rows of the result
//! ([`bt`], [`g3`], [`at`]).

/// Transformed positions of one tile (`4 × 4`).
pub(super) const XI: usize = 16;

/// `Bᵀ · d` for one column (or row) of 4 values.
#[inline(always)]
pub(crate) fn bt(d: [f32; 4]) -> [f32; 4] {
    [d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]]
}

/// `G · g` for one column (or row) of 3 filter taps (the halvings are exact).
#[inline(always)]
pub(crate) fn g3(g: [f32; 3]) -> [f32; 4] {
    [
        g[0],
        ((g[0] + g[1]) + g[2]) * 0.5,
        ((g[0] - g[1]) + g[2]) * 0.5,
        g[2],
    ]
}

/// `Aᵀ · m` for one column (or row) of 4 values.
#[inline(always)]
pub(crate) fn at(m: [f32; 4]) -> [f32; 2] {
    [(m[0] + m[1]) + m[2], (m[1] - m[2]) - m[3]]
}

/// Most tiles of one row segment (the driver's block of tiles).
pub(super) const SEG: usize = 64;

/// The padded, column-split planes of one image: per channel, `rows` padded rows, each stored
/// as its even columns then its odd columns (`half` values each), so that the 4 × 4 patches of
/// consecutive tiles (2 columns apart) are consecutive floats of 4 rows.
#[derive(Clone, Copy)]
pub(super) struct Split {
    /// Padded rows per channel (`2 · tile rows + 2`).
    pub rows: usize,
    /// Even (and odd) columns per padded row (`tile columns + 1`).
    pub half: usize,
}

impl Split {
    /// Floats of one channel's split plane, plus slack: the transforms read 17 values from
    /// any column of any row.
    pub(super) fn plane(self) -> usize {
        self.rows * 2 * self.half + 2 * L
    }
}

/// One input plane with its `[h, w]` and `[top, left]` padding.
#[derive(Clone, Copy)]
pub(super) struct InPlane<'a> {
    pub plane: &'a [f32],
    pub size: [usize; 2],
    pub pad: [usize; 2],
}

/// One output row segment: the output plane and its `[oh, ow]`, the tile row `ty` and tiles
/// `tx0 .. tx0 + len`, and the bias added to every output.
pub(super) struct OutSeg<'a> {
    pub plane: &'a mut [f32],
    pub size: [usize; 2],
    pub ty: usize,
    pub tx0: usize,
    pub len: usize,
    pub bias: f32,
}

/// `e[k] = P(2k)`, `o[k] = P(2k + 1)` for `k < e.len()`, where `P(q)` is the padded row:
/// `row[q - pad]` inside the row (when there is one), `0` elsewhere.
#[inline(always)]
fn split_row(row: Option<&[f32]>, pad: usize, e: &mut [f32], o: &mut [f32]) {
    let Some(row) = row else {
        e.fill(0.0);
        o.fill(0.0);
        return;
    };
    let p = |q: usize| {
        q.checked_sub(pad)
            .and_then(|i| row.get(i))
            .copied()
            .unwrap_or(0.0)
    };
    let n = e.len();
    // pairs wholly inside the row: k in lo..hi
    let lo = pad.div_ceil(2).min(n);
    let hi = ((row.len() + pad) / 2).clamp(lo, n);
    for k in (0..lo).chain(hi..n) {
        e[k] = p(2 * k);
        o[k] = p(2 * k + 1);
    }
    let start = 2 * lo - pad;
    let (e, o) = (&mut e[lo..hi], &mut o[lo..hi]);
    let src = &row[start..start + 2 * e.len()];
    for k in 0..e.len() {
        e[k] = src[2 * k];
        o[k] = src[2 * k + 1];
    }
}

/// The split plane ([`Split`]) of one input plane into `dst`.
#[inline(always)]
fn split_body(src: InPlane<'_>, split: Split, dst: &mut [f32]) {
    let InPlane {
        plane,
        size: [h, w],
        pad: [ph, pw],
    } = src;
    for (r, drow) in dst[..split.rows * 2 * split.half]
        .chunks_exact_mut(2 * split.half)
        .enumerate()
    {
        let (e, o) = drow.split_at_mut(split.half);
        let row = r
            .checked_sub(ph)
            .filter(|&r| r < h)
            .map(|r| &plane[r * w..(r + 1) * w]);
        split_row(row, pw, e, o);
    }
}

/// Tiles per step of the transforms: the bodies below run on local arrays of this many lanes
/// (no aliasing for the compiler to rule out), which it turns into one zmm or two ymm per row.
pub(super) const L: usize = 16;

/// `v[ξ][l]` = `V_ξ` of the `l`-th of 16 tiles whose patch columns are `e[i][l]`, `o[i][l]`,
/// `e[i][l + 1]`, `o[i][l + 1]` (rows `i`).
#[inline(always)]
fn input_lanes(e: &[[f32; L + 1]; 4], o: &[[f32; L + 1]; 4], v: &mut [[f32; L]; XI]) {
    for l in 0..L {
        // Bᵀ down the 4 columns of the patch, then along its 4 rows
        let c0 = bt([e[0][l], e[1][l], e[2][l], e[3][l]]);
        let c1 = bt([o[0][l], o[1][l], o[2][l], o[3][l]]);
        let c2 = bt([e[0][l + 1], e[1][l + 1], e[2][l + 1], e[3][l + 1]]);
        let c3 = bt([o[0][l + 1], o[1][l + 1], o[2][l + 1], o[3][l + 1]]);
        for i in 0..4 {
            let r = bt([c0[i], c1[i], c2[i], c3[i]]);
            for j in 0..4 {
                v[4 * i + j][l] = r[j];
            }
        }
    }
}

/// `dst[ξ·ld + k] = V_ξ` of tile `(ty, tx0 + k)`, `k < len`, from the split plane `sp` of one
/// channel; lanes up to the next multiple of 16 get values of no tile (`dst` rows need that
/// room).
#[inline(always)]
fn input_body(sp: &[f32], split: Split, [ty, tx0, len]: [usize; 3], dst: &mut [f32], ld: usize) {
    let lanes = len.next_multiple_of(L);
    assert!(lanes <= ld && (XI - 1) * ld + lanes <= dst.len() && ty * 2 + 4 <= split.rows);
    let half = split.half;
    let (mut e, mut o) = ([[0.0f32; L + 1]; 4], [[0.0f32; L + 1]; 4]);
    let mut v = [[0.0f32; L]; XI];
    for k0 in (0..len).step_by(L) {
        for i in 0..4 {
            // 17 values from any column fit in the plane's slack
            let at = (2 * ty + i) * 2 * half + tx0 + k0;
            e[i] = sp[at..at + L + 1].try_into().expect("17 values");
            o[i] = sp[at + half..at + half + L + 1]
                .try_into()
                .expect("17 values");
        }
        input_lanes(&e, &o, &mut v);
        for (x, vx) in v.iter().enumerate() {
            let d: &mut [f32; L] = (&mut dst[x * ld + k0..x * ld + k0 + L])
                .try_into()
                .expect("16 values");
            *d = *vx;
        }
    }
}

/// `y[r][l]`: the 2 × 2 outputs (`r = 2a + b`) of 16 tiles (or of one tile in 16 output
/// channels) from their `m[ξ][l]`, plus `bias[l]`.
#[inline(always)]
pub(super) fn output_lanes(m: &[[f32; L]; XI], bias: &[f32; L], y: &mut [[f32; L]; 4]) {
    for l in 0..L {
        // Aᵀ down the columns, then along the rows
        let mut c = [[0.0f32; 2]; 4];
        for (j, cj) in c.iter_mut().enumerate() {
            *cj = at([m[j][l], m[4 + j][l], m[8 + j][l], m[12 + j][l]]);
        }
        for a in 0..2 {
            let r = at([c[0][a], c[1][a], c[2][a], c[3][a]]);
            y[2 * a][l] = r[0] + bias[l];
            y[2 * a + 1][l] = r[1] + bias[l];
        }
    }
}

/// The outputs of the segment's tiles: `Aᵀ M A + bias` with `M_ξ = m[ξ·ld + k]` for tile
/// `tx0 + k`, stored where they fall inside the output plane (the rows of `m` are read up to
/// the next multiple of 16 lanes).
#[inline(always)]
fn output_body(m: &[f32], ld: usize, s: OutSeg<'_>) {
    let OutSeg {
        plane,
        size: [oh, ow],
        ty,
        tx0,
        len,
        bias,
    } = s;
    assert!(len.next_multiple_of(L) <= ld && (XI - 1) * ld + len.next_multiple_of(L) <= m.len());
    let (mut mv, mut y) = ([[0.0f32; L]; XI], [[0.0f32; L]; 4]);
    for k0 in (0..len).step_by(L) {
        let n = L.min(len - k0);
        for (x, mx) in mv.iter_mut().enumerate() {
            *mx = m[x * ld + k0..x * ld + k0 + L]
                .try_into()
                .expect("16 values");
        }
        output_lanes(&mv, &[bias; L], &mut y);
        for a in 0..2 {
            let oy = 2 * ty + a;
            if oy >= oh {
                break;
            }
            let x0 = 2 * (tx0 + k0);
            let cols = (ow - x0).min(2 * n);
            let row = &mut plane[oy * ow + x0..oy * ow + x0 + cols];
            let (ya, yb) = (&y[2 * a], &y[2 * a + 1]);
            if cols == 2 * L {
                let mut pairs = [0.0f32; 2 * L];
                for l in 0..L {
                    pairs[2 * l] = ya[l];
                    pairs[2 * l + 1] = yb[l];
                }
                let row: &mut [f32; 2 * L] = row.try_into().expect("32 values");
                *row = pairs;
            } else {
                for (q, out) in row.iter_mut().enumerate() {
                    *out = if q % 2 == 0 { ya[q / 2] } else { yb[q / 2] };
                }
            }
        }
    }
}

/// `u[ξ·stride + f] = U_ξ` of every 3 × 3 filter `f` of `weight` (`filters` filters of 9
/// taps; `f = o·cin + c` for PyTorch's layout), 16 filters at a time, their taps made
/// tap-major by `gather`.
#[inline(always)]
fn weight_body(
    weight: &[f32],
    [filters, stride]: [usize; 2],
    u: &mut [f32],
    gather: impl Fn(&[f32; 9 * L], &mut [[f32; L]; 9]),
) {
    for f0 in (0..filters).step_by(L) {
        weight_step(weight, [filters, stride], f0, u, &gather);
    }
}

/// `g[t][l] = src[9l + t]`: the taps of 16 filters, tap-major (portable).
#[inline(always)]
fn gather_taps(src: &[f32; 9 * L], g: &mut [[f32; L]; 9]) {
    for l in 0..L {
        for (t, gt) in g.iter_mut().enumerate() {
            gt[l] = src[9 * l + t];
        }
    }
}

/// `gu[ξ][l] = U_ξ` of 16 filters from their tap-major taps `g[t][l]`.
#[inline(always)]
pub(super) fn filters_lanes(g: &[[f32; L]; 9]) -> [[f32; L]; XI] {
    let mut gu = [[0.0f32; L]; XI];
    for l in 0..L {
        // G down the columns, then along the rows
        let mut cols = [[0.0f32; 4]; 3];
        for (j, cj) in cols.iter_mut().enumerate() {
            *cj = g3([g[j][l], g[3 + j][l], g[6 + j][l]]);
        }
        for i in 0..4 {
            let r = g3([cols[0][i], cols[1][i], cols[2][i]]);
            for (j, &v) in r.iter().enumerate() {
                gu[4 * i + j][l] = v;
            }
        }
    }
    gu
}

/// One step of [`weight_body`]: the filters `f0 .. f0 + 16` (fewer at the end).
#[inline(always)]
fn weight_step(
    weight: &[f32],
    [filters, stride]: [usize; 2],
    f0: usize,
    u: &mut [f32],
    gather: &impl Fn(&[f32; 9 * L], &mut [[f32; L]; 9]),
) {
    let n = L.min(filters - f0);
    assert!(filters <= stride && (XI - 1) * stride + f0 + n <= u.len());
    let mut g = [[0.0f32; L]; 9];
    let src = &weight[f0 * 9..(f0 + n) * 9];
    if n == L {
        gather(src.try_into().expect("144 taps"), &mut g);
    } else {
        for (l, taps) in src.chunks_exact(9).enumerate() {
            for (gt, &v) in g.iter_mut().zip(taps) {
                gt[l] = v;
            }
        }
    }
    let gu = filters_lanes(&g);
    for (x, vals) in gu.iter().enumerate() {
        let dst = &mut u[x * stride + f0..x * stride + f0 + n];
        if n == L {
            let dst: &mut [f32; L] = dst.try_into().expect("16 values");
            *dst = *vals;
        } else {
            dst.copy_from_slice(&vals[..n]);
        }
    }
}

/// The family the transforms are compiled for, with its CPU proof.
#[derive(Clone, Copy)]
pub(super) enum Lanes {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

/// Generates the per-family entry points of one body: `$name` dispatches on [`Lanes`].
macro_rules! per_family {
    ($(#[$doc:meta])* $name:ident, $body:ident, $avx2:ident, $avx512:ident, ($($arg:ident: $ty:ty),*)) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn $avx2($($arg: $ty),*) {
            $body($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        fn $avx512($($arg: $ty),*) {
            $body($($arg),*)
        }

        impl Lanes {
            $(#[$doc])*
            pub(super) fn $name(self, $($arg: $ty),*) {
                match self {
                    Lanes::Portable => $body($($arg),*),
                    // SAFETY: `Lanes::Avx2` is made only after AVX2 and FMA were detected
                    // (`Lanes::new`).
                    #[cfg(target_arch = "x86_64")]
                    Lanes::Avx2 => unsafe { $avx2($($arg),*) },
                    // SAFETY: `Lanes::Avx512` is made only after AVX-512F was detected
                    // (`Lanes::new`).
                    #[cfg(target_arch = "x86_64")]
                    Lanes::Avx512 => unsafe { $avx512($($arg),*) },
                }
            }
        }
    };
}

per_family!(
    /// The split plane of one input plane into `dst`.
    split, split_body, split_avx2, split_avx512, (src: InPlane<'_>, split: Split, dst: &mut [f32])
);
per_family!(
    /// The input transform of the tiles `tx0 .. tx0 + len` of tile row `ty` (`seg`) from the
    /// split plane `sp` of one channel into `dst` (`V_ξ` of tile `k` at `ξ·ld + k`).
    input, input_body, input_avx2, input_avx512,
    (sp: &[f32], split: Split, seg: [usize; 3], dst: &mut [f32], ld: usize)
);
per_family!(
    /// The output transform of one row segment from `m` (`M_ξ` of tile `k` at `ξ·ld + k`).
    output, output_body, output_avx2, output_avx512, (m: &[f32], ld: usize, s: OutSeg<'_>)
);
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn weight_avx2(w: &[f32], filters: [usize; 2], u: &mut [f32]) {
    weight_body(w, filters, u, gather_taps)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn weight_avx512(w: &[f32], filters: [usize; 2], u: &mut [f32]) {
    // SAFETY: this function runs only where AVX-512F was detected (`Lanes::Avx512`).
    weight_body(w, filters, u, |s, g| unsafe {
        super::x86_64::gather_taps(s, g)
    })
}

impl Lanes {
    /// The weight transform of all `filters[0]` filters of `w` into `u` (`U_ξ` of filter `f`
    /// at `ξ·filters[1] + f`).
    pub(super) fn weight(self, w: &[f32], filters: [usize; 2], u: &mut [f32]) {
        match self {
            Lanes::Portable => weight_body(w, filters, u, gather_taps),
            // SAFETY: `Lanes::Avx2` is made only after AVX2 and FMA were detected
            // (`Lanes::new`).
            #[cfg(target_arch = "x86_64")]
            Lanes::Avx2 => unsafe { weight_avx2(w, filters, u) },
            // SAFETY: `Lanes::Avx512` is made only after AVX-512F was detected
            // (`Lanes::new`).
            #[cfg(target_arch = "x86_64")]
            Lanes::Avx512 => unsafe { weight_avx512(w, filters, u) },
        }
    }
}

impl Lanes {
    /// The transforms' family for a tile family: AVX-512F or AVX2 + FMA when the CPU has them
    /// (`None` when it does not).
    pub(super) fn new(avx512: bool, avx2: bool) -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        {
            if avx512 {
                return is_x86_feature_detected!("avx512f").then_some(Lanes::Avx512);
            }
            if avx2 {
                return (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
                    .then_some(Lanes::Avx2);
            }
        }
        (!avx512 && !avx2).then_some(Lanes::Portable)
    }
}
