//! `gemm_u8s8_into_vec` (the result written into a `Vec`'s spare capacity by the threads
//! that compute it) gives the same bits as `gemm_u8s8` into a zeroed slice, for every
//! runnable family, every pipeline, serial and parallel calls (M = 1 takes the per-thread
//! path), with a reused `Vec` of any previous length; errors leave the `Vec` empty.

use proptest::prelude::*;
use qkernels::GemmError;
use qkernels::gemm::{
    self, Activation, Activations, Dequantize, KernelKind, Output, PackedWeights,
    PreparedRequantize, Requantize, VecOutput, WeightQParams,
};

/// Small deterministic generator.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

struct Problem {
    m: usize,
    n: usize,
    k: usize,
    a: Vec<u8>,
    w: Vec<i8>,
    scales: Vec<f32>,
    zps: Vec<i32>,
    bias: Vec<f32>,
}

impl Problem {
    fn new(m: usize, n: usize, k: usize, seed: u64) -> Self {
        let mut rng = Lcg(seed);
        Self {
            m,
            n,
            k,
            a: (0..m * k).map(|_| rng.next() as u8).collect(),
            w: (0..n * k).map(|_| rng.next() as i8).collect(),
            scales: (0..n)
                .map(|_| 0.001 + (rng.next() % 1000) as f32 * 1e-5)
                .collect(),
            zps: (0..n).map(|_| (rng.next() % 9) as i32 - 4).collect(),
            bias: (0..n)
                .map(|_| (rng.next() % 2001) as f32 * 0.01 - 10.0)
                .collect(),
        }
    }

    fn pack(&self, kind: KernelKind) -> PackedWeights {
        let q = WeightQParams::PerChannel {
            scales: &self.scales,
            zero_points: &self.zps,
        };
        PackedWeights::pack(&self.w, self.n, self.k, q, kind).expect("pack")
    }

    fn acts(&self) -> Activations<'_> {
        Activations {
            data: &self.a,
            rows: self.m,
            row_stride: self.k,
            zero_point: 117,
        }
    }

    fn requantize(&self) -> Requantize<'_> {
        Requantize {
            act_scale: 0.03,
            out_scale: 0.03 * 0.002 * (self.k as f32).sqrt() * 300.0,
            out_zero_point: 100,
            bias: Some(&self.bias),
            activation: Activation::Relu6,
        }
    }

    fn dequantize(&self) -> Dequantize<'_> {
        Dequantize {
            act_scale: 0.03,
            bias: Some(&self.bias),
            relu: true,
        }
    }
}

/// Every pipeline of `p` on `kind`, into slices and into a `Vec` that held `stale` values
/// before; asserts equal bits.
fn check(p: &Problem, kind: KernelKind, stale: usize) {
    let packed = p.pack(kind);
    let len = p.m * p.n;

    let mut want_u8 = vec![0u8; len];
    let out = Output::QUInt8 {
        params: p.requantize(),
        out: &mut want_u8,
        ldc: p.n,
    };
    gemm::gemm_u8s8(p.acts(), &packed, out).expect("slice gemm");
    let mut got_u8 = vec![9u8; stale];
    let out = VecOutput::QUInt8 {
        params: p.requantize(),
        out: &mut got_u8,
    };
    assert_eq!(gemm::gemm_u8s8_into_vec(p.acts(), &packed, out), Ok(kind));
    assert_eq!(got_u8, want_u8, "{kind} quint8 {:?}", (p.m, p.n, p.k));

    let prepared = PreparedRequantize::new(&packed, p.requantize(), 117).expect("prepared");
    let mut got_prepared = vec![3u8; stale];
    let out = VecOutput::QUInt8Prepared {
        params: &prepared,
        out: &mut got_prepared,
    };
    gemm::gemm_u8s8_into_vec(p.acts(), &packed, out).expect("prepared vec gemm");
    assert_eq!(
        got_prepared,
        want_u8,
        "{kind} prepared {:?}",
        (p.m, p.n, p.k)
    );

    let mut want_f32 = vec![0f32; len];
    let out = Output::F32 {
        params: p.dequantize(),
        out: &mut want_f32,
        ldc: p.n,
    };
    gemm::gemm_u8s8(p.acts(), &packed, out).expect("slice gemm");
    let mut got_f32 = vec![f32::NAN; stale];
    let out = VecOutput::F32 {
        params: p.dequantize(),
        out: &mut got_f32,
    };
    gemm::gemm_u8s8_into_vec(p.acts(), &packed, out).expect("f32 vec gemm");
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&got_f32),
        bits(&want_f32),
        "{kind} f32 {:?}",
        (p.m, p.n, p.k)
    );
}

fn dim() -> BoxedStrategy<usize> {
    if cfg!(miri) {
        (1usize..=12).boxed()
    } else {
        prop_oneof![2 => 1usize..=40, 1 => 1usize..=300].boxed()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24)
    ))]

    #[test]
    fn into_vec_equals_the_slice_output(m in dim(), n in dim(), k in dim(), seed in any::<u64>(), stale in 0usize..200) {
        let p = Problem::new(m, n, k, seed);
        for kind in KernelKind::all_runnable() {
            check(&p, kind, stale);
        }
    }
}

/// Large enough to run in parallel (over 2^19 multiply-accumulates), on pools of 1, 2 and
/// 3 threads: the tiles of every task, and the per-thread split of M = 1, cover the output.
#[test]
fn parallel_calls_fill_every_element() {
    if cfg!(miri) {
        return;
    }
    for (m, n, k) in [
        (1, 1000, 700),
        (2, 333, 2048),
        (37, 300, 200),
        (130, 259, 96),
    ] {
        let p = Problem::new(m, n, k, (m * n + k) as u64);
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            pool.install(|| {
                for kind in KernelKind::all_runnable() {
                    check(&p, kind, 5);
                }
            });
        }
    }
}

#[test]
fn zero_rows_give_an_empty_vec() {
    let p = Problem::new(0, 8, 16, 1);
    let packed = p.pack(KernelKind::best());
    let mut out = vec![1.0f32; 4];
    let vec_out = VecOutput::F32 {
        params: p.dequantize(),
        out: &mut out,
    };
    gemm::gemm_u8s8_into_vec(p.acts(), &packed, vec_out).expect("empty gemm");
    assert!(out.is_empty());
}

#[test]
fn errors_leave_the_vec_empty() {
    let p = Problem::new(3, 8, 16, 2);
    let packed = p.pack(KernelKind::best());
    let short_bias = [0.0f32; 7];
    let mut out = vec![1.0f32; 4];
    let params = Dequantize {
        bias: Some(&short_bias),
        ..p.dequantize()
    };
    let err = gemm::gemm_u8s8_into_vec(
        p.acts(),
        &packed,
        VecOutput::F32 {
            params,
            out: &mut out,
        },
    );
    assert!(
        matches!(
            err,
            Err(GemmError::QParamsLength {
                expected: 8,
                got: 7,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(out.is_empty());

    let mut q = vec![5u8; 3];
    let acts = Activations {
        zero_point: 256,
        ..p.acts()
    };
    let err = gemm::gemm_u8s8_into_vec(
        acts,
        &packed,
        VecOutput::QUInt8 {
            params: p.requantize(),
            out: &mut q,
        },
    );
    assert!(err.is_err(), "zero point 256 must be rejected");
    assert!(q.is_empty());

    let acts = Activations {
        data: &p.a[..10],
        ..p.acts()
    };
    let err = gemm::gemm_u8s8_into_vec(
        acts,
        &packed,
        VecOutput::QUInt8 {
            params: p.requantize(),
            out: &mut q,
        },
    );
    assert!(
        matches!(err, Err(GemmError::BufferTooSmall { .. })),
        "{err:?}"
    );
}
