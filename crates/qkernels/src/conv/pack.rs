//! [`PackedConvWeights`]: qint8 convolution weights in PyTorch layout
//! `[O][C/groups][kd][kh][kw]`, packed once for one GEMM kernel family.
//!
//! Grouped and dense convolutions keep one [`PackedWeights`] per group whose reduction index
//! is `k = ((tz·kh + ty)·kw + tx)·(C/groups) + c`, so one kernel tap is one contiguous
//! channel run of an NDHWC input pixel. Depthwise convolutions (one input and one output
//! channel per group) keep `w − zw` as i16 in `[tap][channel]` order for the direct kernel.

use super::error::{ConvError, Result};
use super::geometry::ConvGeometry;
use crate::gemm::{KernelKind, PackedWeights, WeightQParams};

/// Depthwise weights (one input channel, `mult` ∈ {1, 2} output channels per group).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DepthwiseWeights {
    /// Raw weights `w[o, t]` as i16 in `[tap][O]` order.
    pub w: Vec<i16>,
    /// `Σ_t w[o, t] − zw[o]·taps` per output channel (the activation zero point's factor).
    pub col_offsets: Vec<i32>,
    /// Weight zero points per output channel.
    pub zero_points: Vec<i32>,
    /// Output channels per input channel (1 or 2).
    pub mult: usize,
    /// Carries the qparams for the requantization (an `O × 1` zero matrix).
    pub qparams: PackedWeights,
    /// The weights of tap pairs `(2p, 2p + 1)` for the AVX2 row kernel's `vpmaddubsw`:
    /// per 32-channel block and pair, 64 bytes `(w[c, 2p], w[c, 2p + 1])` in the lane order of
    /// `vpunpck{l,h}bw` (channels 0–7, 16–23, then 8–15, 24–31); zero for a missing odd tap
    /// and for channels ≥ O.
    pub pairs8: Vec<i8>,
    /// The same pairs as i16 for `vpmaddwd`: per block and pair, four vectors of eight
    /// channels in accumulator order ([`dw_lane_channel`]).
    pub pairs16: Vec<i16>,
    /// The AVX-512 row kernel's weight vectors, built on first use (one per product).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub layouts: Layouts,
}

/// Weight layouts a kernel derives from the packed weights on its first call and keeps
/// with them (the AVX-512 depthwise row kernel's, one per product, indexed by it), so calls
/// do not rebuild them. A cache, not part of the weights' value: every two compare equal,
/// a clone starts empty.
#[derive(Default)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86 kernels only
pub(crate) struct Layouts(pub [std::sync::OnceLock<Vec<i8>>; 3]);

impl Clone for Layouts {
    fn clone(&self) -> Self {
        Layouts::default()
    }
}

impl PartialEq for Layouts {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Layouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Layouts")
    }
}

/// Channels of one vector block of the depthwise row kernel.
pub(crate) const DW_BLOCK: usize = 32;

/// Channel (within its 32-channel block) of lane `l` (0..8) of accumulator vector `j` (0..4)
/// of the depthwise row kernel: vectors hold channels `4j..4j + 4` and `16 + 4j..20 + 4j`,
/// the order `vpunpck{l,h}wd` produces from the block's two halves.
pub(crate) fn dw_lane_channel(j: usize, l: usize) -> usize {
    (l / 4) * 16 + 4 * j + l % 4
}

/// `(pairs8, pairs16)` of [`DepthwiseWeights`] from `w` in `[tap][O]` order.
fn interleave_pairs(w: &[i16], taps: usize, o: usize) -> (Vec<i8>, Vec<i16>) {
    let blocks = o.div_ceil(DW_BLOCK);
    let pairs = taps.div_ceil(2);
    let wt = |t: usize, c: usize| if t < taps && c < o { w[t * o + c] } else { 0 };
    let mut p8 = vec![0i8; blocks * pairs * 64];
    let mut p16 = vec![0i16; blocks * pairs * 64];
    for b in 0..blocks {
        for p in 0..pairs {
            let base = (b * pairs + p) * 64;
            for i in 0..64 {
                // bytes: two vectors (low / high unpack), each two 128-bit lanes of 8 pairs
                let (half, lane, within) = (i / 32, (i % 32) / 16, i % 16);
                let c = b * DW_BLOCK + lane * 16 + half * 8 + within / 2;
                // the values are i8 weights widened to i16, so narrowing back is exact
                p8[base + i] = wt(2 * p + within % 2, c) as i8;
                // words: four vectors (one per accumulator), each two lanes of 4 pairs
                let (j, e) = (i / 16, i % 16);
                let c = b * DW_BLOCK + dw_lane_channel(j, (e / 8) * 4 + (e % 8) / 2);
                p16[base + i] = wt(2 * p + e % 2, c);
            }
        }
    }
    (p8, p16)
}

/// Largest O of the direct small-conv kernel.
pub(crate) const SMALL_MAX_OUT: usize = 8;
/// Largest K (`taps · C`) of the direct small-conv kernel.
pub(crate) const SMALL_MAX_K: usize = 128;

/// A 64-byte aligned line of [`RowRunWeights`] bytes (zmm loads never split cache lines).
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
pub(crate) struct Line64(pub [i8; 64]);

/// Output channels per panel of [`RowRunWeights`] (four zmm of 16 i32 accumulators).
pub(crate) const ROW_RUN_PANEL: usize = 64;

/// One-group weights of the AVX-512 VNNI row-run kernel (`conv::row_run`): the reduction
/// is split into `runs = kd·kh` kernel rows of `run = kw·C` values (one contiguous NDHWC
/// run when the width dilation is 1), each zero-padded to `run4` (a multiple of 4 so that
/// `vpdpbusd`'s 4-byte groups never straddle two runs; of 64 when packed for the AMX
/// family, whose `tdpbusd` K steps are 64 bytes: `conv::row_run_amx`). Output channels are packed in panels
/// of up to [`ROW_RUN_PANEL`] columns (width rounded up to 16, extra columns zero), each
/// panel `[runs·run4/4][width][4]` bytes; panel `p` starts at byte `p·quads·256`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RowRunWeights {
    pub lines: Vec<Line64>,
    pub runs: usize,
    pub run: usize,
    pub run4: usize,
    pub o: usize,
}

impl RowRunWeights {
    /// Packs `mat` (`o × runs·run` row-major, reduction index `t·run + j`), each run
    /// zero-padded to a multiple of `align` (4, or 64 for the AMX kernel's K steps).
    fn pack(mat: &[i8], o: usize, runs: usize, run: usize, align: usize) -> Self {
        let run4 = run.div_ceil(align) * align;
        let quads = runs * run4 / 4;
        let k = runs * run;
        let total = o.div_ceil(ROW_RUN_PANEL) * quads * ROW_RUN_PANEL * 4;
        let mut lines = vec![Line64([0; 64]); total.div_ceil(64)];
        let bytes: &mut [i8] = bytemuck::cast_slice_mut(&mut lines);
        for n in 0..o {
            let (p, j) = (n / ROW_RUN_PANEL, n % ROW_RUN_PANEL);
            let width = Self::width_of(o, p);
            let base = p * quads * ROW_RUN_PANEL * 4;
            for t in 0..runs {
                for i in 0..run {
                    let kq = t * run4 + i;
                    bytes[base + ((kq / 4) * width + j) * 4 + kq % 4] = mat[n * k + t * run + i];
                }
            }
        }
        RowRunWeights {
            lines,
            runs,
            run,
            run4,
            o,
        }
    }

    /// Width (columns, a multiple of 16) of panel `p` for `o` output channels.
    pub(crate) fn width_of(o: usize, p: usize) -> usize {
        (o - p * ROW_RUN_PANEL).min(ROW_RUN_PANEL).div_ceil(16) * 16
    }

    /// 4-byte groups of the padded reduction (`runs·run4/4`).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn quads(&self) -> usize {
        self.runs * self.run4 / 4
    }

    /// Panel `p`'s bytes (read by the x86-64 row-run kernel only).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn panel(&self, p: usize) -> &[i8] {
        let bytes: &[i8] = bytemuck::cast_slice(&self.lines);
        let start = p * self.quads() * ROW_RUN_PANEL * 4;
        &bytes[start..start + self.quads() * Self::width_of(self.o, p) * 4]
    }
}

/// Input channels from which one-group convolutions packed for the AMX family take the GEMM
/// forms instead of the row-run kernel.
pub(crate) const AMX_GEMM_MIN_CHANNELS: usize = 128;

/// Whether [`PackedConvWeights::pack`] makes [`Form::RowRun`] weights (checked after the
/// depthwise and small-C forms).
pub(crate) fn row_run_packs(geometry: &ConvGeometry, kind: KernelKind) -> bool {
    let family = match kind {
        KernelKind::Avx512Vnni => true,
        // AMX runs wide reductions faster as GEMMs (the 1×1 as a direct GEMM, K×K as the
        // implicit GEMM on `tdpbusd` tiles): measured 2.2× the row-run kernel at C = 256, 3×3
        // and 1.4× at C = 256, 1×1; below, the row-run form runs on the AMX row-run kernel
        // (`conv::row_run_amx`; 1,64,56,64,3: 453 µs on VNNI row runs, ~200 µs on AMX).
        KernelKind::Amx => geometry.in_channels < AMX_GEMM_MIN_CHANNELS,
        _ => false,
    };
    family
        && geometry.groups == 1
        && !(geometry.out_channels <= SMALL_MAX_OUT && geometry.k() <= SMALL_MAX_K)
}

/// How the weights are stored.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Form {
    /// One GEMM weight matrix per group (`O/groups × taps·C/groups`).
    Gemm(Vec<PackedWeights>),
    /// One group on AVX-512 VNNI (pointwise too): the row-run layout, plus the GEMM packing
    /// (qparams, weight sums; and the implicit-GEMM fallback for width-dilated calls).
    RowRun(RowRunWeights, Vec<PackedWeights>),
    /// Direct depthwise kernel.
    Depthwise(DepthwiseWeights),
    /// Few output channels and a short reduction (e.g. LeNet's first layer, C = 1..4):
    /// `K × 8` weights (`W[o, k]` at `k·8 + o`, zero for `o ≥ O`) for the direct small-conv
    /// kernel, plus the GEMM packing (for the qparams and weight sums).
    Small(Vec<i32>, PackedWeights),
}

/// Convolution weights packed for one kernel family.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedConvWeights {
    kind: KernelKind,
    in_channels: usize,
    out_channels: usize,
    groups: usize,
    kernel: [usize; 3],
    pub(crate) form: Form,
}

/// The qparams of output channels `o0..o0 + n`.
fn slice_qparams<'a>(q: &WeightQParams<'a>, o0: usize, n: usize) -> WeightQParams<'a> {
    match *q {
        WeightQParams::PerTensor { .. } => *q,
        WeightQParams::PerChannel {
            scales,
            zero_points,
        } => WeightQParams::PerChannel {
            scales: &scales[o0..o0 + n],
            zero_points: &zero_points[o0..o0 + n],
        },
    }
}

impl PackedConvWeights {
    /// Packs `weights` (`[O][C/groups][kd][kh][kw]`, the channel, group and kernel values of
    /// `geometry`) for `kind`.
    ///
    /// Errors: an invalid geometry, a weight buffer of the wrong length, per-channel qparams
    /// not of length O, invalid scales or zero points, or a kind this process cannot run.
    pub fn pack(
        weights: &[i8],
        geometry: &ConvGeometry,
        qparams: WeightQParams<'_>,
        kind: KernelKind,
    ) -> Result<Self> {
        geometry.output()?;
        let (cg, og, taps) = (geometry.group_in(), geometry.group_out(), geometry.taps());
        let o = geometry.out_channels;
        let expected = o * cg * taps;
        if weights.len() != expected {
            return Err(ConvError::Length {
                what: "weights",
                expected,
                got: weights.len(),
            });
        }
        if let WeightQParams::PerChannel {
            scales,
            zero_points,
        } = qparams
            && (scales.len() != o || zero_points.len() != o)
        {
            return Err(ConvError::Length {
                what: "per-channel weight qparams",
                expected: o,
                got: scales.len().min(zero_points.len()),
            });
        }
        let form = if geometry.is_depthwise() {
            let carrier = PackedWeights::pack(&vec![0i8; o], o, 1, qparams, kind)?;
            let zero_points = carrier.zero_points().to_vec();
            let mut w = vec![0i16; taps * o];
            let mut col_offsets = vec![0i32; o];
            for oc in 0..o {
                for t in 0..taps {
                    let v = i16::from(weights[oc * taps + t]);
                    w[t * o + oc] = v;
                    col_offsets[oc] += i32::from(v);
                }
                col_offsets[oc] -= zero_points[oc] * taps as i32;
            }
            let (pairs8, pairs16) = interleave_pairs(&w, taps, o);
            Form::Depthwise(DepthwiseWeights {
                pairs8,
                pairs16,
                layouts: Layouts::default(),
                w,
                col_offsets,
                zero_points,
                mult: og,
                qparams: carrier,
            })
        } else {
            let k = taps * cg;
            let mut mats = Vec::with_capacity(geometry.groups);
            let mut mat = vec![0i8; og * k];
            for grp in 0..geometry.groups {
                for n in 0..og {
                    let oc = grp * og + n;
                    for c in 0..cg {
                        for t in 0..taps {
                            mat[n * k + t * cg + c] = weights[(oc * cg + c) * taps + t];
                        }
                    }
                }
                let q = slice_qparams(&qparams, grp * og, og);
                mats.push(PackedWeights::pack(&mat, og, k, q, kind)?);
            }
            // The small-C kernel sums exactly; the saturating family must pair the reduction
            // as fbgemm's im2col does, which the implicit GEMM path over `mats` does.
            if geometry.groups == 1
                && !kind.saturates_pairs()
                && o <= SMALL_MAX_OUT
                && k <= SMALL_MAX_K
                && !geometry.is_pointwise()
            {
                // transposed to [k][8] (columns o ≥ O are zero) for 8-lane accumulation
                let mut wt = vec![0i32; k * 8];
                for n in 0..o {
                    for kk in 0..k {
                        wt[kk * 8 + n] = i32::from(mat[n * k + kk]);
                    }
                }
                Form::Small(wt, mats.pop().expect("one group"))
            } else if row_run_packs(geometry, kind) {
                let runs = geometry.kernel[0] * geometry.kernel[1];
                // the AMX row-run kernel steps through K 64 bytes at a time
                let align = if kind == KernelKind::Amx { 64 } else { 4 };
                let rr = RowRunWeights::pack(&mat, o, runs, k / runs, align);
                Form::RowRun(rr, mats)
            } else {
                Form::Gemm(mats)
            }
        };
        Ok(PackedConvWeights {
            kind,
            in_channels: geometry.in_channels,
            out_channels: o,
            groups: geometry.groups,
            kernel: geometry.kernel,
            form,
        })
    }

    /// Packs for [`KernelKind::best`].
    pub fn pack_best(
        weights: &[i8],
        geometry: &ConvGeometry,
        qparams: WeightQParams<'_>,
    ) -> Result<Self> {
        Self::pack(weights, geometry, qparams, KernelKind::best())
    }

    /// The kernel family the weights were packed for.
    pub fn kind(&self) -> KernelKind {
        self.kind
    }

    /// Which path runs these weights: `"depthwise"`, `"small"` (direct few-output kernel),
    /// `"row-run"` (the AVX-512 VNNI kernel-row kernel; implicit GEMM for width-dilated
    /// geometries) or `"gemm"` (direct GEMM for pointwise convolutions, implicit GEMM
    /// otherwise).
    pub fn path(&self) -> &'static str {
        match self.form {
            Form::Depthwise(_) => "depthwise",
            Form::Small(..) => "small",
            Form::RowRun(..) => "row-run",
            Form::Gemm(_) => "gemm",
        }
    }

    /// Whether the direct depthwise kernel runs these weights.
    pub fn is_depthwise(&self) -> bool {
        matches!(self.form, Form::Depthwise(_))
    }

    /// Errors unless `g` has the channels, groups and kernel the weights were packed for.
    pub(crate) fn check(&self, g: &ConvGeometry) -> Result<()> {
        for (what, packed, given) in [
            ("in_channels", self.in_channels, g.in_channels),
            ("out_channels", self.out_channels, g.out_channels),
            ("groups", self.groups, g.groups),
            ("kernel depth", self.kernel[0], g.kernel[0]),
            ("kernel height", self.kernel[1], g.kernel[1]),
            ("kernel width", self.kernel[2], g.kernel[2]),
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
