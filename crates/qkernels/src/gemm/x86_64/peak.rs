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

/// Streams `data` through `vpdpbusd` `passes` times as the small-M VNNI tile reads a
/// two-panel weight (six zmm loads per step, twelve accumulators), and returns the fastest
/// pass in seconds; only whole 768-byte chunks are read. `None` without AVX-512 VNNI.
pub(crate) fn vpdpbusd_stream(data: &[i8], passes: usize) -> Option<f64> {
    if !Isa::Avx512Vnni.is_supported() {
        return None;
    }
    let mut best = f64::INFINITY;
    for _ in 0..passes {
        let start = Instant::now();
        // SAFETY: AVX-512 VNNI support was checked just above.
        let sink = unsafe { stream_loop(black_box(data)) };
        best = best.min(start.elapsed().as_secs_f64());
        black_box(sink);
    }
    Some(best)
}

/// # Safety
/// AVX-512 F and VNNI available.
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn stream_loop(data: &[i8]) -> i32 {
    let a = _mm512_set1_epi32(black_box(0x0101_0101));
    let mut even = [_mm512_setzero_si512(); 6];
    let mut odd = [_mm512_setzero_si512(); 6];
    let (chunks, _) = data.as_chunks::<768>();
    for c in chunks {
        for v in 0..6 {
            // SAFETY: both loads read 64 bytes inside the 768-byte chunk (v < 6).
            let (x, y) = unsafe {
                (
                    _mm512_loadu_si512(c.as_ptr().add(64 * v).cast()),
                    _mm512_loadu_si512(c.as_ptr().add(384 + 64 * v).cast()),
                )
            };
            even[v] = _mm512_dpbusd_epi32(even[v], a, x);
            odd[v] = _mm512_dpbusd_epi32(odd[v], a, y);
        }
    }
    let mut total = _mm512_setzero_si512();
    for c in even.into_iter().chain(odd) {
        total = _mm512_add_epi32(total, c);
    }
    _mm512_reduce_add_epi32(total)
}
