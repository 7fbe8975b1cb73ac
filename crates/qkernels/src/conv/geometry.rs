//! [`ConvGeometry`]: the shape of an N-d (1, 2 or 3 spatial dims) grouped convolution.
//!
//! Spatial values are stored as `[depth, height, width]`; a 2-d convolution has depth 1 and a
//! 1-d convolution depth and height 1 (the constructors right-align shorter slices).

use super::error::{ConvError, Result};

/// Shape of a grouped, strided, padded, dilated convolution on NDHWC tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvGeometry {
    /// Batch size N.
    pub batch: usize,
    /// Input channels C.
    pub in_channels: usize,
    /// Output channels O.
    pub out_channels: usize,
    /// Groups (C and O must be divisible by it).
    pub groups: usize,
    /// Input spatial size `[D, H, W]`.
    pub input: [usize; 3],
    /// Kernel size `[kd, kh, kw]`.
    pub kernel: [usize; 3],
    /// Stride (each ≥ 1).
    pub stride: [usize; 3],
    /// Zero padding on both sides (filled with the input zero point).
    pub padding: [usize; 3],
    /// Dilation (each ≥ 1).
    pub dilation: [usize; 3],
}

/// Right-aligns `v` (1 to 3 values) into three, filling leading dims with `fill`.
fn align(what: &'static str, v: &[usize], fill: usize) -> Result<[usize; 3]> {
    if v.is_empty() || v.len() > 3 {
        return Err(ConvError::Geometry {
            what,
            value: v.len(),
        });
    }
    let mut out = [fill; 3];
    out[3 - v.len()..].copy_from_slice(v);
    Ok(out)
}

impl ConvGeometry {
    /// A convolution with `input.len()` spatial dims (1, 2 or 3), stride 1, no padding,
    /// dilation 1. `kernel` must have as many dims as `input`.
    pub fn new(
        batch: usize,
        in_channels: usize,
        out_channels: usize,
        groups: usize,
        input: &[usize],
        kernel: &[usize],
    ) -> Result<Self> {
        if kernel.len() != input.len() {
            return Err(ConvError::Geometry {
                what: "kernel dims (must equal input dims)",
                value: kernel.len(),
            });
        }
        Ok(ConvGeometry {
            batch,
            in_channels,
            out_channels,
            groups,
            input: align("spatial dims", input, 1)?,
            kernel: align("kernel dims", kernel, 1)?,
            stride: [1; 3],
            padding: [0; 3],
            dilation: [1; 3],
        })
    }

    /// Sets the stride (same number of dims as the input).
    pub fn with_stride(mut self, stride: &[usize]) -> Result<Self> {
        self.stride = align("stride dims", stride, 1)?;
        Ok(self)
    }

    /// Sets the padding (same number of dims as the input).
    pub fn with_padding(mut self, padding: &[usize]) -> Result<Self> {
        self.padding = align("padding dims", padding, 0)?;
        Ok(self)
    }

    /// Sets the dilation (same number of dims as the input).
    pub fn with_dilation(mut self, dilation: &[usize]) -> Result<Self> {
        self.dilation = align("dilation dims", dilation, 1)?;
        Ok(self)
    }

    /// Input channels per group.
    pub fn group_in(&self) -> usize {
        self.in_channels / self.groups.max(1)
    }

    /// Output channels per group.
    pub fn group_out(&self) -> usize {
        self.out_channels / self.groups.max(1)
    }

    /// Kernel taps `kd·kh·kw`.
    pub fn taps(&self) -> usize {
        self.kernel.iter().product()
    }

    /// GEMM reduction length per group: `taps · C/groups`.
    pub fn k(&self) -> usize {
        self.taps() * self.group_in()
    }

    /// Checks every value and returns the output spatial size `[OD, OH, OW]`.
    pub fn output(&self) -> Result<[usize; 3]> {
        let positive = [
            ("batch", self.batch),
            ("in_channels", self.in_channels),
            ("out_channels", self.out_channels),
            ("groups", self.groups),
        ];
        for (what, value) in positive {
            if value == 0 {
                return Err(ConvError::Geometry { what, value });
            }
        }
        for d in 0..3 {
            for (what, value) in [
                ("input size", self.input[d]),
                ("kernel size", self.kernel[d]),
                ("stride", self.stride[d]),
                ("dilation", self.dilation[d]),
            ] {
                if value == 0 {
                    return Err(ConvError::Geometry { what, value });
                }
            }
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
        let mut out = [0; 3];
        #[allow(clippy::needless_range_loop)] // d indexes five arrays
        for d in 0..3 {
            let extent = self.dilation[d]
                .checked_mul(self.kernel[d] - 1)
                .and_then(|x| x.checked_add(1))
                .ok_or(ConvError::Geometry {
                    what: "dilated kernel extent",
                    value: usize::MAX,
                })?;
            let padded = self.padding[d]
                .checked_mul(2)
                .and_then(|p| p.checked_add(self.input[d]))
                .ok_or(ConvError::Geometry {
                    what: "padding",
                    value: self.padding[d],
                })?;
            if extent > padded {
                return Err(ConvError::KernelTooLarge {
                    dim: d,
                    extent,
                    padded,
                });
            }
            out[d] = (padded - extent) / self.stride[d] + 1;
        }
        Ok(out)
    }

    /// Elements of the NDHWC input.
    pub fn input_len(&self) -> usize {
        self.batch * self.input.iter().product::<usize>() * self.in_channels
    }

    /// Elements of the NDHWC output (call after [`ConvGeometry::output`] succeeded).
    pub fn output_len(&self) -> Result<usize> {
        Ok(self.batch * self.output()?.iter().product::<usize>() * self.out_channels)
    }

    /// Whether this is a 1×1(×1) convolution with stride 1 and no padding: a plain GEMM.
    pub fn is_pointwise(&self) -> bool {
        self.kernel == [1; 3] && self.stride == [1; 3] && self.padding == [0; 3]
    }

    /// Whether every group has one input channel and one or two output channels (depthwise
    /// with channel multiplier 1 or 2), which the direct depthwise kernel runs.
    pub fn is_depthwise(&self) -> bool {
        self.groups > 1 && self.group_in() == 1 && matches!(self.group_out(), 1 | 2)
    }

    /// Whether PyTorch's fbgemm engine runs this convolution on its depthwise fast path
    /// (`takeDepthWiseFastPath`: groups = C a multiple of 8, O = C or 2C, 2-d or 3-d, square
    /// 3×3 / 5×5 spatial kernel (each dim 3 or 5), stride 1 or 2, no dilation, "same"
    /// padding `(k − 1)/2`). That kernel multiplies u8 activations by i8 weights with
    /// `vpmaddubsw`, so each pair of consecutive taps `(2j, 2j + 1)` is summed with
    /// saturation to i16 before the exact i32 accumulation, on every x86 CPU; qstack
    /// reproduces this for bit-exact results.
    pub fn fbgemm_depthwise_saturates(&self) -> bool {
        let spatial3 = self.input[0] > 1 || self.kernel[0] > 1;
        self.is_depthwise()
            && self.groups.is_multiple_of(8)
            && self.kernel[1] == self.kernel[2]
            && (if spatial3 { 0..3 } else { 1..3 }).all(|d| {
                matches!(self.kernel[d], 3 | 5)
                    && matches!(self.stride[d], 1 | 2)
                    && self.dilation[d] == 1
                    && self.padding[d] == (self.kernel[d] - 1) / 2
            })
    }

    /// The output coordinates of dim `d` (of `out_dim` outputs) whose whole window lies
    /// inside the input (no padding tap). Read by the x86-64 row-run kernel only.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn inside_range(&self, d: usize, out_dim: usize) -> std::ops::Range<usize> {
        let extent = (self.kernel[d] - 1) * self.dilation[d];
        let lo = self.padding[d].div_ceil(self.stride[d]);
        let hi = match (self.input[d] + self.padding[d]).checked_sub(extent + 1) {
            Some(last) => (last / self.stride[d] + 1).min(out_dim),
            None => 0,
        };
        lo..hi.max(lo)
    }

    /// Input coordinate of output coordinate `o` at kernel offset `t` in dim `d`, if it is
    /// inside the input (else it is padding).
    #[inline]
    pub(crate) fn input_coord(&self, d: usize, o: usize, t: usize) -> Option<usize> {
        (o * self.stride[d] + t * self.dilation[d])
            .checked_sub(self.padding[d])
            .filter(|&i| i < self.input[d])
    }
}
