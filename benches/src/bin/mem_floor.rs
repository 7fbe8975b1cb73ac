//! The memory-traffic floors that bound quantize/dequantize on this core (issue 2): plain
//! loops that move the same bytes as the benchmarked ops, without their arithmetic.
//!
//! Prints one JSON object per line, median of 21 runs, one thread:
//! - `fill_4mib`: storing 4 MiB into a cached buffer (what a 1M-element dequantize writes);
//! - `widen_1mib`: 1 MiB u8 → 4 MiB u32 in cache (a 1M dequantize's traffic);
//! - `read_64mib`: reading 64 MiB from memory (a 16M-element quantize's input);
//! - `narrow_64mib`: 64 MiB u32 → 16 MiB u8 (a 16M quantize's traffic);
//! - `l2_stream_1mib`: 1 MiB of L2-resident int8 streamed through `vpdpbusd` in the small-M
//!   GEMM tile's pattern (`qkernels::gemm::vpdpbusd_stream_gbps`, best of 200 passes; the
//!   ceiling of a batch-1 1024 × 1024 int8 Linear; AVX-512 VNNI CPUs only).
//!
//! Usage: `cargo run --release -p qstack-benches --bin mem_floor` (build with
//! `RUSTFLAGS="-C target-cpu=native"` for the widest vectors).

use std::hint::black_box;
use std::time::Instant;

/// Median wall time of `f` in nanoseconds (3 warm-up calls, 21 timed).
fn median_ns(mut f: impl FnMut()) -> u128 {
    for _ in 0..3 {
        f();
    }
    let mut times: Vec<u128> = (0..21)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_nanos()
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}

fn emit(case: &str, bytes: usize, ns: u128) {
    let gbs = bytes as f64 / ns.max(1) as f64;
    println!(
        "{{\"suite\":\"mem_floor\",\"case\":\"{case}\",\"bytes\":{bytes},\"ns\":{ns},\"gb_per_s\":{gbs:.1}}}"
    );
}

fn main() {
    let mut small = vec![0u32; 1 << 20];
    let ns = median_ns(|| {
        for (i, x) in small.iter_mut().enumerate() {
            *x = i as u32;
        }
        black_box(&small);
    });
    emit("fill_4mib", 4 << 20, ns);

    let src = vec![7u8; 1 << 20];
    let ns = median_ns(|| {
        for (x, &s) in small.iter_mut().zip(&src) {
            *x = u32::from(s);
        }
        black_box(&small);
    });
    emit("widen_1mib", 5 << 20, ns);

    let big = vec![1u32; 16 << 20];
    let ns = median_ns(|| {
        let sums = big.chunks_exact(64).fold([0u32; 64], |mut acc, chunk| {
            for (a, &x) in acc.iter_mut().zip(chunk) {
                *a = a.wrapping_add(x);
            }
            acc
        });
        black_box(sums);
    });
    emit("read_64mib", 64 << 20, ns);

    let mut out = vec![0u8; 16 << 20];
    let ns = median_ns(|| {
        for (o, &x) in out.iter_mut().zip(&big) {
            *o = x as u8;
        }
        black_box(&out);
    });
    emit("narrow_64mib", 80 << 20, ns);

    if let Some(gbs) = qkernels::gemm::vpdpbusd_stream_gbps(1 << 20, 200) {
        let ns = ((1u64 << 20) as f64 / gbs) as u128;
        emit("l2_stream_1mib", 1 << 20, ns);
    }
}
