//! A register-only `vpdpbusd` zmm loop: the machine's int8 multiply-accumulate ceiling that
//! benchmarks report their GEMM throughput against.

use std::arch::x86_64::*;
use std::hint::black_box;
use std::time::Instant;

use crate::isa::Isa;

/// Runs `iterations × 16` independent `vpdpbusd zmm` and returns (ops, seconds), counting
/// 2 ops per multiply-accumulate (64 MAC per instruction). `None` without AVX-512 VNNI.
pub(crate) fn vpdpbusd_zmm(iterations: u64) -> Option<(f64, f64)> {
    if !Isa::Avx512Vnni.is_supported() {
        return None;
    }
    let start = Instant::now();
    // SAFETY: AVX-512 VNNI support was checked just above.
    let sink = unsafe { dpbusd_loop(black_box(iterations)) };
    let secs = start.elapsed().as_secs_f64();
    black_box(sink);
    Some((iterations as f64 * 16.0 * 128.0, secs))
}

/// # Safety
/// AVX-512 F and VNNI available.
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn dpbusd_loop(iterations: u64) -> i32 {
    let a = _mm512_set1_epi32(black_box(0x0101_0101));
    let b = _mm512_set1_epi32(black_box(0x0203_0405));
    let mut acc = [_mm512_setzero_si512(); 16];
    for _ in 0..iterations {
        for c in acc.iter_mut() {
            *c = _mm512_dpbusd_epi32(*c, a, b);
        }
    }
    let mut total = _mm512_setzero_si512();
    for c in acc {
        total = _mm512_add_epi32(total, c);
    }
    _mm512_reduce_add_epi32(total)
}
