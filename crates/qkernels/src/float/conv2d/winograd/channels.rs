//! The output-channel-major layout of the AVX-512 family: the products run rows of tiles
//! against panels of 16 output channels (`[tiles × cin]·[cin × 16·p]`), so a block's tile
//! count needs no rounding up to 16 lanes (its output channels are rounded up instead). The
//! driver takes it when that wastes fewer lanes, e.g. the 49 tiles of a 14 × 14 plane, which
//! the tile-major layout computes in 64 lanes. The filter and output transforms are
//! [`super::transform`]'s (the same operations in the same order, now over 16 output
//! channels), and each product is still one fused multiply-add chain over `c` from zero, so
//! the bits are the oracle's.
//!
//! Layouts: the transformed weight `U_ξ` of filter `(o, c)` at `u[ξ·stride + c·ldo + o]`
//! (zero for `cout ≤ o < ldo`), the products `M_ξ` of a block's tile `t` at
//! `m[ξ·xs + t·ldo + o]`.

use super::transform::{L, XI, filters_lanes, output_lanes};
use crate::fp16::avx512::Avx512;

/// Tap-major taps of 16 filters (`[t][l]`), and of 16 runs of 16 filters (`[9c + t][l]`).
type Taps = [[f32; L]; 9];
type Taps16 = [[f32; L]; 9 * L];

/// The transformed weight of the output channels `lo .. hi`: `u[ξ·stride + c·ldo + o - lo] =
/// U_ξ` of filter `(o, c)` of `weight` (`cout × cin` filters of 9 taps, PyTorch's layout),
/// zero for `o ≥ cout`, 16 output channels at a time, their taps `9·cin` floats apart made
/// tap-major by `block` for 16 input channels at a time and by `gather` for the last
/// `cin mod 16`.
#[inline(always)]
fn weight_body(
    weight: &[f32],
    [cin, cout]: [usize; 2],
    [lo, hi]: [usize; 2],
    [ldo, stride]: [usize; 2],
    u: &mut [f32],
    (gather, block): (
        impl Fn(&[f32], usize, &mut Taps),
        impl Fn(&[f32], usize, &mut Taps16),
    ),
) {
    assert!(lo.is_multiple_of(L) && lo <= hi && hi - lo <= ldo && hi <= cout.next_multiple_of(L));
    assert!(ldo.is_multiple_of(L) && cin * ldo <= stride);
    assert!(weight.len() >= cout * cin * 9 && (XI - 1) * stride + cin * ldo <= u.len());
    let mut store = |c: usize, o0: usize, g: &Taps| {
        for (x, vals) in filters_lanes(g).iter().enumerate() {
            let at = x * stride + c * ldo + o0 - lo;
            let dst: &mut [f32; L] = (&mut u[at..at + L]).try_into().expect("16 values");
            *dst = *vals;
        }
    };
    let mut taps = [[0.0f32; L]; 9 * L];
    for o0 in (lo..hi).step_by(L) {
        let n = L.min(cout.saturating_sub(o0));
        let mut c = 0;
        if n == L {
            while c + L <= cin {
                let first = (o0 * cin + c) * 9;
                block(
                    &weight[first..first + (L - 1) * 9 * cin + 9 * L],
                    9 * cin,
                    &mut taps,
                );
                for (k, g) in taps.chunks_exact(9).enumerate() {
                    store(c + k, o0, g.try_into().expect("9 taps"));
                }
                c += L;
            }
        }
        for c in c..cin {
            let mut g = [[0.0f32; L]; 9];
            let first = (o0 * cin + c) * 9;
            if n == L {
                gather(
                    &weight[first..first + (L - 1) * 9 * cin + 9],
                    9 * cin,
                    &mut g,
                );
            } else {
                for l in 0..n {
                    let taps = &weight[first + l * 9 * cin..][..9];
                    for (gt, &v) in g.iter_mut().zip(taps) {
                        gt[l] = v;
                    }
                }
            }
            store(c, o0, &g);
        }
    }
}

/// A row segment of tiles in up to 16 output channels: the image's output planes from the
/// first of those channels (`oh · ow` floats each), the tile row `ty` and tiles
/// `tx0 .. tx0 + len`, the channels' biases and their count `n`.
pub(super) struct OutTiles<'a> {
    pub planes: &'a mut [f32],
    pub size: [usize; 2],
    pub ty: usize,
    pub tx0: usize,
    pub len: usize,
    pub bias: [f32; L],
    pub n: usize,
}

/// The outputs `Aᵀ M A + bias` of the segment's tiles in its `n` channels, `M_ξ` of tile
/// `tx0 + k` and channel `l` at `m[ξ·xs + k·ldo + l]`, stored where they fall inside the
/// planes.
#[inline(always)]
fn output_body(m: &[f32], [ldo, xs]: [usize; 2], s: OutTiles<'_>) {
    let OutTiles {
        planes,
        size: [oh, ow],
        ty,
        tx0,
        len,
        bias,
        n,
    } = s;
    let plane = oh * ow;
    assert!((1..=L).contains(&n) && n * plane <= planes.len() && len >= 1);
    assert!((XI - 1) * xs + (len - 1) * ldo + L <= m.len());
    let (mut mv, mut y) = ([[0.0f32; L]; XI], [[0.0f32; L]; 4]);
    for k in 0..len {
        for (x, mx) in mv.iter_mut().enumerate() {
            *mx = m[x * xs + k * ldo..][..L].try_into().expect("16 values");
        }
        output_lanes(&mv, &bias, &mut y);
        for a in 0..2 {
            let oy = 2 * ty + a;
            if oy >= oh {
                break;
            }
            for b in 0..2 {
                let ox = 2 * (tx0 + k) + b;
                if ox >= ow {
                    break;
                }
                for (l, &v) in y[2 * a + b][..n].iter().enumerate() {
                    planes[l * plane + oy * ow + ox] = v;
                }
            }
        }
    }
}

#[target_feature(enable = "avx512f")]
fn weight_avx512(
    weight: &[f32],
    shape: [usize; 2],
    chans: [usize; 2],
    strides: [usize; 2],
    u: &mut [f32],
) {
    // SAFETY: this function runs only where AVX-512F was detected (`weight`'s proof).
    let gather = |s: &[f32], stride, g: &mut Taps| unsafe {
        super::x86_64::gather_taps_strided(s, stride, g)
    };
    // SAFETY: as above.
    let block =
        |s: &[f32], stride, g: &mut Taps16| unsafe { super::x86_64::transpose_taps(s, stride, g) };
    weight_body(weight, shape, chans, strides, u, (gather, block))
}

#[target_feature(enable = "avx512f")]
fn output_avx512(m: &[f32], strides: [usize; 2], s: OutTiles<'_>) {
    output_body(m, strides, s)
}

/// The weight transform into the channel-major layout (module doc) of the output channels
/// `chans = [lo, hi]` of `[cin, cout]` filters (`U_ξ` of filter `(o, c)` at
/// `ξ·stride + c·ldo + o - lo` for `[ldo, stride]`; zero for `o ≥ cout`).
pub(super) fn weight(
    _cpu: &Avx512,
    weight: &[f32],
    shape: [usize; 2],
    chans: [usize; 2],
    strides: [usize; 2],
    u: &mut [f32],
) {
    // SAFETY: an `Avx512` exists only after AVX-512F was detected.
    unsafe { weight_avx512(weight, shape, chans, strides, u) }
}

/// The output transform of one segment in up to 16 channels from `m` (`M_ξ` of the segment's
/// tile `k`, channel `l` at `ξ·xs + k·ldo + l` for `[ldo, xs]`).
pub(super) fn output(_cpu: &Avx512, m: &[f32], strides: [usize; 2], s: OutTiles<'_>) {
    // SAFETY: an `Avx512` exists only after AVX-512F was detected.
    unsafe { output_avx512(m, strides, s) }
}
