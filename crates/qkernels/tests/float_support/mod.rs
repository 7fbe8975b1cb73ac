//! Shared by the float convolution tests (each binary uses a part): deterministic data, the
//! runnable families, and the kernel family this CPU should pick, derived from the CPU
//! features independently of `DirectConvKernel::best`.

#![allow(dead_code)] // every test binary compiles this module and uses a part of it

use qkernels::float::DirectConvKernel;

/// The direct-conv family dispatch must choose on this x86 CPU (AVX-512 F/BW/VL/VNNI, else
/// AVX2 + FMA, else scalar); `None` on other architectures or under a `QSTACK_ISA` cap.
pub fn expected_direct_kernel() -> Option<DirectConvKernel> {
    #[cfg(target_arch = "x86_64")]
    if std::env::var_os("QSTACK_ISA").is_none() {
        use std::arch::is_x86_feature_detected as has;
        let avx512 = has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512vnni");
        return Some(if avx512 {
            DirectConvKernel::Avx512
        } else if has!("avx2") && has!("fma") {
            DirectConvKernel::Avx2Fma
        } else {
            DirectConvKernel::Scalar
        });
    }
    None
}

/// Deterministic values in [-2, 2) (xorshift32).
pub fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 22) as f32 - 2.0
        })
        .collect()
}

/// Every family this CPU can run.
pub fn runnable() -> Vec<DirectConvKernel> {
    DirectConvKernel::ALL
        .into_iter()
        .filter(|k| k.is_runnable())
        .collect()
}
