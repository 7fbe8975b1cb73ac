//! Direct depthwise convolution (one input and one output channel per group) on NDHWC data.
//!
//! For each output pixel an indirection list holds one channel vector per kernel tap (the
//! input pixel, or a buffer of input zero points for padding taps); then
//! `raw[c] = Σ_t x_t[c]·(w[t, c] − zw[c]) − za·Σ_t (w[t, c] − zw[c])`, which equals
//! `Σ_t (x_t[c] − za)·(w[t, c] − zw[c])` exactly. The channel loop is compiled once portably
//! and once per x86 level (AVX2, AVX-512BW) and the family's epilogue requantizes.

use rayon::prelude::*;

use super::geometry::ConvGeometry;
use super::pack::DepthwiseWeights;
use crate::gemm::{KernelKind, Microkernel, OutRow, Stage};

/// Output pixels above which rows are spread over rayon's threads.
const PARALLEL_MACS: usize = 1 << 18;

/// `acc[c] = Σ_t x_t[c]·w[t·C + c]` (portable; the vector versions inline it).
#[inline(always)]
fn accumulate(taps: &[&[u8]], w: &[i16], acc: &mut [i32]) {
    let c = acc.len();
    acc.fill(0);
    for (t, x) in taps.iter().enumerate() {
        let wt = &w[t * c..(t + 1) * c];
        for ((a, &xv), &wv) in acc.iter_mut().zip(&x[..c]).zip(wt) {
            *a += i32::from(xv) * i32::from(wv);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn accumulate_avx2(taps: &[&[u8]], w: &[i16], acc: &mut [i32]) {
    accumulate(taps, w, acc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
fn accumulate_avx512(taps: &[&[u8]], w: &[i16], acc: &mut [i32]) {
    accumulate(taps, w, acc)
}

/// Runs the channel loop compiled for `kind`.
fn accumulate_for(kind: KernelKind, taps: &[&[u8]], w: &[i16], acc: &mut [i32]) {
    match kind {
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx2 | KernelKind::Avx2Saturating | KernelKind::AvxVnni => {
            // SAFETY: the weights were packed for `kind`, which `kernel_for` (called by the
            // pack) only accepts when the CPU supports its level, which includes AVX2.
            unsafe { accumulate_avx2(taps, w, acc) }
        }
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx512Vnni => {
            // SAFETY: as above; the Avx512Vnni level requires AVX-512 F and BW.
            unsafe { accumulate_avx512(taps, w, acc) }
        }
        _ => accumulate(taps, w, acc),
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
    let c = g.out_channels;
    let [_, oh, ow] = out_dims;
    let zeros = vec![za as u8; c];
    let kind = kernel.kind();
    let row_len = ow * c;
    let rows = out.len() / row_len.max(1);
    let parallel = rayon::current_num_threads() > 1
        && out.len().saturating_mul(g.taps()) >= PARALLEL_MACS
        && rows > 1;
    let corr: Vec<i32> = w.sums.iter().map(|&s| s.wrapping_mul(za)).collect();
    let task = |(r, dst): (usize, &mut [u8])| {
        let y = r % oh;
        let z = (r / oh) % out_dims[0];
        let n = r / (oh * out_dims[0]);
        let [id, ih, iw] = g.input;
        let mut taps: Vec<&[u8]> = Vec::with_capacity(g.taps());
        let mut acc = vec![0i32; c];
        for (x, px) in dst.chunks_exact_mut(c).enumerate() {
            taps.clear();
            for tz in 0..g.kernel[0] {
                let iz = g.input_coord(0, z, tz);
                for ty in 0..g.kernel[1] {
                    let iy = g.input_coord(1, y, ty);
                    for tx in 0..g.kernel[2] {
                        taps.push(match (iz, iy, g.input_coord(2, x, tx)) {
                            (Some(iz), Some(iy), Some(ix)) => {
                                let at = (((n * id + iz) * ih + iy) * iw + ix) * c;
                                &input[at..at + c]
                            }
                            _ => &zeros,
                        });
                    }
                }
            }
            accumulate_for(kind, &taps, &w.w, &mut acc);
            for (a, &k) in acc.iter_mut().zip(&corr) {
                *a = a.wrapping_sub(k);
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
