//! qkernels' runtime-dispatched SIMD quantize (f32 -> quint8) and dequantize at 1M and 16M
//! elements, single-threaded and on the default pool, next to qtensor's portable path: the
//! allocating QTensor-level calls and the `_into` forms that reuse one output buffer.
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use qkernels::quant;
use qtensor::{QDType, Tensor, quantize_per_tensor};
use rayon::ThreadPool;

const SIZES: [usize; 2] = [1 << 20, 1 << 24];
const SCALE: f64 = 0.05;
const ZERO_POINT: i64 = 128;

/// Deterministic values spread over the quantized range (and a little beyond).
fn input(n: usize) -> Tensor<f32> {
    Tensor::from_fn(&[n], |i| {
        ((i.wrapping_mul(2_654_435_761) % 6000) as f32 - 2500.0) * 0.005
    })
}

fn pools() -> Vec<(&'static str, Option<ThreadPool>)> {
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    vec![("single_thread", Some(single)), ("default_pool", None)]
}

/// Runs `f` on `pool` (or on the global pool).
fn on(pool: Option<&ThreadPool>, f: impl FnOnce() + Send) {
    match pool {
        Some(p) => p.install(f),
        None => f(),
    }
}

fn bench_quantize(c: &mut Criterion) {
    let mut group = c.benchmark_group("quantize_quint8_simd");
    group.sample_size(10);
    for n in SIZES {
        let x = input(n);
        let mut out = vec![0u8; n];
        group.throughput(Throughput::Elements(n as u64));
        for (pool_name, pool) in pools() {
            let id = |imp: &str| BenchmarkId::new(format!("{imp}/{pool_name}"), n);
            group.bench_function(id("qtensor"), |b| {
                on(pool.as_ref(), || {
                    b.iter(|| quantize_per_tensor(&x, SCALE, ZERO_POINT, QDType::QUInt8))
                });
            });
            group.bench_function(id("qkernels"), |b| {
                on(pool.as_ref(), || {
                    b.iter(|| {
                        quant::quantize_per_tensor_fast(&x, SCALE, ZERO_POINT, QDType::QUInt8)
                    })
                });
            });
            group.bench_function(id("qkernels_into"), |b| {
                on(pool.as_ref(), || {
                    b.iter(|| {
                        quant::quantize_u8(x.data(), SCALE as f32, ZERO_POINT as i32, &mut out)
                    })
                });
            });
        }
    }
    group.finish();
}

fn bench_dequantize(c: &mut Criterion) {
    let mut group = c.benchmark_group("dequantize_quint8_simd");
    group.sample_size(10);
    for n in SIZES {
        let q = quantize_per_tensor(&input(n), SCALE, ZERO_POINT, QDType::QUInt8)
            .expect("valid qparams");
        let mut out = vec![0.0f32; n];
        group.throughput(Throughput::Elements(n as u64));
        for (pool_name, pool) in pools() {
            let id = |imp: &str| BenchmarkId::new(format!("{imp}/{pool_name}"), n);
            group.bench_function(id("qtensor"), |b| {
                on(pool.as_ref(), || b.iter(|| q.dequantize()));
            });
            group.bench_function(id("qkernels"), |b| {
                on(pool.as_ref(), || b.iter(|| quant::dequantize_fast(&q)));
            });
            group.bench_function(id("qkernels_into"), |b| {
                on(pool.as_ref(), || {
                    b.iter(|| quant::dequantize_into(&q, &mut out))
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_quantize, bench_dequantize);
criterion_main!(benches);
