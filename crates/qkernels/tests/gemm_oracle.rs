//! Every runnable kernel family equals the scalar oracle bit for bit: random shapes with every
//! tail (M, N, K in 1..=300), strides, zero points, scales, per-tensor and per-channel
//! weights, all three pipelines (requantization per call or prepared once), ReLU and ReLU6,
//! with and without bias.

use proptest::prelude::*;
use qkernels::gemm::reference::{self, Accumulation};
use qkernels::gemm::{
    self, Activation, Activations, Dequantize, KernelKind, Output, PackedWeights,
    PreparedRequantize, Requantize, WeightQParams,
};

/// One random GEMM problem.
#[derive(Clone, Debug)]
struct Case {
    m: usize,
    n: usize,
    k: usize,
    lda: usize,
    ldc: usize,
    a: Vec<u8>,
    w: Vec<i8>,
    a_zp: i32,
    per_channel: bool,
    w_scales: Vec<f32>,
    w_zps: Vec<i32>,
    act_scale: f32,
    out_scale: f32,
    out_zp: i32,
    bias: Option<Vec<f32>>,
    activation: Activation,
    /// 0 requantize, 1 dequantize, 2 raw i32, 3 requantize through a
    /// [`PreparedRequantize`] (the oracle runs 0 for it).
    pipeline: u8,
}

impl Case {
    fn requantize(&self) -> Requantize<'_> {
        Requantize {
            act_scale: self.act_scale,
            out_scale: self.out_scale,
            out_zero_point: self.out_zp,
            bias: self.bias.as_deref(),
            activation: self.activation,
        }
    }

    fn qparams(&self) -> WeightQParams<'_> {
        WeightQParams::from_slices(self.per_channel, &self.w_scales, &self.w_zps)
            .expect("weight qparams")
    }
}

fn dim() -> BoxedStrategy<usize> {
    if cfg!(miri) {
        // Miri is ~1000x slower: small shapes still hit every tail of the scalar kernel.
        (1usize..=20).boxed()
    } else {
        prop_oneof![3 => 1usize..=40, 1 => 1usize..=300].boxed()
    }
}

fn case() -> impl Strategy<Value = Case> {
    (
        dim(),
        dim(),
        dim(),
        0usize..3,
        0usize..3,
        any::<u64>(),
        0u8..4,
        0u8..3,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(m, n, k, pad_a, pad_c, seed, pipeline, act, per_channel, symmetric)| {
                let mut rng = Lcg(seed);
                let lda = k + pad_a;
                let ldc = n + pad_c;
                let a = (0..(m - 1) * lda + k).map(|_| rng.next() as u8).collect();
                let w = (0..n * k).map(|_| rng.next() as i8).collect();
                let channels = if per_channel { n } else { 1 };
                let w_scales: Vec<f32> = (0..channels).map(|_| 0.001 + rng.unit() * 0.05).collect();
                let w_zps = (0..channels)
                    .map(|_| {
                        if symmetric {
                            0
                        } else {
                            (rng.next() % 256) as i32 - 128
                        }
                    })
                    .collect();
                let act_scale = 0.002 + rng.unit() * 0.2;
                let spread = (k as f32).sqrt() * 500.0 * (0.1 + rng.unit());
                let out_scale = act_scale * w_scales[0] * spread;
                let bias = (!rng.next().is_multiple_of(3)).then(|| {
                    (0..n)
                        .map(|_| (rng.unit() - 0.5) * 40.0 * out_scale)
                        .collect()
                });
                Case {
                    m,
                    n,
                    k,
                    lda,
                    ldc,
                    a,
                    w,
                    a_zp: (rng.next() % 256) as i32,
                    per_channel,
                    w_scales,
                    w_zps,
                    act_scale,
                    out_scale,
                    out_zp: (rng.next() % 256) as i32,
                    bias,
                    activation: [Activation::None, Activation::Relu, Activation::Relu6]
                        [act as usize],
                    pipeline,
                }
            },
        )
}

/// Small deterministic generator (keeps cases reproducible from the proptest seed).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn unit(&mut self) -> f32 {
        (self.next() % 1_000_000) as f32 / 1_000_000.0
    }
}

/// Runs one pipeline of `c` through `exec` and returns the output as bit patterns
/// (the buffer starts filled with 7s so skipped or stray writes show up). Pipeline 3 runs
/// `prepared` when given, else the per-call requantization.
fn with_output(
    c: &Case,
    prepared: Option<&PreparedRequantize>,
    exec: impl FnOnce(Output<'_>),
) -> Vec<u32> {
    let len = (c.m - 1) * c.ldc + c.n;
    let bias = c.bias.as_deref();
    match c.pipeline {
        0 | 3 => {
            let mut out = vec![7u8; len];
            match prepared.filter(|_| c.pipeline == 3) {
                Some(params) => exec(Output::QUInt8Prepared {
                    params,
                    out: &mut out,
                    ldc: c.ldc,
                }),
                None => exec(Output::QUInt8 {
                    params: c.requantize(),
                    out: &mut out,
                    ldc: c.ldc,
                }),
            }
            out.into_iter().map(u32::from).collect()
        }
        1 => {
            let mut out = vec![7.0f32; len];
            let relu = c.activation != Activation::None;
            let params = Dequantize {
                act_scale: c.act_scale,
                bias,
                relu,
            };
            exec(Output::F32 {
                params,
                out: &mut out,
                ldc: c.ldc,
            });
            out.into_iter().map(f32::to_bits).collect()
        }
        _ => {
            let mut out = vec![7i32; len];
            exec(Output::I32 {
                out: &mut out,
                ldc: c.ldc,
            });
            out.into_iter().map(|x| x as u32).collect()
        }
    }
}

/// The kernel family `kind` on case `c`.
fn run(c: &Case, kind: KernelKind) -> Vec<u32> {
    let packed = PackedWeights::pack(&c.w, c.n, c.k, c.qparams(), kind).expect("pack");
    assert_eq!(packed.kind(), kind);
    let acts = Activations {
        data: &c.a,
        rows: c.m,
        row_stride: c.lda,
        zero_point: c.a_zp,
    };
    let prepared = (c.pipeline == 3).then(|| {
        PreparedRequantize::new(&packed, c.requantize(), c.a_zp).expect("prepared pipeline")
    });
    with_output(c, prepared.as_ref(), |out| {
        let ran = gemm::gemm_u8s8(acts, &packed, out).expect("gemm");
        assert_eq!(ran, kind);
    })
}

/// The oracle with the accumulation semantics of `kind`.
fn oracle(c: &Case, kind: KernelKind) -> Vec<u32> {
    let acc = if kind.saturates_pairs() {
        Accumulation::PairSaturating16
    } else {
        Accumulation::Exact
    };
    with_output(c, None, |out| {
        reference::gemm_u8s8(
            &c.a,
            c.m,
            c.lda,
            c.a_zp,
            &c.w,
            c.n,
            c.k,
            c.qparams(),
            acc,
            out,
        )
        .expect("oracle")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48)
    ))]

    #[test]
    fn every_runnable_kernel_equals_the_oracle(c in case()) {
        for kind in KernelKind::all_runnable() {
            let want = oracle(&c, kind);
            let got = run(&c, kind);
            prop_assert!(got == want, "kernel {kind} differs from the oracle for {:?}",
                (c.m, c.n, c.k, c.pipeline, c.per_channel, c.a_zp));
        }
    }
}
