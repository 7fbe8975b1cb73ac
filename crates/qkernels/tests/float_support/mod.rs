//! Shared by the float direct-conv oracle tests: the kernel family this CPU should pick,
//! derived from the CPU features independently of `DirectConvKernel::best`.

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
