//! The AMX family's tile edges against the oracle (skipped where `KernelKind::Amx` cannot run):
//! M = 1..=40 (16-row tiles, M tails, the AVX-512 VNNI tiles for small M and short tails),
//! N around the 48- and 96-column boundaries (partial column vectors of the last panel),
//! K = 1..=200 (K tails of every length on the stack tiles) and K = 4096 + 7 (several K
//! blocks accumulated, then a tail), asymmetric per-channel and per-tensor weights, raw i32
//! and requantized output, 1 and 2 threads.

use qkernels::gemm::reference::{self, Accumulation};
use qkernels::gemm::{
    self, Activations, KernelKind, Output, PackedWeights, Requantize, WeightQParams,
};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

fn check(m: usize, n: usize, k: usize, per_channel: bool, seed: u64) {
    let mut rng = Rng(seed);
    let a: Vec<u8> = (0..m * k).map(|_| rng.next() as u8).collect();
    let w: Vec<i8> = (0..n * k).map(|_| rng.next() as u8 as i8).collect();
    let scales: Vec<f32> = (0..n).map(|j| 0.001 + 0.0001 * (j % 13) as f32).collect();
    let zps: Vec<i32> = (0..n).map(|j| (j % 5) as i32 - 2).collect();
    let q = if per_channel {
        WeightQParams::PerChannel {
            scales: &scales,
            zero_points: &zps,
        }
    } else {
        WeightQParams::PerTensor {
            scale: 0.002,
            zero_point: 0,
        }
    };
    let za = (seed % 256) as i32;
    let acts = Activations {
        data: &a,
        rows: m,
        row_stride: k,
        zero_point: za,
    };
    let packed = PackedWeights::pack(&w, n, k, q, KernelKind::Amx).unwrap();
    let mut want = vec![0i32; m * n];
    let raw = Output::I32 {
        out: &mut want,
        ldc: n,
    };
    reference::gemm_u8s8(&a, m, k, za, &w, n, k, q, Accumulation::Exact, raw).unwrap();
    let mut got = vec![0i32; m * n];
    let raw = Output::I32 {
        out: &mut got,
        ldc: n,
    };
    assert_eq!(
        gemm::gemm_u8s8(acts, &packed, raw).unwrap(),
        KernelKind::Amx
    );
    assert_eq!(got, want, "raw {m}x{k}x{n} per_channel={per_channel}");

    let params = Requantize {
        act_scale: 0.05,
        out_scale: 0.7,
        out_zero_point: 9,
        bias: None,
        activation: Default::default(),
    };
    let mut want_q = vec![0u8; m * n];
    let out = Output::QUInt8 {
        params,
        out: &mut want_q,
        ldc: n,
    };
    reference::gemm_u8s8(&a, m, k, za, &w, n, k, q, Accumulation::Exact, out).unwrap();
    let mut got_q = vec![0u8; m * n];
    let out = Output::QUInt8 {
        params,
        out: &mut got_q,
        ldc: n,
    };
    gemm::gemm_u8s8(acts, &packed, out).unwrap();
    assert_eq!(
        got_q, want_q,
        "requantized {m}x{k}x{n} per_channel={per_channel}"
    );
}

fn amx() -> bool {
    let runnable = KernelKind::Amx.is_runnable();
    if !runnable {
        eprintln!("AMX not runnable here: skipped");
    }
    runnable
}

#[test]
fn m_1_to_40_at_column_boundaries() {
    if !amx() {
        return;
    }
    for m in 1..=40 {
        for (i, n) in [1, 16, 47, 48, 49, 95, 96, 97].into_iter().enumerate() {
            let k = [64, 100, 128, 36][(m + i) % 4];
            check(m, n, k, (m + i) % 2 == 0, (m * 100 + n) as u64);
        }
    }
}

#[test]
fn k_1_to_200_every_tail() {
    if !amx() {
        return;
    }
    for k in 1..=200 {
        let m = [16, 17, 33, 20, 3][k % 5];
        let n = [48, 49, 96, 40][k % 4];
        check(m, n, k, k % 3 == 0, k as u64);
    }
}

#[test]
fn long_k_accumulates_across_blocks_then_a_tail() {
    if !amx() {
        return;
    }
    for (m, n) in [(40, 97), (16, 48), (5, 50)] {
        check(m, n, 4096 + 7, true, 7);
        check(m, n, 4096 + 7, false, 8);
    }
}

#[test]
fn two_threads_give_the_same_bits() {
    if !amx() {
        return;
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| {
        for (m, n, k) in [(64, 200, 300), (130, 1000, 520), (1, 1024, 1024)] {
            check(m, n, k, true, (m + n + k) as u64);
        }
    });
}

/// Uncapped, a CPU with AMX (and the OS permission) dispatches to the AMX family, and a GEMM
/// runs its kernel object.
#[test]
fn uncapped_amx_cpu_picks_amx() {
    if qkernels::isa::env_cap().is_some() || !qkernels::isa::Isa::Amx.is_supported() {
        return;
    }
    assert_eq!(qkernels::isa::detect(), qkernels::isa::Isa::Amx);
    assert_eq!(KernelKind::best(), KernelKind::Amx);
    let before = gemm::kernel_runs(KernelKind::Amx);
    check(32, 96, 128, false, 3);
    assert!(gemm::kernel_runs(KernelKind::Amx) > before);
}
