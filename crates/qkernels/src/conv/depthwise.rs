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
    if saturate {
        for (j, pair) in taps.chunks(2).enumerate() {
            let w0 = &w[2 * j * c..(2 * j + 1) * c];
            let x0 = &pair[0][..c];
            if let [_, x1] = pair {
                let w1 = &w[(2 * j + 1) * c..(2 * j + 2) * c];
                for o in 0..c {
                    let p =
                        i32::from(x0[o]) * i32::from(w0[o]) + i32::from(x1[o]) * i32::from(w1[o]);
                    acc[o] += p.clamp(i32::from(i16::MIN), i32::from(i16::MAX));
                }
            } else {
                for o in 0..c {
                    acc[o] += i32::from(x0[o]) * i32::from(w0[o]);
                }
            }
        }
    } else {
        for (t, x) in taps.iter().enumerate() {
            let wt = &w[t * c..(t + 1) * c];
            for ((a, &xv), &wv) in acc.iter_mut().zip(&x[..c]).zip(wt) {
                *a += i32::from(xv) * i32::from(wv);
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
    let (c_in, o) = (g.in_channels, g.out_channels);
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
        let mut expanded = vec![0u8; if w.mult > 1 { ntaps * o } else { 0 }];
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
                                Some((((n * id + iz) * ih + iy) * iw + ix) * c_in)
                            }
                            _ => None,
                        });
                    }
                }
            }
            let taps: Vec<&[u8]> = if w.mult == 1 {
                offsets
                    .iter()
                    .map(|off| match off {
                        Some(at) => &input[*at..*at + o],
                        None => &zeros[..],
                    })
                    .collect()
            } else {
                for (t, off) in offsets.iter().enumerate() {
                    let e = &mut expanded[t * o..(t + 1) * o];
                    match off {
                        Some(at) => {
                            for (oc, v) in e.iter_mut().enumerate() {
                                *v = input[at + oc / w.mult];
                            }
                        }
                        None => e.fill(za as u8),
                    }
                }
                expanded.chunks_exact(o).collect()
            };
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
