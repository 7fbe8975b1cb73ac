//! `QSTACK_ISA=avx512vnni` caps AMX off: on an AMX machine the best family is then
//! Avx512Vnni, Amx is not runnable, packing for it fails, and a GEMM runs the AVX-512 VNNI
//! kernel. Its own test binary (the cap is read once per process); a cap set by the caller
//! is kept and then only the cap invariants are checked.

use qkernels::GemmError;
use qkernels::gemm::{self, Activations, KernelKind, Output, PackedWeights, WeightQParams};
use qkernels::isa::{self, Isa};

#[test]
fn avx512vnni_cap_turns_amx_off() {
    if std::env::var_os(isa::ISA_ENV).is_none() {
        // SAFETY: this binary's only test runs before any other thread reads the environment.
        unsafe { std::env::set_var(isa::ISA_ENV, "avx512vnni") };
    }
    let cap = isa::env_cap().expect("a known cap is set");
    assert!(!KernelKind::Amx.is_runnable() || Isa::Amx.is_at_most(cap));
    if cap != Isa::Avx512Vnni {
        return;
    }
    assert!(!KernelKind::Amx.is_runnable());
    assert!(!isa::runnable().contains(&Isa::Amx));
    let q = WeightQParams::PerTensor {
        scale: 1.0,
        zero_point: 0,
    };
    if Isa::Amx.is_supported() {
        assert_eq!(
            PackedWeights::pack(&[1; 4], 1, 4, q, KernelKind::Amx),
            Err(GemmError::UnsupportedKernel {
                kind: KernelKind::Amx
            })
        );
    }
    if Isa::Avx512Vnni.is_supported() {
        assert_eq!(isa::detect(), Isa::Avx512Vnni);
        assert_eq!(KernelKind::best(), KernelKind::Avx512Vnni);
        let (m, n, k) = (32, 48, 64);
        let packed = PackedWeights::pack_best(&vec![1; n * k], n, k, q).unwrap();
        let a = vec![2u8; m * k];
        let mut out = vec![0i32; m * n];
        let before = gemm::kernel_runs(KernelKind::Avx512Vnni);
        let acts = Activations {
            data: &a,
            rows: m,
            row_stride: k,
            zero_point: 0,
        };
        let ran = gemm::gemm_u8s8(
            acts,
            &packed,
            Output::I32 {
                out: &mut out,
                ldc: n,
            },
        );
        assert_eq!(ran, Ok(KernelKind::Avx512Vnni));
        assert!(gemm::kernel_runs(KernelKind::Avx512Vnni) > before);
        assert!(out.iter().all(|&x| x == 128));
    }
}
