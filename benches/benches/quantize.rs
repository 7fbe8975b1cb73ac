//! Per-tensor quantize (f32 -> quint8) and dequantize at 1M and 16M elements, with the default
//! rayon pool and inside a one-thread pool (the single-threaded comparison against PyTorch).
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use qtensor::{QDType, QTensor, Tensor, quantize_per_tensor};
use rayon::ThreadPool;

const SIZES: [usize; 2] = [1 << 20, 1 << 24];
const SCALE: f64 = 0.05;
const ZERO_POINT: i64 = 100;

/// Deterministic values spread over the quantized range (and a little beyond).
fn input(n: usize) -> Tensor<f32> {
    Tensor::from_fn(&[n], |i| {
        ((i.wrapping_mul(2_654_435_761) % 6000) as f32 - 2500.0) * 0.005
    })
}

fn quantize(x: &Tensor<f32>) -> QTensor {
    quantize_per_tensor(x, SCALE, ZERO_POINT, QDType::QUInt8).expect("valid qparams")
}

fn pools() -> Vec<(&'static str, Option<ThreadPool>)> {
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    vec![("default_pool", None), ("single_thread", Some(single))]
}

/// Runs `f` on `pool` (or on the global pool).
fn on(pool: Option<&ThreadPool>, f: impl FnOnce() + Send) {
    match pool {
        Some(p) => p.install(f),
        None => f(),
    }
}

fn bench_quantize(c: &mut Criterion) {
    let mut group = c.benchmark_group("quantize_per_tensor_f32_quint8");
    group.sample_size(10);
    for n in SIZES {
        let x = input(n);
        group.throughput(Throughput::Elements(n as u64));
        for (name, pool) in pools() {
            group.bench_with_input(BenchmarkId::new(name, n), &x, |b, x| {
                on(pool.as_ref(), || b.iter(|| quantize(x)));
            });
        }
    }
    group.finish();
}

fn bench_dequantize(c: &mut Criterion) {
    let mut group = c.benchmark_group("dequantize_quint8_f32");
    group.sample_size(10);
    for n in SIZES {
        let q = quantize(&input(n));
        group.throughput(Throughput::Elements(n as u64));
        for (name, pool) in pools() {
            group.bench_with_input(BenchmarkId::new(name, n), &q, |b, q| {
                on(pool.as_ref(), || b.iter(|| q.dequantize()));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_quantize, bench_dequantize);
criterion_main!(benches);
