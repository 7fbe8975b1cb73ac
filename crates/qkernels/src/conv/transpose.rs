//! # int8 transposed 2-d convolution (PyTorch's `quantized::conv_transpose2d`, fbgemm)
//!
//! `out[n, oy, ox, o] = requant(Σ (in[n, iy, ix, c] − za)·(W[c, o, ky, kx] − zw))` over the
//! input channels `c` of `o`'s group and the taps with `oy = iy·sy − py + ky·dy` (likewise for
//! x), on NHWC quint8 data with a per-tensor qint8 weight `[C, O/groups, kh, kw]` (PyTorch's
//! layout), followed by the fbgemm-exact per-tensor requantization of
//! [`crate::gemm::Requantize`] (no fused activation: PyTorch has none for this op).
//!
//! [`conv_transpose_u8s8`] runs, per group, one int8 GEMM of the input pixels
//! (`N·H·W × C/groups`) by the weights packed once as `(O/groups·kh·kw) × C/groups`
//! ([`PackedTransposeWeights`]) into exact i32 column sums, scatters them onto the output
//! pixels (col2im, i32 adds), then requantizes. The integer sums are exact, so the result
//! equals fbgemm's (which gathers the same products through a transposed im2col) bit for bit;
//! [`conv_transpose_reference`] is the scalar oracle.
//!
//! ```
//! use qkernels::conv::transpose::{self, PackedTransposeWeights, TransposeGeometry};
//! use qkernels::gemm::Requantize;
//! // 1 channel, 2×2 input, 2×2 kernel of ones, stride 2: each input pixel becomes a 2×2 block.
//! let g = TransposeGeometry::new(1, 1, 1, 1, [2, 2], [2, 2]).with_stride([2, 2]);
//! let w = PackedTransposeWeights::pack_best(&[1; 4], &g, 1.0, 0)?;
//! let params = Requantize { act_scale: 1.0, out_scale: 1.0, out_zero_point: 0, bias: None,
//!     activation: Default::default() };
//! let mut y = [0u8; 16];
//! transpose::conv_transpose_u8s8(&g, &[11, 12, 13, 14], 10, &w, params, &mut y)?;
//! assert_eq!(&y[..4], &[1, 1, 2, 2]);
//! # Ok::<(), qkernels::conv::ConvError>(())
//! ```

use super::error::{ConvError, Result};
use crate::error::GemmError;
use crate::gemm::{
    self, Activation, Activations, KernelKind, Output, PackedWeights, Requantize, WeightQParams,
    requantize_one,
};

/// Shape of a grouped, strided, padded, dilated transposed 2-d convolution on NHWC tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TransposeGeometry {
    /// Batch size N.
    pub batch: usize,
    /// Input channels C.
    pub in_channels: usize,
    /// Output channels O.
    pub out_channels: usize,
    /// Groups (C and O must be divisible by it).
    pub groups: usize,
    /// Input spatial size `[H, W]`.
    pub input: [usize; 2],
    /// Kernel size `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride (each ≥ 1).
    pub stride: [usize; 2],
    /// Padding removed from both sides of the output.
    pub padding: [usize; 2],
    /// Extra rows/columns at the bottom/right of the output (smaller than stride or dilation).
    pub output_padding: [usize; 2],
    /// Dilation (each ≥ 1).
    pub dilation: [usize; 2],
}

impl TransposeGeometry {
    /// Stride 1, no padding, no output padding, dilation 1.
    pub fn new(
        batch: usize,
        in_channels: usize,
        out_channels: usize,
        groups: usize,
        input: [usize; 2],
        kernel: [usize; 2],
    ) -> Self {
        Self {
            batch,
            in_channels,
            out_channels,
            groups,
            input,
            kernel,
            stride: [1; 2],
            padding: [0; 2],
            output_padding: [0; 2],
            dilation: [1; 2],
        }
    }

    /// Sets the stride.
    pub fn with_stride(mut self, stride: [usize; 2]) -> Self {
        self.stride = stride;
        self
    }

    /// Sets the padding.
    pub fn with_padding(mut self, padding: [usize; 2]) -> Self {
        self.padding = padding;
        self
    }

    /// Sets the output padding.
    pub fn with_output_padding(mut self, output_padding: [usize; 2]) -> Self {
        self.output_padding = output_padding;
        self
    }

    /// Sets the dilation.
    pub fn with_dilation(mut self, dilation: [usize; 2]) -> Self {
        self.dilation = dilation;
        self
    }

    fn validate(&self) -> Result<()> {
        let positive = [
            ("batch", self.batch),
            ("in_channels", self.in_channels),
            ("out_channels", self.out_channels),
            ("groups", self.groups),
            ("input height", self.input[0]),
            ("input width", self.input[1]),
            ("kernel height", self.kernel[0]),
            ("kernel width", self.kernel[1]),
            ("stride height", self.stride[0]),
            ("stride width", self.stride[1]),
            ("dilation height", self.dilation[0]),
            ("dilation width", self.dilation[1]),
        ];
        if let Some(&(what, value)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConvError::Geometry { what, value });
        }
        for (what, channels) in [
            ("in_channels", self.in_channels),
            ("out_channels", self.out_channels),
        ] {
            if !channels.is_multiple_of(self.groups) {
                return Err(ConvError::Groups {
                    what,
                    channels,
                    groups: self.groups,
                });
            }
        }
        for a in 0..2 {
            let op = self.output_padding[a];
            if op >= self.stride[a] && op >= self.dilation[a] {
                return Err(ConvError::Geometry {
                    what: "output_padding (must be smaller than stride or dilation)",
                    value: op,
                });
            }
        }
        Ok(())
    }

    /// Output size `[OH, OW]`: `(in − 1)·s − 2p + d·(k − 1) + output_padding + 1`.
    ///
    /// Errors: a zero size, groups not dividing the channels, too large an output padding, or
    /// padding that leaves no output.
    pub fn output(&self) -> Result<[usize; 2]> {
        self.validate()?;
        let mut out = [0; 2];
        for (a, o) in out.iter_mut().enumerate() {
            let full = (self.input[a] - 1) * self.stride[a]
                + self.dilation[a] * (self.kernel[a] - 1)
                + self.output_padding[a]
                + 1;
            *o = full
                .checked_sub(2 * self.padding[a])
                .filter(|&v| v > 0)
                .ok_or(ConvError::Geometry {
                    what: "padding (leaves an empty output)",
                    value: self.padding[a],
                })?;
        }
        Ok(out)
    }

    /// Input elements `N·H·W·C`.
    pub fn input_len(&self) -> usize {
        self.batch * self.input[0] * self.input[1] * self.in_channels
    }

    /// Output elements `N·OH·OW·O`.
    pub fn output_len(&self) -> Result<usize> {
        let [oh, ow] = self.output()?;
        Ok(self.batch * oh * ow * self.out_channels)
    }

    /// Weight elements `C·(O/groups)·kh·kw`.
    pub fn weight_len(&self) -> usize {
        self.in_channels
            * (self.out_channels / self.groups.max(1))
            * self.kernel[0]
            * self.kernel[1]
    }

    fn taps(&self) -> usize {
        self.kernel[0] * self.kernel[1]
    }
}

/// Transposed-convolution weights packed once for the GEMM: one `(O/groups·kh·kw) × C/groups`
/// matrix per group (row `(o, ky, kx)`, column `c`), with their per-tensor qparams.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedTransposeWeights {
    groups: Vec<PackedWeights>,
    in_channels: usize,
    out_channels: usize,
    group_count: usize,
    kernel: [usize; 2],
    scale: f32,
    zero_point: i32,
}

impl PackedTransposeWeights {
    /// Packs `weight` (`[C, O/groups, kh, kw]` row-major, PyTorch's layout) with one scale and
    /// zero point for the best kernel family of this CPU.
    ///
    /// Errors: an invalid geometry, a weight of the wrong length, a scale that is not finite
    /// and positive, or a zero point outside `-128..=127`.
    pub fn pack_best(
        weight: &[i8],
        geometry: &TransposeGeometry,
        scale: f32,
        zero_point: i32,
    ) -> Result<Self> {
        Self::pack(weight, geometry, scale, zero_point, KernelKind::best())
    }

    /// [`PackedTransposeWeights::pack_best`] for an explicit kernel family.
    pub fn pack(
        weight: &[i8],
        geometry: &TransposeGeometry,
        scale: f32,
        zero_point: i32,
        kind: KernelKind,
    ) -> Result<Self> {
        let g = geometry;
        g.validate()?;
        check_len("weight", g.weight_len(), weight.len())?;
        let (cg, og, taps) = (
            g.in_channels / g.groups,
            g.out_channels / g.groups,
            g.taps(),
        );
        let rows = og * taps;
        let mut groups = Vec::with_capacity(g.groups);
        for grp in 0..g.groups {
            // wt[(o, tap), c] = W[grp·cg + c, o, tap]
            let mut wt = vec![0i8; rows * cg];
            for c in 0..cg {
                let src = &weight[(grp * cg + c) * rows..(grp * cg + c + 1) * rows];
                for (r, &v) in src.iter().enumerate() {
                    wt[r * cg + c] = v;
                }
            }
            let q = WeightQParams::PerTensor { scale, zero_point };
            groups.push(PackedWeights::pack(&wt, rows, cg, q, kind)?);
        }
        Ok(Self {
            groups,
            in_channels: g.in_channels,
            out_channels: g.out_channels,
            group_count: g.groups,
            kernel: g.kernel,
            scale,
            zero_point,
        })
    }

    /// The kernel family the weights were packed for.
    pub fn kind(&self) -> KernelKind {
        self.groups
            .first()
            .map_or_else(KernelKind::best, PackedWeights::kind)
    }

    fn check(&self, g: &TransposeGeometry) -> Result<()> {
        for (what, packed, given) in [
            ("in_channels", self.in_channels, g.in_channels),
            ("out_channels", self.out_channels, g.out_channels),
            ("groups", self.group_count, g.groups),
            ("kernel height", self.kernel[0], g.kernel[0]),
            ("kernel width", self.kernel[1], g.kernel[1]),
        ] {
            if packed != given {
                return Err(ConvError::WeightMismatch {
                    what,
                    packed,
                    given,
                });
            }
        }
        Ok(())
    }
}

fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(ConvError::Length {
            what,
            expected,
            got,
        })
    }
}

/// The per-tensor requantization vectors of `params` (numerics of [`crate::gemm::Requantize`]).
struct Requant {
    mult: f32,
    rcp: f32,
    zp: i32,
}

fn requant_params(params: &Requantize<'_>, w_scale: f32, out_channels: usize) -> Result<Requant> {
    for (what, scale) in [
        ("activation scale", params.act_scale),
        ("output scale", params.out_scale),
    ] {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(GemmError::InvalidScale { what, scale }.into());
        }
    }
    if !(0..=255).contains(&params.out_zero_point) {
        return Err(GemmError::ZeroPointOutOfRange {
            what: "output zero point",
            zero_point: params.out_zero_point,
            min: 0,
            max: 255,
        }
        .into());
    }
    if params.activation != Activation::None {
        return Err(ConvError::Geometry {
            what: "fused activation (transposed convolution has none)",
            value: 1,
        });
    }
    if let Some(b) = params.bias {
        check_len("bias", out_channels, b.len())?;
    }
    let atw = params.act_scale * w_scale;
    Ok(Requant {
        mult: atw / params.out_scale,
        rcp: (1.0f64 / f64::from(atw)) as f32,
        zp: params.out_zero_point,
    })
}

fn check_za(za: i32) -> Result<()> {
    if (0..=255).contains(&za) {
        Ok(())
    } else {
        Err(GemmError::ZeroPointOutOfRange {
            what: "input zero point",
            zero_point: za,
            min: 0,
            max: 255,
        }
        .into())
    }
}

/// Requantizes the exact sums `acc` (NHWC, O channels innermost) into `out`.
fn finish(acc: &[i32], r: &Requant, bias: Option<&[f32]>, o: usize, out: &mut [u8]) {
    for (orow, arow) in out.chunks_exact_mut(o).zip(acc.chunks_exact(o)) {
        for (c, (y, &raw)) in orow.iter_mut().zip(arow).enumerate() {
            let (ba, bb) = bias.map_or((0.0, 0.0), |b| (b[c], r.rcp));
            *y = requantize_one(raw, ba, bb, r.mult, r.zp, 0, 255);
        }
    }
}

/// Transposed convolution of the NHWC quint8 `input` (zero point `input_zero_point`) by
/// `weights`, requantized into the NHWC quint8 `out`. Returns the kernel family that ran.
///
/// Errors: an invalid geometry, weights packed for another geometry, buffers of the wrong
/// length, an input zero point outside 0..=255, invalid requantization parameters, a bias not
/// of length O, a fused activation, or a possible i32 overflow.
pub fn conv_transpose_u8s8(
    geometry: &TransposeGeometry,
    input: &[u8],
    input_zero_point: i32,
    weights: &PackedTransposeWeights,
    params: Requantize<'_>,
    out: &mut [u8],
) -> Result<KernelKind> {
    let g = geometry;
    let [oh, ow] = g.output()?;
    weights.check(g)?;
    check_len("input", g.input_len(), input.len())?;
    check_len("output", g.output_len()?, out.len())?;
    check_za(input_zero_point)?;
    let r = requant_params(&params, weights.scale, g.out_channels)?;
    let za = input_zero_point;
    let (cg, og, taps) = (
        g.in_channels / g.groups,
        g.out_channels / g.groups,
        g.taps(),
    );
    // The whole reduction (all taps of all channels) must fit in i32, as in fbgemm.
    let w_abs_max = weights
        .groups
        .iter()
        .map(PackedWeights::w_abs_max)
        .max()
        .unwrap_or(0);
    let k = cg * taps;
    let bound = (k as u64)
        .saturating_mul(za.max(255 - za) as u64)
        .saturating_mul(u64::from(w_abs_max));
    if bound > i32::MAX as u64 {
        return Err(GemmError::AccumulatorOverflow {
            k,
            a_zero_point: za,
            w_abs_max,
            bound,
        }
        .into());
    }
    let [h, w] = g.input;
    let pixels = g.batch * h * w;
    let cols = og * taps;
    let mut col = vec![0i32; pixels * cols];
    let mut acc = vec![0i32; g.batch * oh * ow * g.out_channels];
    let mut kind = weights.kind();
    for (grp, wg) in weights.groups.iter().enumerate() {
        let a = Activations {
            data: &input[grp * cg..],
            rows: pixels,
            row_stride: g.in_channels,
            zero_point: za,
        };
        kind = gemm::gemm_u8s8(
            a,
            wg,
            Output::I32 {
                out: &mut col,
                ldc: cols,
            },
        )?;
        scatter(g, [oh, ow], grp * og, og, &col, &mut acc);
    }
    finish(&acc, &r, params.bias, g.out_channels, out);
    Ok(kind)
}

/// col2im: adds each input pixel's `(o, ky, kx)` column sums onto the output pixels it reaches.
fn scatter(
    g: &TransposeGeometry,
    [oh, ow]: [usize; 2],
    o0: usize,
    og: usize,
    col: &[i32],
    acc: &mut [i32],
) {
    let [h, w] = g.input;
    let [kh, kw] = g.kernel;
    let taps = kh * kw;
    let o_all = g.out_channels;
    for n in 0..g.batch {
        for iy in 0..h {
            for ix in 0..w {
                let row = &col[((n * h + iy) * w + ix) * og * taps..][..og * taps];
                for ky in 0..kh {
                    let Some(y) = out_coord(iy, ky, g.stride[0], g.padding[0], g.dilation[0], oh)
                    else {
                        continue;
                    };
                    for kx in 0..kw {
                        let Some(x) =
                            out_coord(ix, kx, g.stride[1], g.padding[1], g.dilation[1], ow)
                        else {
                            continue;
                        };
                        let dst = &mut acc[((n * oh + y) * ow + x) * o_all + o0..][..og];
                        let tap = ky * kw + kx;
                        for (o, d) in dst.iter_mut().enumerate() {
                            *d = d.wrapping_add(row[o * taps + tap]);
                        }
                    }
                }
            }
        }
    }
}

/// The output coordinate `i·s − p + k·d` if it lies in `0..len`.
fn out_coord(i: usize, k: usize, s: usize, p: usize, d: usize, len: usize) -> Option<usize> {
    (i * s + k * d).checked_sub(p).filter(|&v| v < len)
}

/// The scalar oracle of [`conv_transpose_u8s8`]: direct sums over `(c, ky, kx)` for every
/// output element (weight unpacked, `[C, O/groups, kh, kw]`), then the same requantization.
///
/// Errors: as [`conv_transpose_u8s8`] (without the overflow check: sums are taken in i64 and
/// wrapped to i32 as the kernels wrap).
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose_reference(
    geometry: &TransposeGeometry,
    input: &[u8],
    input_zero_point: i32,
    weight: &[i8],
    weight_scale: f32,
    weight_zero_point: i32,
    params: Requantize<'_>,
) -> Result<Vec<u8>> {
    let g = geometry;
    let [oh, ow] = g.output()?;
    check_len("input", g.input_len(), input.len())?;
    check_len("weight", g.weight_len(), weight.len())?;
    check_za(input_zero_point)?;
    let r = requant_params(&params, weight_scale, g.out_channels)?;
    let (cg, og) = (g.in_channels / g.groups, g.out_channels / g.groups);
    let [h, w] = g.input;
    let [kh, kw] = g.kernel;
    let mut acc = vec![0i32; g.batch * oh * ow * g.out_channels];
    for n in 0..g.batch {
        for y in 0..oh {
            for x in 0..ow {
                for o in 0..g.out_channels {
                    let (grp, oo) = (o / og, o % og);
                    let mut sum = 0i64;
                    for ky in 0..kh {
                        let Some(iy) = in_coord(y, ky, g.stride[0], g.padding[0], g.dilation[0], h)
                        else {
                            continue;
                        };
                        for kx in 0..kw {
                            let Some(ix) =
                                in_coord(x, kx, g.stride[1], g.padding[1], g.dilation[1], w)
                            else {
                                continue;
                            };
                            for c in grp * cg..(grp + 1) * cg {
                                let a =
                                    i64::from(input[((n * h + iy) * w + ix) * g.in_channels + c]);
                                let wv = i64::from(weight[((c * og + oo) * kh + ky) * kw + kx]);
                                sum += (a - i64::from(input_zero_point))
                                    * (wv - i64::from(weight_zero_point));
                            }
                        }
                    }
                    acc[((n * oh + y) * ow + x) * g.out_channels + o] = sum as i32;
                }
            }
        }
    }
    let mut out = vec![0u8; acc.len()];
    finish(&acc, &r, params.bias, g.out_channels, &mut out);
    Ok(out)
}

/// The input coordinate `i` with `i·s − p + k·d = o`, if it is an integer in `0..len`.
fn in_coord(o: usize, k: usize, s: usize, p: usize, d: usize, len: usize) -> Option<usize> {
    let t = (o + p).checked_sub(k * d)?;
    (t.is_multiple_of(s) && t / s < len).then_some(t / s)
}
