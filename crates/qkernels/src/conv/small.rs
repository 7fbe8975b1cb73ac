//! Direct convolution for few output channels and a short reduction (LeNet's first layer:
//! C = 1 or 3, 5×5, O = 6), where a GEMM register tile would be mostly empty columns.
//!
//! Per output pixel the `taps · C` inputs are read as one contiguous run per kernel row
//! straight from the input when the window is inside it (else gathered once with the zero
//! point for padding); `acc[o] = Σ_k x[k]·W[o, k]` runs on 8 lanes (O ≤ 8) with weights
//! stored `[k][8]`, is corrected like the GEMM (`+ corr[o] − Σx·zw[o]`) and requantized with
//! the scalar fbgemm formula ([`crate::gemm::requantize_one`]). Output rows are spread over
//! rayon's threads.

use crate::par;

use super::error::Result;
use super::geometry::ConvGeometry;
use super::implicit::{GroupPlan, Plan};
use crate::gemm::{KernelKind, Microkernel, PackedWeights, Requantize, Stage, requantize_one};

/// Multiply-accumulates above which output rows are spread over rayon's threads.
const PARALLEL_MACS: usize = 1 << 18;

/// A run of the reduction: `len` bytes of the source at `start`, reduction index `k0`.
type Seg = (usize, usize, usize);

/// `acc[o] = Σ_segs Σ_j src[start + j]·w[(k0 + j)·8 + o]`.
#[inline(always)]
fn dots(src: &[u8], segs: &[Seg], w: &[i32], acc: &mut [i32; 8]) {
    *acc = [0; 8];
    for &(start, len, k0) in segs {
        let x = &src[start..start + len];
        let ws = &w[k0 * 8..(k0 + x.len()) * 8];
        for (&xv, wk) in x.iter().zip(ws.chunks_exact(8)) {
            let xv = i32::from(xv);
            for o in 0..8 {
                acc[o] += xv * wk[o];
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dots_avx2(src: &[u8], segs: &[Seg], w: &[i32], acc: &mut [i32; 8]) {
    use std::arch::x86_64::*;
    let mut a = _mm256_setzero_si256();
    for &(start, len, k0) in segs {
        let x = &src[start..start + len];
        let ws = &w[k0 * 8..(k0 + len) * 8];
        for (&xv, wk) in x.iter().zip(ws.chunks_exact(8)) {
            // SAFETY: `wk` is a chunk of exactly 8 i32 (32 bytes); unaligned load.
            let wv = unsafe { _mm256_loadu_si256(wk.as_ptr().cast()) };
            a = _mm256_add_epi32(a, _mm256_mullo_epi32(_mm256_set1_epi32(i32::from(xv)), wv));
        }
    }
    // SAFETY: `acc` is 8 i32 (32 bytes); unaligned store.
    unsafe { _mm256_storeu_si256(acc.as_mut_ptr().cast(), a) };
}

/// Requantizes one pixel (`px.len()` ≤ 8 channels) with the fbgemm formula of
/// [`crate::gemm::requantize_one`], compiled with FMA so `mul_add` and the rounding inline.
#[inline(always)]
fn requant_pixel(acc: &[i32; 8], stage: &Stage, px: &mut [u8]) {
    let Stage::Requant(rq) = stage else {
        unreachable!("the conv entry point prepares a requantize stage")
    };
    for (j, p) in px.iter_mut().enumerate() {
        *p = requantize_one(
            acc[j],
            rq.bias_a[j],
            rq.bias_b[j],
            rq.mult[j],
            rq.zero_point,
            rq.lo,
            rq.hi,
        );
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn requant_pixel_fma(acc: &[i32; 8], stage: &Stage, px: &mut [u8]) {
    requant_pixel(acc, stage, px)
}

fn dots_for(kind: KernelKind, src: &[u8], segs: &[Seg], w: &[i32], acc: &mut [i32; 8]) {
    match kind {
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx2
        | KernelKind::Avx2Saturating
        | KernelKind::AvxVnni
        | KernelKind::Avx512Vnni
        | KernelKind::Amx => {
            // SAFETY: the weights were packed for `kind`, which `kernel_for` (called by the
            // pack) only accepts when the CPU supports its level, which includes AVX2.
            unsafe { dots_avx2(src, segs, w, acc) }
        }
        _ => dots(src, segs, w, acc),
    }
}

/// The plan of a small-C convolution (one group) with weights `w`: checks the accumulator
/// bound and prepares the requantization.
pub(crate) fn plan<'a>(
    kernel: &'a dyn Microkernel,
    g: &'a ConvGeometry,
    out_dims: [usize; 3],
    input: &'a [u8],
    za: i32,
    w: &'a PackedWeights,
    params: Requantize<'_>,
) -> Result<Plan<'a>> {
    super::check_overflow(w.k(), za, w.w_abs_max())?;
    let stage = Stage::requant(params.prepare(w)?);
    Ok(Plan {
        kernel,
        g,
        out_dims,
        input,
        za,
        groups: vec![GroupPlan::new(kernel, w, stage, za)],
    })
}

/// Whether [`run`] with `pool` computes the 2×2 stride-2 max pool of `plan`'s convolution
/// itself (one group, O ≤ 8): on the AVX-512 VNNI pixel kernel, when no requantized sum can
/// reach `cvtps2dq`'s overflow (there requantization is non-decreasing, so pooling the
/// corrected sums equals pooling the requantized bytes): per channel,
/// `(K·max(za, 255 − za)·max|W − zw| + |bias term|)·mult < 2³⁰`, all finite.
pub(crate) fn pool_fuses(plan: &Plan<'_>) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let gp = &plan.groups[0];
        let Stage::Requant(rq) = &gp.stage else {
            return false;
        };
        let bound =
            plan.g.k() as f64 * f64::from(plan.za.max(255 - plan.za)) * f64::from(gp.w.w_abs_max());
        let monotone = (0..plan.g.out_channels).all(|j| {
            let b = f64::from(rq.bias_a[j]) * f64::from(rq.bias_b[j]);
            let top = (bound + b.abs()) * f64::from(rq.mult[j]).abs();
            top.is_finite() && top < f64::from(1u32 << 30)
        });
        monotone && plan.kernel.kind().has_avx512_vnni() && super::small_vnni::applies(plan.g)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = plan;
        false
    }
}

/// Runs the convolution of `plan` (one group, O ≤ 8) with `[k][8]` weights `w` into `out`;
/// with `pool` (only where [`pool_fuses`]), its 2×2 stride-2 max pool instead.
pub(crate) fn run(plan: &Plan<'_>, w: &[i32], pool: bool, out: &mut [u8]) {
    let g = plan.g;
    let gp = &plan.groups[0];
    let (o, k, c) = (g.out_channels, g.k(), g.in_channels);
    let [_, oh, ow] = plan.out_dims;
    let [id, ih, iw] = g.input;
    let [kd, kh, kw] = g.kernel;
    let row_len = ow * o;
    let kind = plan.kernel.kind();
    #[cfg(target_arch = "x86_64")]
    let fma =
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    let fma = false;
    let symmetric = gp.w.is_symmetric();
    let zw = gp.w.zero_points();
    // −za·(Σ_k W − zw·K): the plan's correction also holds the GEMM kernel's activation
    // offset (e.g. 128 for an XOR-0x80 dot-product kernel), which this kernel does not use.
    let kk = k as i64;
    let corr: Vec<i32> =
        gp.w.weight_sums()
            .iter()
            .zip(zw)
            .map(|(&s, &z)| (-i64::from(plan.za) * (i64::from(s) - i64::from(z) * kk)) as i32)
            .collect();
    let parallel = rayon::current_num_threads() > 1
        && out.len().saturating_mul(k) >= PARALLEL_MACS
        && out.len() > row_len;
    #[cfg(target_arch = "x86_64")]
    if pool || (kind.has_avx512_vnni() && super::small_vnni::applies(g)) {
        let planes = g.batch * plan.out_dims[0];
        let planes_parallel = rayon::current_num_threads() > 1
            && planes > 1
            && (planes * oh * row_len).saturating_mul(k) >= PARALLEL_MACS;
        // SAFETY: weights packed for the AVX-512 VNNI family exist only on CPUs with
        // AVX-512 F/BW/VL/VNNI, and `small_vnni::applies` checked VBMI (for `pool` via
        // `pool_fuses`).
        unsafe {
            super::small_vnni::run(plan, w, &corr, zw, symmetric, planes_parallel, pool, out)
        };
        return;
    }
    assert!(!pool, "the fused pool runs on the VNNI kernel only");
    #[cfg(target_arch = "x86_64")]
    if fma && kind != KernelKind::Scalar && super::small_pixels::applies(g) {
        let planes_parallel = parallel && out.len() > oh * row_len;
        // SAFETY: `fma` is set only when the CPU reports AVX2 and FMA.
        unsafe { super::small_pixels::run(plan, w, &corr, zw, symmetric, planes_parallel, out) };
        return;
    }
    let task = |(r, dst): (usize, &mut [u8])| {
        let y = r % oh;
        let z = (r / oh) % plan.out_dims[0];
        let n = r / (oh * plan.out_dims[0]);
        let mut buf = vec![0u8; k];
        let mut segs: Vec<Seg> = Vec::with_capacity(kd * kh);
        let mut acc = [0i32; 8];
        // rows of the window (all kz, ky in bounds) → input line offsets
        let mut lines = Vec::with_capacity(kd * kh);
        for tz in 0..kd {
            for ty in 0..kh {
                if let (Some(iz), Some(iy)) = (g.input_coord(0, z, tz), g.input_coord(1, y, ty)) {
                    lines.push(((n * id + iz) * ih + iy) * iw);
                }
            }
        }
        let rows_inside = lines.len() == kd * kh && g.dilation[2] == 1;
        for (x, px) in dst.chunks_exact_mut(o).enumerate() {
            let x0 = (x * g.stride[2]).checked_sub(g.padding[2]);
            segs.clear();
            let src: &[u8] = match x0 {
                Some(x0) if rows_inside && x0 + kw <= iw => {
                    for (i, &line) in lines.iter().enumerate() {
                        segs.push(((line + x0) * c, kw * c, i * kw * c));
                    }
                    plan.input
                }
                _ => {
                    plan.gather_row(r * ow + x, 0, &mut buf);
                    segs.push((0, k, 0));
                    &buf
                }
            };
            dots_for(kind, src, &segs, w, &mut acc);
            let rs: i32 = if symmetric {
                0
            } else {
                segs.iter()
                    .flat_map(|&(s, l, _)| &src[s..s + l])
                    .map(|&v| i32::from(v))
                    .sum()
            };
            for j in 0..o {
                acc[j] = acc[j]
                    .wrapping_add(corr[j])
                    .wrapping_sub(rs.wrapping_mul(zw[j]));
            }
            if fma {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `fma` is set only when the CPU reports AVX2 and FMA.
                unsafe {
                    requant_pixel_fma(&acc, &gp.stage, px)
                };
            } else {
                requant_pixel(&acc, &gp.stage, px);
            }
        }
    };
    if parallel {
        par::for_each_chunk(out, row_len, task);
    } else {
        out.chunks_mut(row_len).enumerate().for_each(task);
    }
}
