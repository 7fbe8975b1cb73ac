//! Which kernel ran, family mismatches, saturation semantics, errors, large K, threads.

use qkernels::GemmError;
use qkernels::gemm::reference::{self, Accumulation};
use qkernels::gemm::{
    self, Activation, Activations, Dequantize, KernelKind, Output, PackedWeights,
    PreparedRequantize, Requantize, WeightQParams,
};

const PT: WeightQParams<'static> = WeightQParams::PerTensor {
    scale: 0.02,
    zero_point: 0,
};

fn acts(data: &[u8], rows: usize, k: usize, zp: i32) -> Activations<'_> {
    Activations {
        data,
        rows,
        row_stride: k,
        zero_point: zp,
    }
}

#[allow(clippy::too_many_arguments)]
fn raw_kernel(
    kind: KernelKind,
    a: &[u8],
    m: usize,
    za: i32,
    w: &[i8],
    n: usize,
    k: usize,
    q: WeightQParams<'_>,
) -> Vec<i32> {
    let packed = PackedWeights::pack(w, n, k, q, kind).unwrap();
    let mut out = vec![0i32; m * n];
    let ran = gemm::gemm_u8s8(
        acts(a, m, k, za),
        &packed,
        Output::I32 {
            out: &mut out,
            ldc: n,
        },
    )
    .unwrap();
    assert_eq!(ran, kind);
    out
}

#[allow(clippy::too_many_arguments)]
fn raw_oracle(
    acc: Accumulation,
    a: &[u8],
    m: usize,
    za: i32,
    w: &[i8],
    n: usize,
    k: usize,
    q: WeightQParams<'_>,
) -> Vec<i32> {
    let mut out = vec![0i32; m * n];
    reference::gemm_u8s8(
        a,
        m,
        k,
        za,
        w,
        n,
        k,
        q,
        acc,
        Output::I32 {
            out: &mut out,
            ldc: n,
        },
    )
    .unwrap();
    out
}

#[test]
fn forcing_a_kernel_runs_that_kernel() {
    let (m, n, k) = (3, 20, 9);
    let a: Vec<u8> = (0..m * k).map(|i| (i * 37 % 256) as u8).collect();
    let w: Vec<i8> = (0..n * k).map(|i| (i * 53 % 256) as u8 as i8).collect();
    for kind in KernelKind::all_runnable() {
        let before = gemm::kernel_runs(kind);
        raw_kernel(kind, &a, m, 7, &w, n, k, PT);
        assert!(gemm::kernel_runs(kind) > before, "{kind} did not run");
    }
    eprintln!("runnable kernels: {:?}", KernelKind::all_runnable());
}

#[test]
fn weights_packed_for_one_family_refuse_another() {
    let w = [1i8; 8];
    let packed = PackedWeights::pack(&w, 2, 4, PT, KernelKind::Scalar).unwrap();
    let mut out = [0i32; 2];
    for other in KernelKind::ALL
        .into_iter()
        .filter(|&k| k != KernelKind::Scalar)
    {
        let err = gemm::gemm_u8s8_with(
            other,
            acts(&[1; 4], 1, 4, 0),
            &packed,
            Output::I32 {
                out: &mut out,
                ldc: 2,
            },
        );
        assert_eq!(
            err,
            Err(GemmError::FamilyMismatch {
                packed: KernelKind::Scalar,
                requested: other
            })
        );
    }
    assert!(
        gemm::gemm_u8s8_with(
            KernelKind::Scalar,
            acts(&[1; 4], 1, 4, 0),
            &packed,
            Output::I32 {
                out: &mut out,
                ldc: 2
            }
        )
        .is_ok()
    );
    assert_eq!(out, [4, 4]);
}

#[test]
fn kernels_of_other_architectures_are_not_runnable() {
    let foreign: &[KernelKind] = if cfg!(target_arch = "x86_64") {
        &[KernelKind::Neon, KernelKind::DotProd, KernelKind::I8mm]
    } else {
        &[
            KernelKind::Avx2,
            KernelKind::Avx2Saturating,
            KernelKind::AvxVnni,
            KernelKind::Avx512Vnni,
        ]
    };
    for &kind in foreign {
        assert!(!kind.is_runnable());
        assert_eq!(
            PackedWeights::pack(&[1; 4], 1, 4, PT, kind),
            Err(GemmError::UnsupportedKernel { kind })
        );
    }
}

/// Full-range activations times large weights saturate `vpmaddubsw` pairs: the saturating
/// kernel must then differ from exact math and equal the pair-saturating oracle; with 7-bit
/// activations (reduce_range) it must equal exact math.
#[test]
fn saturating_kernel_saturates_exactly_like_fbgemm_and_only_then() {
    let kind = KernelKind::Avx2Saturating;
    if !kind.is_runnable() {
        return;
    }
    let (m, n, k) = (5, 19, 37);
    let a: Vec<u8> = (0..m * k).map(|i| 200 + (i % 56) as u8).collect();
    let w: Vec<i8> = (0..n * k)
        .map(|i| if i % 5 == 0 { 90 } else { -128 + (i % 7) as i8 })
        .collect();
    let got = raw_kernel(kind, &a, m, 3, &w, n, k, PT);
    assert_eq!(
        got,
        raw_oracle(Accumulation::PairSaturating16, &a, m, 3, &w, n, k, PT)
    );
    assert_ne!(got, raw_oracle(Accumulation::Exact, &a, m, 3, &w, n, k, PT));
    let a7: Vec<u8> = a.iter().map(|&x| x & 127).collect();
    let got7 = raw_kernel(kind, &a7, m, 3, &w, n, k, PT);
    assert_eq!(
        got7,
        raw_oracle(Accumulation::Exact, &a7, m, 3, &w, n, k, PT)
    );
}

/// K = 65536 with the extreme values that give the largest magnitude still in range.
#[test]
fn k_65536_is_exact_and_a_possible_overflow_is_an_error() {
    let (m, n, k) = (2, 3, 65536);
    let a = vec![255u8; m * k];
    let mut w = vec![-128i8; n * k];
    w[k..2 * k].fill(127);
    // (The saturating kernel saturates these pairs by design; it is covered separately.)
    for kind in KernelKind::all_runnable()
        .into_iter()
        .filter(|k| !k.saturates_pairs())
    {
        let got = raw_kernel(kind, &a, m, 0, &w, n, k, PT);
        let full = -(65536i64 * 255 * 128) as i32;
        let pos = (65536i64 * 255 * 127) as i32;
        assert_eq!(got, vec![full, pos, full, full, pos, full], "{kind}");
        // Dequantized output sees the same exact sum.
        let packed = PackedWeights::pack(&w, n, k, PT, kind).unwrap();
        let mut f = vec![0f32; m * n];
        let params = Dequantize {
            act_scale: 0.5,
            bias: None,
            relu: false,
        };
        gemm::gemm_u8s8(
            acts(&a, m, k, 0),
            &packed,
            Output::F32 {
                params,
                out: &mut f,
                ldc: n,
            },
        )
        .unwrap();
        assert_eq!(f[0], full as f32 * (0.5f32 * 0.02));
    }
    let asym = WeightQParams::PerTensor {
        scale: 0.02,
        zero_point: 1,
    };
    let packed = PackedWeights::pack(&w, n, k, asym, KernelKind::best()).unwrap();
    let mut out = vec![0i32; m * n];
    let err = gemm::gemm_u8s8(
        acts(&a, m, k, 0),
        &packed,
        Output::I32 {
            out: &mut out,
            ldc: n,
        },
    );
    assert_eq!(
        err,
        Err(GemmError::AccumulatorOverflow {
            k,
            a_zero_point: 0,
            w_abs_max: 129,
            bound: 65536 * 255 * 129
        })
    );
    // A centred activation zero point halves the bound and makes the same weights legal.
    assert!(
        gemm::gemm_u8s8(
            acts(&a, m, k, 128),
            &packed,
            Output::I32 {
                out: &mut out,
                ldc: n
            }
        )
        .is_ok()
    );
    assert_eq!(out[0], (65536i64 * 127 * -129) as i32);
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    // Parallel-sized shapes whose task grids differ: a few M tiles split along N only, many
    // M tiles split along both, one N tile split along M only.
    for (m, n, k) in [
        (70, 150, 260),
        (16, 700, 200),
        (300, 100, 260),
        (200, 40, 300),
    ] {
        thread_count_case(m, n, k);
    }
}

fn thread_count_case(m: usize, n: usize, k: usize) {
    let a: Vec<u8> = (0..m * k).map(|i| (i * 7919 % 251) as u8).collect();
    let w: Vec<i8> = (0..n * k).map(|i| (i * 104729 % 255) as u8 as i8).collect();
    let scales: Vec<f32> = (0..n).map(|i| 0.001 + i as f32 * 1e-4).collect();
    let zps: Vec<i32> = (0..n).map(|i| (i % 9) as i32 - 4).collect();
    let q = WeightQParams::PerChannel {
        scales: &scales,
        zero_points: &zps,
    };
    let bias: Vec<f32> = (0..n).map(|i| i as f32 * 0.37 - 20.0).collect();
    let params = Requantize {
        act_scale: 0.05,
        out_scale: 3.0,
        out_zero_point: 100,
        bias: Some(&bias),
        activation: Activation::Relu,
    };
    let want_for = |acc: Accumulation| {
        let mut want = vec![0u8; m * n];
        let out = Output::QUInt8 {
            params,
            out: &mut want,
            ldc: n,
        };
        reference::gemm_u8s8(&a, m, k, 9, &w, n, k, q, acc, out).unwrap();
        want
    };
    let exact = want_for(Accumulation::Exact);
    assert!(exact.iter().any(|&x| x > 100) && exact.contains(&100));
    for kind in KernelKind::all_runnable() {
        let want = if kind.saturates_pairs() {
            want_for(Accumulation::PairSaturating16)
        } else {
            exact.clone()
        };
        let packed = PackedWeights::pack(&w, n, k, q, kind).unwrap();
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut got = vec![0u8; m * n];
            pool.install(|| {
                gemm::gemm_u8s8(
                    acts(&a, m, k, 9),
                    &packed,
                    Output::QUInt8 {
                        params,
                        out: &mut got,
                        ldc: n,
                    },
                )
            })
            .unwrap();
            assert_eq!(got, want, "{kind} with {threads} threads, {m}x{k}x{n}");
        }
    }
}

#[test]
fn bad_inputs_are_typed_errors_naming_the_value() {
    let w = [0i8; 12];
    let packed = PackedWeights::pack(&w, 3, 4, PT, KernelKind::Scalar).unwrap();
    let mut out = [0u8; 6];
    let ok = Requantize {
        act_scale: 0.1,
        out_scale: 0.1,
        out_zero_point: 0,
        bias: None,
        activation: Activation::None,
    };
    let run = |a: Activations<'_>, p: Requantize<'_>, out: &mut [u8], ldc| {
        gemm::gemm_u8s8(
            a,
            &packed,
            Output::QUInt8 {
                params: p,
                out,
                ldc,
            },
        )
    };
    let short = [0u8; 7];
    assert_eq!(
        run(acts(&short, 2, 4, 0), ok, &mut out, 3),
        Err(GemmError::BufferTooSmall {
            what: "activations",
            needed: 8,
            got: 7
        })
    );
    let a = [0u8; 8];
    assert_eq!(
        run(
            Activations {
                row_stride: 3,
                ..acts(&a, 2, 4, 0)
            },
            ok,
            &mut out,
            3
        ),
        Err(GemmError::StrideTooSmall {
            what: "activations",
            stride: 3,
            row_len: 4
        })
    );
    assert_eq!(
        run(acts(&a, 2, 4, 0), ok, &mut out[..5], 3),
        Err(GemmError::BufferTooSmall {
            what: "output",
            needed: 6,
            got: 5
        })
    );
    assert_eq!(
        run(acts(&a, 2, 4, 256), ok, &mut out, 3),
        Err(GemmError::ZeroPointOutOfRange {
            what: "activation zero point",
            zero_point: 256,
            min: 0,
            max: 255
        })
    );
    let bad = Requantize {
        out_scale: f32::NAN,
        ..ok
    };
    assert!(matches!(
        run(acts(&a, 2, 4, 0), bad, &mut out, 3),
        Err(GemmError::InvalidScale {
            what: "output scale",
            ..
        })
    ));
    let bias = [0f32; 2];
    let bad = Requantize {
        bias: Some(&bias),
        ..ok
    };
    assert_eq!(
        run(acts(&a, 2, 4, 0), bad, &mut out, 3),
        Err(GemmError::QParamsLength {
            what: "bias",
            expected: 3,
            got: 2
        })
    );
    let bad = Requantize {
        out_zero_point: -1,
        ..ok
    };
    assert!(matches!(
        run(acts(&a, 2, 4, 0), bad, &mut out, 3),
        Err(GemmError::ZeroPointOutOfRange { zero_point: -1, .. })
    ));
    assert!(run(acts(&a, 0, 4, 0), ok, &mut [], 3).is_ok());

    let scales = [0.1f32, 0.2];
    let zps = [0i32, 0];
    let pc = WeightQParams::PerChannel {
        scales: &scales,
        zero_points: &zps,
    };
    assert_eq!(
        PackedWeights::pack(&w, 3, 4, pc, KernelKind::Scalar),
        Err(GemmError::QParamsLength {
            what: "weight scales",
            expected: 3,
            got: 2
        })
    );
    assert_eq!(
        WeightQParams::from_slices(true, &scales, &zps),
        Ok(pc),
        "per-channel lists are taken whole (pack checks their length)"
    );
    assert_eq!(
        WeightQParams::from_slices(false, &[0.5, 0.25], &[3, 4]),
        Ok(WeightQParams::PerTensor {
            scale: 0.5,
            zero_point: 3
        })
    );
    assert_eq!(
        WeightQParams::from_slices(false, &[], &zps),
        Err(GemmError::QParamsLength {
            what: "weight scales",
            expected: 1,
            got: 0
        })
    );
    assert_eq!(
        WeightQParams::from_slices(false, &scales, &[]),
        Err(GemmError::QParamsLength {
            what: "weight zero points",
            expected: 1,
            got: 0
        })
    );
    assert_eq!(
        PackedWeights::pack(&w[..11], 3, 4, PT, KernelKind::Scalar),
        Err(GemmError::BufferTooSmall {
            what: "weights",
            needed: 12,
            got: 11
        })
    );
    assert_eq!(
        PackedWeights::pack(&w, 0, 4, PT, KernelKind::Scalar),
        Err(GemmError::EmptyDimension {
            what: "n (out_features)"
        })
    );
    let neg = WeightQParams::PerTensor {
        scale: -1.0,
        zero_point: 0,
    };
    assert_eq!(
        PackedWeights::pack(&w, 3, 4, neg, KernelKind::Scalar),
        Err(GemmError::InvalidScale {
            what: "weight scale",
            scale: -1.0
        })
    );
    let zp = WeightQParams::PerTensor {
        scale: 1.0,
        zero_point: 128,
    };
    assert!(matches!(
        PackedWeights::pack(&w, 3, 4, zp, KernelKind::Scalar),
        Err(GemmError::ZeroPointOutOfRange {
            zero_point: 128,
            ..
        })
    ));
    let msg = GemmError::ZeroPointOutOfRange {
        what: "activation zero point",
        zero_point: 300,
        min: 0,
        max: 255,
    }
    .to_string();
    assert!(msg.contains("300"), "{msg}");
}

#[test]
fn relu6_clamps_at_the_quantized_six() {
    // out_scale 0.1, zp 10: 6.0 quantizes to 70; large positive sums clamp there.
    assert_eq!(gemm::quantized_six(0.1, 10), 70);
    let w = [100i8; 4];
    let packed = PackedWeights::pack(&w, 1, 4, PT, KernelKind::best()).unwrap();
    let a = [200u8, 200, 200, 200, 0, 0, 0, 0];
    let mut out = [0u8; 2];
    let params = Requantize {
        act_scale: 0.1,
        out_scale: 0.1,
        out_zero_point: 10,
        bias: None,
        activation: Activation::Relu6,
    };
    gemm::gemm_u8s8(
        acts(&a, 2, 4, 5),
        &packed,
        Output::QUInt8 {
            params,
            out: &mut out,
            ldc: 1,
        },
    )
    .unwrap();
    assert_eq!(out, [70, 10]);
}

/// K spanning several K blocks with a tail, several M tiles and N tails, every pipeline.
#[test]
fn several_k_blocks_and_tiles_match_the_oracle() {
    let (m, n, k) = (21, 70, 1501);
    let a: Vec<u8> = (0..m * k).map(|i| (i * 7919 % 253) as u8).collect();
    let w: Vec<i8> = (0..n * k)
        .map(|i| (i * 104_729 % 251) as u8 as i8)
        .collect();
    let q = WeightQParams::PerTensor {
        scale: 0.003,
        zero_point: -3,
    };
    for kind in KernelKind::all_runnable() {
        let acc = if kind.saturates_pairs() {
            Accumulation::PairSaturating16
        } else {
            Accumulation::Exact
        };
        let got = raw_kernel(kind, &a, m, 77, &w, n, k, q);
        assert_eq!(got, raw_oracle(acc, &a, m, 77, &w, n, k, q), "{kind}");
    }
}

/// Successive calls on the same packed weights sweep them in alternating directions (N
/// groups, their tiles and the K blocks backwards every other call): every call equals the
/// oracle, with several K blocks and M tiles, and with several epilogue groups at M = 1.
#[test]
fn alternating_sweeps_match_the_oracle() {
    let zps: Vec<i32> = (0..1700i32).map(|i| i % 7 - 3).collect();
    let scales = vec![0.01f32; 1700];
    for (m, n, k) in [(21, 70, 1501), (1, 1700, 600), (2, 1000, 40)] {
        let q = WeightQParams::PerChannel {
            scales: &scales[..n],
            zero_points: &zps[..n],
        };
        let a: Vec<u8> = (0..m * k).map(|i| (i * 7919 % 253) as u8).collect();
        let w: Vec<i8> = (0..n * k)
            .map(|i| (i * 104_729 % 251) as u8 as i8)
            .collect();
        for kind in KernelKind::all_runnable() {
            let acc = if kind.saturates_pairs() {
                Accumulation::PairSaturating16
            } else {
                Accumulation::Exact
            };
            let want = raw_oracle(acc, &a, m, 77, &w, n, k, q);
            let packed = PackedWeights::pack(&w, n, k, q, kind).unwrap();
            for call in 0..3 {
                let mut got = vec![0i32; m * n];
                let out = Output::I32 {
                    out: &mut got,
                    ldc: n,
                };
                gemm::gemm_u8s8(acts(&a, m, k, 77), &packed, out).unwrap();
                assert_eq!(got, want, "{kind} {m}x{k}x{n}, call {call}");
            }
        }
    }
}

/// Small M splits the work along N when threads are available: each thread of the pool takes
/// a fixed share of the panels (some threads none when there are fewer panels than threads),
/// on sweeps in both directions (two calls per pool).
#[test]
fn small_m_split_over_columns_matches_the_oracle_for_any_thread_count() {
    for (m, n, k) in [
        (1, 1100, 520),
        (3, 700, 300),
        (8, 30, 2200),
        (2, 5000, 60),
        (5, 97, 1100),
    ] {
        let a: Vec<u8> = (0..m * k).map(|i| (i * 31 % 256) as u8).collect();
        let w: Vec<i8> = (0..n * k).map(|i| (i * 97 % 256) as u8 as i8).collect();
        let bias: Vec<f32> = (0..n).map(|i| i as f32 * 0.01 - 3.0).collect();
        let params = Dequantize {
            act_scale: 0.07,
            bias: Some(&bias),
            relu: false,
        };
        let mut want = vec![0f32; m * n];
        let out = Output::F32 {
            params,
            out: &mut want,
            ldc: n,
        };
        reference::gemm_u8s8(&a, m, k, 5, &w, n, k, PT, Accumulation::Exact, out).unwrap();
        for kind in KernelKind::all_runnable()
            .into_iter()
            .filter(|k| !k.saturates_pairs())
        {
            let packed = PackedWeights::pack(&w, n, k, PT, kind).unwrap();
            for threads in [1, 2, 4] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                for call in 0..2 {
                    let mut got = vec![0f32; m * n];
                    let out = Output::F32 {
                        params,
                        out: &mut got,
                        ldc: n,
                    };
                    pool.install(|| gemm::gemm_u8s8(acts(&a, m, k, 5), &packed, out))
                        .unwrap();
                    let same = got
                        .iter()
                        .zip(&want)
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "{kind}, {m}x{k}x{n}, {threads} threads, call {call}");
                }
            }
        }
    }
}

#[test]
fn quantized_six_follows_pytorch_quantize_val() {
    assert_eq!(gemm::quantized_six(0.1, 10), 70);
    assert_eq!(gemm::quantized_six(0.05, 200), 255);
    // 6 / 1e-12 overflows i32: fbgemm clips the product below 2^31, so the bound is 255.
    assert_eq!(gemm::quantized_six(1e-12, 0), 255);
}

#[test]
fn the_oracle_rejects_bad_buffers_instead_of_panicking() {
    let (a, w) = ([1u8; 4], [1i8; 8]);
    let mut out = [0i32; 1];
    let short = Output::I32 {
        out: &mut out,
        ldc: 2,
    };
    let err = reference::gemm_u8s8(&a, 1, 4, 0, &w, 2, 4, PT, Accumulation::Exact, short);
    assert_eq!(
        err,
        Err(GemmError::BufferTooSmall {
            what: "output",
            needed: 2,
            got: 1
        })
    );
    let mut f = [0f32; 2];
    let bias = [0f32; 3];
    let params = Dequantize {
        act_scale: 1.0,
        bias: Some(&bias),
        relu: false,
    };
    let out = Output::F32 {
        params,
        out: &mut f,
        ldc: 2,
    };
    let err = reference::gemm_u8s8(&a, 1, 4, 0, &w, 2, 4, PT, Accumulation::Exact, out);
    assert_eq!(
        err,
        Err(GemmError::QParamsLength {
            what: "bias",
            expected: 2,
            got: 3
        })
    );
}

/// The driver reuses each thread's packed-A and accumulator buffers across calls: a call
/// after a larger one full of 255s (with K tails, partial tiles and asymmetric weights) must
/// not see any of its bytes.
#[test]
fn reused_scratch_does_not_leak_between_calls() {
    let zps: Vec<i32> = (0..97i32).map(|i| i % 5 - 2).collect();
    let scales = vec![0.01f32; 97];
    let q = WeightQParams::PerChannel {
        scales: &scales,
        zero_points: &zps,
    };
    for kind in KernelKind::all_runnable() {
        let acc = if kind.saturates_pairs() {
            Accumulation::PairSaturating16
        } else {
            Accumulation::Exact
        };
        let (m, n, k) = (40, 300, 515);
        let a = vec![255u8; m * k];
        let w = vec![127i8; n * k];
        let big = raw_kernel(kind, &a, m, 0, &w, n, k, PT);
        assert_eq!(big, raw_oracle(acc, &a, m, 0, &w, n, k, PT), "{kind}");
        for (m, n, k) in [(11, 97, 13), (3, 97, 130), (9, 97, 1)] {
            let a: Vec<u8> = (0..m * k).map(|i| (i * 37 % 200) as u8).collect();
            let w: Vec<i8> = (0..n * k).map(|i| (i * 53 % 255) as u8 as i8).collect();
            let got = raw_kernel(kind, &a, m, 17, &w, n, k, q);
            assert_eq!(
                got,
                raw_oracle(acc, &a, m, 17, &w, n, k, q),
                "{kind} {m}x{k}x{n}"
            );
        }
    }
}

/// A prepared pipeline runs only with the weights (or clones of them) and the activation zero
/// point it was built for, and then gives the per-call pipeline's bytes.
#[test]
fn a_prepared_pipeline_is_tied_to_its_weights_and_zero_point() {
    let (m, n, k) = (2, 50, 9);
    let a: Vec<u8> = (0..m * k).map(|i| (i * 41 % 256) as u8).collect();
    let w: Vec<i8> = (0..n * k).map(|i| (i * 13 % 256) as u8 as i8).collect();
    let bias: Vec<f32> = (0..n).map(|i| i as f32 * 0.3 - 7.0).collect();
    let params = Requantize {
        act_scale: 0.05,
        out_scale: 0.4,
        out_zero_point: 100,
        bias: Some(&bias),
        activation: Activation::Relu,
    };
    let packed = PackedWeights::pack_best(&w, n, k, PT).unwrap();
    let prepared = PreparedRequantize::new(&packed, params, 17).unwrap();
    assert!(prepared.is_for(&packed) && prepared.is_for(&packed.clone()));
    assert_eq!(
        (prepared.act_scale(), prepared.act_zero_point()),
        (0.05, 17)
    );
    let mut want = vec![0u8; m * n];
    let out = Output::QUInt8 {
        params,
        out: &mut want,
        ldc: n,
    };
    gemm::gemm_u8s8(acts(&a, m, k, 17), &packed, out).unwrap();
    let mut got = vec![0u8; m * n];
    let out = Output::QUInt8Prepared {
        params: &prepared,
        out: &mut got,
        ldc: n,
    };
    gemm::gemm_u8s8(acts(&a, m, k, 17), &packed.clone(), out).unwrap();
    assert_eq!(got, want);

    let other = PackedWeights::pack_best(&w, n, k, PT).unwrap();
    assert!(!prepared.is_for(&other));
    for (weights, za, what) in [
        (&other, 17, "weights"),
        (&packed, 18, "activation zero point"),
    ] {
        let out = Output::QUInt8Prepared {
            params: &prepared,
            out: &mut got,
            ldc: n,
        };
        let err = gemm::gemm_u8s8(acts(&a, m, k, za), weights, out);
        assert_eq!(err, Err(GemmError::PreparedMismatch { what }));
    }
    let err = PreparedRequantize::new(&packed, params, 256).unwrap_err();
    assert!(matches!(
        err,
        GemmError::ZeroPointOutOfRange {
            zero_point: 256,
            ..
        }
    ));
    let bad = Requantize {
        out_scale: 0.0,
        ..params
    };
    let err = PreparedRequantize::new(&packed, bad, 17).unwrap_err();
    assert!(matches!(err, GemmError::InvalidScale { .. }));
}
