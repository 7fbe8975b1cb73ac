//! int8 convolution (`qkernels::conv::conv_u8s8`) on the issue-4 shapes (N, C, H=W, O, k,
//! groups; stride 1, padding k/2, per-channel symmetric weights, float bias), best kernel
//! family, 1 and 2 threads; plus quantized `add` and `max_pool2d` on one ResNet-sized
//! tensor. Throughput is reported in multiply-accumulates (bytes for the elementwise ops).
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use qkernels::conv::{self, ConvGeometry, PackedConvWeights};
use qkernels::eltwise::{QParams, binary};
use qkernels::gemm::{Activation, Requantize, WeightQParams};
use qkernels::pool::{self, Pool2d};

const SHAPES: [[usize; 6]; 6] = [
    [64, 3, 32, 6, 5, 1],
    [1, 64, 56, 64, 3, 1],
    [8, 64, 56, 64, 3, 1],
    [1, 256, 14, 256, 3, 1],
    [1, 256, 14, 1024, 1, 1],
    [1, 144, 56, 144, 3, 144],
];

fn data(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed).rotate_left(7) as u8)
        .collect()
}

fn bench_conv(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv_u8s8");
    group.sample_size(10);
    for [n, ch, h, o, k, g] in SHAPES {
        let geometry = ConvGeometry::new(n, ch, o, g, &[h, h], &[k, k])
            .and_then(|x| x.with_padding(&[k / 2, k / 2]))
            .expect("geometry");
        let input = data(geometry.input_len(), 1);
        let w: Vec<i8> = data(o * (ch / g) * k * k, 3)
            .into_iter()
            .map(|b| (b as i8) / 2)
            .collect();
        let scales: Vec<f32> = (0..o).map(|i| 0.001 + i as f32 * 1e-5).collect();
        let zps = vec![0; o];
        let bias: Vec<f32> = (0..o).map(|i| i as f32 * 0.01).collect();
        let q = WeightQParams::PerChannel {
            scales: &scales,
            zero_points: &zps,
        };
        let packed = PackedConvWeights::pack_best(&w, &geometry, q).expect("pack");
        let params = Requantize {
            act_scale: 0.02,
            out_scale: 0.5,
            out_zero_point: 128,
            bias: Some(&bias),
            activation: Activation::None,
        };
        let mut out = vec![0u8; geometry.output_len().expect("output")];
        group.throughput(Throughput::Elements(
            (n * h * h * o * (ch / g) * k * k) as u64,
        ));
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            let id = format!("{n},{ch},{h},{o},{k},{g}/t{threads}");
            group.bench_function(BenchmarkId::from_parameter(id), |b| {
                b.iter(|| {
                    pool.install(|| {
                        conv::conv_u8s8(&geometry, &input, 120, &packed, params, &mut out)
                            .expect("conv")
                    })
                })
            });
        }
    }
    group.finish();
}

fn bench_eltwise(c: &mut Criterion) {
    let mut group = c.benchmark_group("eltwise");
    let len = 8 * 56 * 56 * 64;
    let (a, b) = (data(len, 5), data(len, 7));
    let q = QParams {
        scale: 0.05,
        zero_point: 120,
    };
    let mut out = vec![0u8; len];
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function("add_8x56x56x64", |bn| {
        bn.iter(|| binary::add(&a, q, &b, q, q, false, &mut out).expect("add"))
    });
    let p = Pool2d {
        input: [8, 56, 56, 64],
        kernel: [3, 3],
        stride: [2, 2],
        padding: [1, 1],
        dilation: [1, 1],
        ceil_mode: false,
    };
    let mut pooled = vec![0u8; 8 * 28 * 28 * 64];
    group.bench_function("max_pool2d_3x3s2_8x56x56x64", |bn| {
        bn.iter(|| pool::max_pool2d(&a, &p, &mut pooled).expect("pool"))
    });
    group.finish();
}

criterion_group!(benches, bench_conv, bench_eltwise);
criterion_main!(benches);
