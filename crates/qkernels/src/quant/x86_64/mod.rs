//! x86-64 families. Both follow fbgemm's `QuantizeAvx2` step for step, which is what
//! [`qtensor::quantize_val`] defines: `t = x * inv_scale` (`mulps`, no FMA), `min(t, 2147483520)`
//! (`minps` returns the bound for a NaN `t`), `cvtps2dq` (round half to even; values below
//! `-2^31` give `i32::MIN`), a wrapping 32-bit add of the zero point, then saturating packs
//! (i32 -> i16 -> u8/i8), which clamp to `[qmin, qmax]` exactly. Dequantize widens, subtracts
//! the zero point in i32, converts exactly (`|q - zp| <= 510`) and multiplies once in f32.

pub(crate) mod avx2;
pub(crate) mod avx512;

/// Largest `f32` below 2^31, fbgemm's clip before the conversion.
const CLIP: f32 = 2_147_483_520.0;

/// Proof that AVX2 was detected; only [`Avx2Checked::new`] makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2Checked(());

impl Avx2Checked {
    /// The proof, if this CPU has AVX2.
    pub(crate) fn new() -> Option<Self> {
        std::arch::is_x86_feature_detected!("avx2").then_some(Avx2Checked(()))
    }
}

/// Proof that AVX-512 F and BW were detected; only [`Avx512Checked::new`] makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512Checked(());

impl Avx512Checked {
    /// The proof, if this CPU has AVX-512 F and BW.
    pub(crate) fn new() -> Option<Self> {
        (std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw"))
        .then_some(Avx512Checked(()))
    }
}
