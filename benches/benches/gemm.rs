//! int8 GEMM (`qkernels::gemm::gemm_u8s8`) on the issue-3 shapes: requantize-to-quint8
//! (static Linear) with the best kernel and every other runnable kernel family on one mid-size
//! shape, at 1 and 2 threads. Throughput is reported in multiply-accumulates.
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use qkernels::gemm::{
    self, Activation, Activations, KernelKind, Output, PackedWeights, Requantize, WeightQParams,
};

const SHAPES: [(usize, usize, usize); 7] = [
    (1, 1024, 1024),
    (16, 1024, 1024),
    (64, 1024, 1024),
    (256, 1024, 1024),
    (128, 768, 3072),
    (128, 3072, 768),
    (512, 4096, 4096),
];

fn data(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed).rotate_left(7) as u8)
        .collect()
}

fn packed(n: usize, k: usize, kind: KernelKind) -> PackedWeights {
    let w: Vec<i8> = data(n * k, 3).into_iter().map(|b| b as i8).collect();
    let q = WeightQParams::PerTensor {
        scale: 0.01,
        zero_point: 0,
    };
    PackedWeights::pack(&w, n, k, q, kind).expect("pack")
}

fn run(a: &[u8], m: usize, w: &PackedWeights, out: &mut [u8]) {
    let params = Requantize {
        act_scale: 0.02,
        out_scale: 0.5,
        out_zero_point: 128,
        bias: None,
        activation: Activation::None,
    };
    let acts = Activations {
        data: a,
        rows: m,
        row_stride: w.k(),
        zero_point: 120,
    };
    gemm::gemm_u8s8(
        acts,
        w,
        Output::QUInt8 {
            params,
            out,
            ldc: w.n(),
        },
    )
    .expect("gemm");
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm_u8s8_requant");
    group.sample_size(10);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        for &(m, k, n) in &SHAPES {
            let kinds: Vec<KernelKind> = if (m, k, n) == (64, 1024, 1024) {
                KernelKind::all_runnable()
            } else {
                vec![KernelKind::best()]
            };
            let a = data(m * k, 5);
            let mut out = vec![0u8; m * n];
            for kind in kinds {
                let w = packed(n, k, kind);
                group.throughput(Throughput::Elements((m * n * k) as u64));
                let id = BenchmarkId::new(format!("{kind}/t{threads}"), format!("{m}x{k}x{n}"));
                group.bench_function(id, |b| b.iter(|| pool.install(|| run(&a, m, &w, &mut out))));
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
