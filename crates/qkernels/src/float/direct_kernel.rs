//! [`DirectConvKernel`]: the families of the direct f32 convolutions ([`super::conv2d`] and
//! [`super::depthwise_conv2d`]), which ones this process may run, and the best one.

use crate::isa::{self, Isa};

/// A direct f32 convolution kernel family. All families give identical results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DirectConvKernel {
    /// Portable Rust (`f32::mul_add` chains).
    Scalar,
    /// x86-64 AVX2 + FMA (conv2d: tiles of up to 6 output channels × 16 outputs in 12
    /// registers; depthwise: 8 outputs per vector, 3 rows × up to 4 vectors per pass over
    /// the taps).
    Avx2Fma,
    /// x86-64 AVX-512F + VL (gated at the `avx512vnni` level, the lowest AVX-512 level of
    /// [`Isa`]): depthwise 3 x 3 and 5 x 5 undilated planes of stride 1 or 2 are read in place, no
    /// padded copy (512-bit vectors, padding from load masks); other 3 x 3 planes with stride-1
    /// rows load each input row once for 4 output rows (256-bit vectors, all 9 weights in the
    /// 32 registers); every other shape and conv2d run as [`DirectConvKernel::Avx2Fma`].
    Avx512,
}

impl DirectConvKernel {
    /// Every family, lowest first.
    pub const ALL: [DirectConvKernel; 3] = [
        DirectConvKernel::Scalar,
        DirectConvKernel::Avx2Fma,
        DirectConvKernel::Avx512,
    ];

    /// The lowercase name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            DirectConvKernel::Scalar => "scalar",
            DirectConvKernel::Avx2Fma => "avx2-fma",
            DirectConvKernel::Avx512 => "avx512",
        }
    }

    fn isa(self) -> Isa {
        match self {
            DirectConvKernel::Scalar => Isa::Scalar,
            DirectConvKernel::Avx2Fma => Isa::Avx2,
            DirectConvKernel::Avx512 => Isa::Avx512Vnni,
        }
    }

    /// Whether this process may run the family: compiled for this architecture, supported by
    /// the CPU (AVX2 and FMA; AVX-512 F/BW/VL/VNNI), and not above the `QSTACK_ISA` cap.
    pub fn is_runnable(self) -> bool {
        let level = self.isa();
        isa::env_cap().is_none_or(|cap| level.is_at_most(cap)) && level.is_supported()
    }

    /// The fastest runnable family.
    pub fn best() -> DirectConvKernel {
        DirectConvKernel::ALL
            .into_iter()
            .rev()
            .find(|k| k.is_runnable())
            .unwrap_or(DirectConvKernel::Scalar)
    }
}
