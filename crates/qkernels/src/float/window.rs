//! [`ConvWindow`]: the sliding window of a 2-d convolution (input and kernel sizes, stride,
//! zero padding, dilation), shared by the direct float convolutions ([`super::Conv2dGeom`],
//! [`super::DepthwiseGeom`]), and the output-size rule.

use super::error::{FloatGemmError, Result};

/// The window of a 2-d convolution over `input` planes: a `kernel` moved by `stride`, over
/// the input zero-padded by `padding` on each side, with taps `dilation` apart. Built with
/// [`ConvWindow::new`] and the setters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvWindow {
    /// Input `[height, width]`.
    pub input: [usize; 2],
    /// Kernel `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// Zero padding `[height, width]` on each side.
    pub padding: [usize; 2],
    /// Dilation `[height, width]`.
    pub dilation: [usize; 2],
}

impl ConvWindow {
    /// Stride 1, no padding, dilation 1.
    pub fn new(input: [usize; 2], kernel: [usize; 2]) -> Self {
        Self {
            input,
            kernel,
            stride: [1; 2],
            padding: [0; 2],
            dilation: [1; 2],
        }
    }

    /// Sets the stride.
    pub fn stride(mut self, stride: [usize; 2]) -> Self {
        self.stride = stride;
        self
    }

    /// Sets the zero padding on each side.
    pub fn padding(mut self, padding: [usize; 2]) -> Self {
        self.padding = padding;
        self
    }

    /// Sets the dilation.
    pub fn dilation(mut self, dilation: [usize; 2]) -> Self {
        self.dilation = dilation;
        self
    }

    /// Taps of the kernel, `kh · kw`.
    pub fn taps(&self) -> usize {
        self.kernel[0] * self.kernel[1]
    }

    /// Floats of one input plane, `h · w`.
    pub fn input_plane(&self) -> usize {
        self.input[0] * self.input[1]
    }

    /// The output `[height, width]`.
    ///
    /// Errors ([`FloatGemmError::Conv`]): a zero kernel, stride or dilation, or a dilated
    /// kernel larger than the padded input.
    pub fn output(&self) -> Result<[usize; 2]> {
        let Self {
            input,
            kernel,
            stride,
            padding,
            dilation,
        } = *self;
        if kernel.contains(&0) || stride.contains(&0) || dilation.contains(&0) {
            return Err(conv_error(format!(
                "kernel {kernel:?}, stride {stride:?} and dilation {dilation:?} must be positive"
            )));
        }
        let mut out = [0; 2];
        for (a, o) in out.iter_mut().enumerate() {
            let span = (kernel[a] - 1)
                .checked_mul(dilation[a])
                .and_then(|s| s.checked_add(1));
            let padded = padding[a]
                .checked_mul(2)
                .and_then(|p| p.checked_add(input[a]));
            match (padded, span) {
                (Some(p), Some(s)) if p >= s => *o = (p - s) / stride[a] + 1,
                _ => {
                    return Err(conv_error(format!(
                        "input {input:?} with padding {padding:?} is smaller than kernel {kernel:?} dilated by {dilation:?}"
                    )));
                }
            }
        }
        Ok(out)
    }
}

/// A [`FloatGemmError::Conv`] with the given reason.
pub(super) fn conv_error(reason: String) -> FloatGemmError {
    FloatGemmError::Conv { reason }
}

/// `Ok` when a buffer named `what` has the `want`ed length, else the error naming both.
pub(super) fn expect_len(what: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(conv_error(format!(
            "{what} has {got} values, expected {want}"
        )))
    }
}
