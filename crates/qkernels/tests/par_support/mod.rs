//! Shared by the two `par` test binaries (linger on, linger off): parallel-sized GEMM and
//! convolution calls of every path, back to back in pools of 1, 2 and 3 threads, each
//! compared with the scalar oracle, and the helper count the linger setting implies.

use qkernels::conv::ConvGeometry;
use qkernels::gemm::reference::{self, Accumulation};
use qkernels::gemm::{
    self, Activation, Activations, KernelKind, Output, PackedWeights, Requantize, WeightQParams,
};
use qkernels::par;

#[path = "../conv_support/mod.rs"]
mod conv_support;

/// A GEMM above the driver's parallel threshold (2¹⁹ MACs), every runnable family against
/// the oracle, twice in a row (the second call meets the helpers of the first).
fn gemm_matches_the_oracle(threads: usize) {
    let (m, k, n) = (96, 160, 72);
    let mut next = conv_support::stream(threads as u64 + 5);
    let a: Vec<u8> = (0..m * k).map(|_| next() as u8).collect();
    let w: Vec<i8> = (0..n * k).map(|_| (next() % 255) as i8).collect();
    let scales: Vec<f32> = (0..n).map(|i| 0.01 + i as f32 * 1e-4).collect();
    let zps = vec![0; n];
    let q = WeightQParams::PerChannel {
        scales: &scales,
        zero_points: &zps,
    };
    let params = Requantize {
        act_scale: 0.05,
        out_scale: 4.0,
        out_zero_point: 90,
        bias: None,
        activation: Activation::None,
    };
    let want_for = |acc| {
        let mut want = vec![0u8; m * n];
        let out = Output::QUInt8 {
            params,
            out: &mut want,
            ldc: n,
        };
        reference::gemm_u8s8(&a, m, k, 7, &w, n, k, q, acc, out).expect("oracle");
        want
    };
    for kind in KernelKind::all_runnable() {
        let want = want_for(if kind.saturates_pairs() {
            Accumulation::PairSaturating16
        } else {
            Accumulation::Exact
        });
        let packed = PackedWeights::pack(&w, n, k, q, kind).expect("pack");
        for call in 0..2 {
            let mut got = vec![0u8; m * n];
            let acts = Activations {
                data: &a,
                rows: m,
                row_stride: k,
                zero_point: 7,
            };
            let out = Output::QUInt8 {
                params,
                out: &mut got,
                ldc: n,
            };
            gemm::gemm_u8s8(acts, &packed, out).expect("gemm");
            assert_eq!(got, want, "{kind}, {threads} threads, call {call}");
        }
    }
}

/// Convolutions above their paths' parallel thresholds: depthwise, small-C, row-run /
/// indirect / implicit GEMM (dense and grouped) and pointwise.
fn convs_match_the_oracle(threads: usize) {
    let padded = |n, c, o, groups, h: usize, k: usize| {
        ConvGeometry::new(n, c, o, groups, &[h, h], &[k, k])
            .and_then(|g| g.with_padding(&[k / 2, k / 2]))
            .expect("geometry")
    };
    let shapes = [
        padded(1, 64, 64, 64, 32, 3),
        padded(4, 3, 6, 1, 30, 5),
        padded(1, 32, 32, 1, 16, 3),
        padded(1, 32, 32, 2, 16, 3),
        padded(2, 64, 64, 1, 16, 1),
    ];
    for (i, g) in shapes.iter().enumerate() {
        let seed = 10 * i as u64 + threads as u64;
        conv_support::check(g, seed, true, i % 2 == 0, (i % 3) as u8);
    }
}

/// Runs every case in pools of 1, 2 and 3 threads; returns the helpers spawned meanwhile
/// by the 1-thread pool and by the others.
pub fn every_path_for_1_2_3_threads() -> (u64, u64) {
    let mut spawned = [0u64; 2];
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        let before = par::helpers_spawned();
        pool.install(|| {
            gemm_matches_the_oracle(threads);
            convs_match_the_oracle(threads);
        });
        spawned[usize::from(threads > 1)] += par::helpers_spawned() - before;
    }
    (spawned[0], spawned[1])
}

#[allow(dead_code)] // the linger-off binary does not need it
/// Whether this machine has a core for a helper besides the caller's.
pub fn has_a_spare_core() -> bool {
    std::thread::available_parallelism().map_or(1, |n| n.get()) > 1
}
