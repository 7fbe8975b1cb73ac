//! Direct depthwise convolution (one input channel and one or two output channels per
//! group) on NDHWC data.
//!
//! For each output pixel an indirection list holds one channel vector per kernel tap (the
//! input pixel, or a buffer of input zero points for padding taps); then
//! `acc[o] = Σ_t x_t[o]·w[t, o]` on the raw values, and
//! `raw[o] = acc[o] − za·(Σ_t w[t, o] − zw[o]·T) − zw[o]·Σ_t x_t[o]`, which equals
//! `Σ_t (x_t − za)·(w − zw)` exactly. When PyTorch's fbgemm runs the convolution on its
//! depthwise fast path ([`ConvGeometry::fbgemm_depthwise_saturates`]) the products of tap
//! pairs `(2j, 2j+1)` are saturated to i16 before they are added, as `vpmaddubsw` does there.
//! The channel loops are compiled once portably and once per x86 level (AVX2, AVX-512BW);
//! the family's epilogue requantizes.

use rayon::prelude::*;

use super::geometry::ConvGeometry;
use super::pack::DepthwiseWeights;
use crate::gemm::{KernelKind, Microkernel, OutRow, Stage};

/// Multiply-accumulates above which output rows are spread over rayon's threads.
const PARALLEL_MACS: usize = 1 << 18;

/// `acc[o] = Σ_t x_t[o]·w[t·O + o]` (or the pair-saturated sum); the vector versions inline it.
#[inline(always)]
fn accumulate(taps: &[&[u8]], w: &[i16], saturate: bool, acc: &mut [i32]) {
    let c = acc.len();
    acc.fill(0);
    // u8·i8 products fit in i16 exactly (|255·−128| < 2¹⁵), so products are formed in i16
    // and, on the saturating path, each tap pair is added with i16 saturation.
    for (j, pair) in taps.chunks(2).enumerate() {
        let w0 = &w[2 * j * c..(2 * j + 1) * c];
        let x0 = &pair[0][..c];
        if let [_, x1] = pair {
            let w1 = &w[(2 * j + 1) * c..(2 * j + 2) * c];
            let x1 = &x1[..c];
            for o in 0..c {
                let p0 = i16::from(x0[o]).wrapping_mul(w0[o]);
                let p1 = i16::from(x1[o]).wrapping_mul(w1[o]);
                acc[o] += if saturate {
                    i32::from(p0.saturating_add(p1))
                } else {
                    i32::from(p0) + i32::from(p1)
                };
            }
        } else {
            for o in 0..c {
                acc[o] += i32::from(i16::from(x0[o]).wrapping_mul(w0[o]));
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn accumulate_avx2(taps: &[&[u8]], w: &[i16], saturate: bool, acc: &mut [i32]) {
    accumulate(taps, w, saturate, acc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
fn accumulate_avx512(taps: &[&[u8]], w: &[i16], saturate: bool, acc: &mut [i32]) {
    accumulate(taps, w, saturate, acc)
}

/// Runs the channel loop compiled for `kind`.
fn accumulate_for(kind: KernelKind, taps: &[&[u8]], w: &[i16], saturate: bool, acc: &mut [i32]) {
    match kind {
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx2 | KernelKind::Avx2Saturating | KernelKind::AvxVnni => {
            // SAFETY: the weights were packed for `kind`, which `kernel_for` (called by the
            // pack) only accepts when the CPU supports its level, which includes AVX2.
            unsafe { accumulate_avx2(taps, w, saturate, acc) }
        }
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx512Vnni => {
            // SAFETY: as above; the Avx512Vnni level requires AVX-512 F and BW.
            unsafe { accumulate_avx512(taps, w, saturate, acc) }
        }
        _ => accumulate(taps, w, saturate, acc),
    }
}

/// Runs a depthwise convolution into the NDHWC `out` (validated by the caller).
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    kernel: &dyn Microkernel,
    g: &ConvGeometry,
    out_dims: [usize; 3],
    input: &[u8],
    za: i32,
    w: &DepthwiseWeights,
    stage: &Stage,
    out: &mut [u8],
) {
    let o = g.out_channels;
    // With a channel multiplier, output channel `oc` reads input channel `oc / mult`: widen
    // the input once so every tap is a contiguous vector of O values.
    let widened: Vec<u8>;
    let src: &[u8] = if w.mult == 1 {
        input
    } else {
        widened = input
            .iter()
            .flat_map(|&v| std::iter::repeat_n(v, w.mult))
            .collect();
        &widened
    };
    let [_, oh, ow] = out_dims;
    let zeros = vec![za as u8; o];
    let kind = kernel.kind();
    let saturate = g.fbgemm_depthwise_saturates();
    let symmetric = w.zero_points.iter().all(|&z| z == 0);
    let ntaps = g.taps();
    let row_len = ow * o;
    let rows = out.len() / row_len.max(1);
    let parallel = rayon::current_num_threads() > 1
        && out.len().saturating_mul(ntaps) >= PARALLEL_MACS
        && rows > 1;
    let corr: Vec<i32> = w.col_offsets.iter().map(|&s| s.wrapping_mul(za)).collect();
    let task = |(r, dst): (usize, &mut [u8])| {
        let y = r % oh;
        let z = (r / oh) % out_dims[0];
        let n = r / (oh * out_dims[0]);
        let [id, ih, iw] = g.input;
        let mut offsets: Vec<Option<usize>> = Vec::with_capacity(ntaps);
        let mut taps: Vec<&[u8]> = Vec::with_capacity(ntaps);
        let mut acc = vec![0i32; o];
        for (x, px) in dst.chunks_exact_mut(o).enumerate() {
            offsets.clear();
            for tz in 0..g.kernel[0] {
                let iz = g.input_coord(0, z, tz);
                for ty in 0..g.kernel[1] {
                    let iy = g.input_coord(1, y, ty);
                    for tx in 0..g.kernel[2] {
                        offsets.push(match (iz, iy, g.input_coord(2, x, tx)) {
                            (Some(iz), Some(iy), Some(ix)) => {
                                Some((((n * id + iz) * ih + iy) * iw + ix) * o)
                            }
                            _ => None,
                        });
                    }
                }
            }
            taps.clear();
            taps.extend(offsets.iter().map(|off| match off {
                Some(at) => &src[*at..*at + o],
                None => &zeros[..],
            }));
            accumulate_for(kind, &taps, &w.w, saturate, &mut acc);
            for (a, &k) in acc.iter_mut().zip(&corr) {
                *a = a.wrapping_sub(k);
            }
            if !symmetric {
                for (oc, a) in acc.iter_mut().enumerate() {
                    let rs: i32 = taps.iter().map(|t| i32::from(t[oc])).sum();
                    *a = a.wrapping_sub(rs.wrapping_mul(w.zero_points[oc]));
                }
            }
            kernel.finish(stage, 0, &acc, OutRow::U8(px));
        }
    };
    if parallel {
        out.par_chunks_mut(row_len).enumerate().for_each(task);
    } else {
        out.chunks_mut(row_len).enumerate().for_each(task);
    }
}
