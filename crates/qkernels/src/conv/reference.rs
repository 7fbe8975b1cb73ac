//! The scalar convolution oracle: a direct loop over output pixels, channels and taps in
//! i64 (padding taps read the input zero point, PyTorch's im2col fill), followed by the
//! requantization formulas of PyTorch numerics §2.8 written out. It reads PyTorch's weight
//! layout `[O][C/groups][kd][kh][kw]` and shares no code with the kernels except the scalar
//! definitions [`cvt_rne_x86`] and [`quantized_six`].

use super::error::{ConvError, Result};
use super::geometry::ConvGeometry;
use crate::gemm::reference::Accumulation;
use crate::gemm::{Activation, Requantize, WeightQParams, cvt_rne_x86, quantized_six};

fn qparams_of(q: WeightQParams<'_>, o: usize) -> Result<(Vec<f32>, Vec<i32>, bool)> {
    Ok(match q {
        WeightQParams::PerTensor { scale, zero_point } => {
            (vec![scale; o], vec![zero_point; o], false)
        }
        WeightQParams::PerChannel {
            scales,
            zero_points,
        } => {
            if scales.len() != o || zero_points.len() != o {
                return Err(ConvError::Length {
                    what: "per-channel weight qparams",
                    expected: o,
                    got: scales.len().min(zero_points.len()),
                });
            }
            (scales.to_vec(), zero_points.to_vec(), true)
        }
    })
}

/// The zero-point-corrected sums `raw[n, od, oh, ow, o] = Σ (x − za)·(w − zw[o])`
/// (NDHWC output order), wrapped to i32; on fbgemm's depthwise fast path
/// ([`ConvGeometry::fbgemm_depthwise_saturates`]) the raw products of consecutive tap pairs
/// are first saturated to i16, as PyTorch computes them.
pub fn conv_raw(
    g: &ConvGeometry,
    input: &[u8],
    a_zero_point: i32,
    weights: &[i8],
    w_zero_points: &[i32],
) -> Result<Vec<i32>> {
    conv_raw_with(
        g,
        input,
        a_zero_point,
        weights,
        w_zero_points,
        Accumulation::Exact,
    )
}

/// [`conv_raw`] with a choice of accumulation: [`Accumulation::PairSaturating16`] saturates
/// the raw products of every pair of reduction indices `(2j, 2j + 1)` to i16, the reduction
/// ordered as fbgemm's im2col orders it (taps in `(z, y, x)` order, the group's input
/// channels fastest) — what fbgemm computes on an x86 CPU without VNNI and what
/// [`crate::gemm::KernelKind::Avx2Saturating`] reproduces. The depthwise fast path saturates
/// under either accumulation.
pub fn conv_raw_with(
    g: &ConvGeometry,
    input: &[u8],
    a_zero_point: i32,
    weights: &[i8],
    w_zero_points: &[i32],
    accumulation: Accumulation,
) -> Result<Vec<i32>> {
    let od = g.output()?;
    if input.len() != g.input_len() {
        return Err(ConvError::Length {
            what: "input",
            expected: g.input_len(),
            got: input.len(),
        });
    }
    let (cg, og, taps) = (g.group_in(), g.group_out(), g.taps());
    if weights.len() != g.out_channels * cg * taps {
        return Err(ConvError::Length {
            what: "weights",
            expected: g.out_channels * cg * taps,
            got: weights.len(),
        });
    }
    if w_zero_points.len() != g.out_channels {
        return Err(ConvError::Length {
            what: "weight zero points",
            expected: g.out_channels,
            got: w_zero_points.len(),
        });
    }
    let saturate = g.fbgemm_depthwise_saturates() || accumulation == Accumulation::PairSaturating16;
    let [id, ih, iw] = g.input;
    let [kd, kh, kw] = g.kernel;
    let mut out = Vec::with_capacity(g.output_len()?);
    for n in 0..g.batch {
        for z in 0..od[0] {
            for y in 0..od[1] {
                for x in 0..od[2] {
                    for (o, &zw) in w_zero_points.iter().enumerate() {
                        let grp = o / og;
                        let zw = i64::from(zw);
                        let za = i64::from(a_zero_point);
                        // (activation, weight) per reduction index: taps in (z, y, x) order,
                        // the group's channels fastest (fbgemm's im2col order)
                        let mut terms = Vec::with_capacity(cg * kd * kh * kw);
                        for tz in 0..kd {
                            for ty in 0..kh {
                                for tx in 0..kw {
                                    for c in 0..cg {
                                        let iz = (z * g.stride[0] + tz * g.dilation[0])
                                            .wrapping_sub(g.padding[0]);
                                        let iy = (y * g.stride[1] + ty * g.dilation[1])
                                            .wrapping_sub(g.padding[1]);
                                        let ix = (x * g.stride[2] + tx * g.dilation[2])
                                            .wrapping_sub(g.padding[2]);
                                        let a = if iz < id && iy < ih && ix < iw {
                                            let at = (((n * id + iz) * ih + iy) * iw + ix)
                                                * g.in_channels
                                                + grp * cg
                                                + c;
                                            i64::from(input[at])
                                        } else {
                                            za
                                        };
                                        let wi = (((o * cg + c) * kd + tz) * kh + ty) * kw + tx;
                                        terms.push((a, i64::from(weights[wi])));
                                    }
                                }
                            }
                        }
                        let acc: i64 = if saturate {
                            // fbgemm's vpmaddubsw: raw u8·i8 products of reduction indices
                            // (2j, 2j+1) summed and saturated to i16, then zero points
                            // corrected exactly.
                            let pairs: i64 = terms
                                .chunks(2)
                                .map(|p| {
                                    p.iter()
                                        .map(|&(a, w)| a * w)
                                        .sum::<i64>()
                                        .clamp(i64::from(i16::MIN), i64::from(i16::MAX))
                                })
                                .sum();
                            let a_sum: i64 = terms.iter().map(|&(a, _)| a).sum();
                            let w_sum: i64 = terms.iter().map(|&(_, w)| w).sum();
                            pairs - za * (w_sum - zw * terms.len() as i64) - a_sum * zw
                        } else {
                            terms.iter().map(|&(a, w)| (a - za) * (w - zw)).sum()
                        };
                        out.push(acc as i32);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The oracle quint8 convolution: NDHWC input `input` (zero point `a_zero_point`), PyTorch
/// layout weights, fbgemm requantization; returns the NDHWC output.
pub fn conv_u8s8(
    g: &ConvGeometry,
    input: &[u8],
    a_zero_point: i32,
    weights: &[i8],
    qparams: WeightQParams<'_>,
    params: Requantize<'_>,
) -> Result<Vec<u8>> {
    conv_u8s8_with(
        g,
        input,
        a_zero_point,
        weights,
        qparams,
        params,
        Accumulation::Exact,
    )
}

/// [`conv_u8s8`] with a choice of accumulation (see [`conv_raw_with`]).
pub fn conv_u8s8_with(
    g: &ConvGeometry,
    input: &[u8],
    a_zero_point: i32,
    weights: &[i8],
    qparams: WeightQParams<'_>,
    params: Requantize<'_>,
    accumulation: Accumulation,
) -> Result<Vec<u8>> {
    let (scales, zps, per_channel) = qparams_of(qparams, g.out_channels)?;
    let raw = conv_raw_with(g, input, a_zero_point, weights, &zps, accumulation)?;
    let zp = params.out_zero_point;
    let (lo, hi) = match params.activation {
        Activation::None => (0, 255),
        Activation::Relu => (zp, 255),
        Activation::Relu6 => (zp, quantized_six(params.out_scale, zp)),
    };
    let o_count = g.out_channels;
    Ok(raw
        .iter()
        .enumerate()
        .map(|(i, &r)| {
            let j = i % o_count;
            let atw = params.act_scale * scales[j];
            let mult = atw / params.out_scale;
            let rf = r as f32;
            let xf = match params.bias {
                None => rf,
                Some(b) if per_channel => rf + b[j] / atw,
                Some(b) => b[j].mul_add((1.0f64 / f64::from(atw)) as f32, rf),
            };
            let q = i64::from(cvt_rne_x86(xf * mult)) + i64::from(zp);
            // max then min: `hi` (the quantized 6.0) may be below `lo`
            q.max(i64::from(lo)).min(i64::from(hi)) as u8
        })
        .collect())
}
