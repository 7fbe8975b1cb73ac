//! The fp16-weight GEMM (`qkernels::fp16`): every runnable family equals the scalar oracle bit
//! for bit on random shapes (every row-tile height, N tails, K across block boundaries,
//! strides, bias, ReLU), on packed panels and on the unpacked row-major weight
//! (`gemm_f32_rows`); hand-computed values pin the fused multiply-add chain and the
//! in-order sum of K blocks; bad arguments are typed errors.

use half::f16;
use proptest::prelude::*;
use qkernels::GemmError;
use qkernels::fp16::{
    self, Fp16Epilogue, Fp16Kernel, K_BLOCK, M_CHUNK, PackedF16, PackedF32, WeightRows,
    gemm_f32_f16_with, gemm_f32_f32_with, gemm_f32_rows, gemm_f32_rows_with, reference_fp16_gemm,
};

#[derive(Clone, Debug)]
struct Case {
    m: usize,
    n: usize,
    k: usize,
    pad_x: usize,
    pad_o: usize,
    x: Vec<f32>,
    w: Vec<f16>,
    bias: Option<Vec<f32>>,
    relu: bool,
}

fn case() -> impl Strategy<Value = Case> {
    case_with_rows(1..=14)
}

fn case_with_rows(rows: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Case> {
    (rows, 1usize..=40, prop_oneof![1usize..=40, 500usize..=1100])
        .prop_flat_map(|(m, n, k)| {
            (
                Just((m, n, k)),
                0usize..3,
                0usize..3,
                proptest::collection::vec(-4.0f32..4.0, m * k),
                proptest::collection::vec(-2.0f32..2.0, n * k),
                proptest::option::of(proptest::collection::vec(-1.0f32..1.0, n)),
                any::<bool>(),
            )
        })
        .prop_map(|((m, n, k), pad_x, pad_o, x, w, bias, relu)| Case {
            m,
            n,
            k,
            pad_x,
            pad_o,
            x,
            w: w.into_iter().map(f16::from_f32).collect(),
            bias,
            relu,
        })
}

/// `x` laid out with row stride `k + pad`, padding filled with NaN (must never be read).
fn strided(x: &[f32], rows: usize, cols: usize, pad: usize) -> Vec<f32> {
    let mut out = vec![f32::NAN; rows * (cols + pad)];
    for r in 0..rows {
        out[r * (cols + pad)..r * (cols + pad) + cols]
            .copy_from_slice(&x[r * cols..(r + 1) * cols]);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_family_equals_the_oracle(c in case()) {
        let epi = Fp16Epilogue { bias: c.bias.as_deref(), relu: c.relu };
        let want = reference_fp16_gemm(&c.x, c.m, c.k, &c.w, c.n, epi);
        let packed = PackedF16::pack(&c.w, c.n, c.k).unwrap();
        let (ldx, ldo) = (c.k + c.pad_x, c.n + c.pad_o);
        let x = strided(&c.x, c.m, c.k, c.pad_x);
        for kind in Fp16Kernel::all_runnable() {
            let mut out = vec![-7.0f32; c.m * ldo];
            let ran = gemm_f32_f16_with(kind, &x, c.m, ldx, &packed, &mut out, ldo, epi).unwrap();
            prop_assert_eq!(ran, kind);
            for r in 0..c.m {
                for j in 0..ldo {
                    let got = out[r * ldo + j];
                    if j < c.n {
                        let w = want[r * c.n + j];
                        prop_assert_eq!(got.to_bits(), w.to_bits(), "{} [{}, {}]: {} vs {}", kind, r, j, got, w);
                    } else {
                        prop_assert_eq!(got, -7.0, "{} wrote the output padding", kind);
                    }
                }
            }
            // The same weights stored as f32 panels give the same bits.
            let w32: Vec<f32> = c.w.iter().map(|v| v.to_f32()).collect();
            let packed32 = PackedF32::pack(&w32, c.n, c.k).unwrap();
            let mut out32 = vec![-7.0f32; c.m * ldo];
            gemm_f32_f32_with(kind, &x, c.m, ldx, &packed32, &mut out32, ldo, epi).unwrap();
            prop_assert!(out.iter().zip(&out32).all(|(a, b)| a.to_bits() == b.to_bits()), "{} f32 panels", kind);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// The unpacked row-major weight (`gemm_f32_rows`, f16 and f32 storage) gives the oracle's
    /// bits on every family, across activation chunks (`M_CHUNK` rows), 16-row panels, 6-row
    /// weight tiles and K blocks, and leaves the output padding alone.
    #[test]
    fn unpacked_rows_equal_the_oracle(c in case_with_rows(1..=M_CHUNK + 10)) {
        let epi = Fp16Epilogue { bias: c.bias.as_deref(), relu: c.relu };
        let want = reference_fp16_gemm(&c.x, c.m, c.k, &c.w, c.n, epi);
        let w32: Vec<f32> = c.w.iter().map(|v| v.to_f32()).collect();
        let (ldx, ldo) = (c.k + c.pad_x, c.n + c.pad_o);
        let x = strided(&c.x, c.m, c.k, c.pad_x);
        for kind in Fp16Kernel::all_runnable() {
            for w in [WeightRows::F16(&c.w), WeightRows::F32(&w32)] {
                let mut out = vec![-7.0f32; c.m * ldo];
                let ran = gemm_f32_rows_with(kind, &x, c.m, ldx, w, c.n, c.k, &mut out, ldo, epi).unwrap();
                prop_assert_eq!(ran, kind);
                for r in 0..c.m {
                    for j in 0..ldo {
                        let got = out[r * ldo + j];
                        if j < c.n {
                            let e = want[r * c.n + j];
                            prop_assert_eq!(got.to_bits(), e.to_bits(), "{} {:?} [{}, {}]: {} vs {}", kind, w, r, j, got, e);
                        } else {
                            prop_assert_eq!(got, -7.0, "{} wrote the output padding", kind);
                        }
                    }
                }
            }
        }
    }
}

/// f32 weights that are not f16 values: the unpacked path equals the packed f32 panels
/// bit for bit (the same chains), on rows past one activation chunk.
#[test]
fn unpacked_f32_rows_equal_packed_f32_panels() {
    let (m, n, k) = (M_CHUNK + 3, 37, K_BLOCK + 29);
    let x: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7919 % 1009) as f32) / 504.5 - 1.0)
        .collect();
    let w: Vec<f32> = (0..n * k)
        .map(|i| ((i * 104_729 % 997) as f32) / 4986.0 - 0.1)
        .collect();
    let bias: Vec<f32> = (0..n).map(|i| i as f32 * 0.01 - 0.2).collect();
    let epi = Fp16Epilogue {
        bias: Some(&bias),
        relu: true,
    };
    let packed = PackedF32::pack(&w, n, k).unwrap();
    for kind in Fp16Kernel::all_runnable() {
        let mut want = vec![0.0f32; m * n];
        gemm_f32_f32_with(kind, &x, m, k, &packed, &mut want, n, epi).unwrap();
        let mut got = vec![0.0f32; m * n];
        gemm_f32_rows_with(kind, &x, m, k, WeightRows::F32(&w), n, k, &mut got, n, epi).unwrap();
        assert!(
            want.iter()
                .zip(&got)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{kind}"
        );
        // the f64 dot products agree to f32 accuracy (the chains are real products)
        for (i, row) in got.chunks_exact(n).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let exact: f64 = (0..k)
                    .map(|kk| f64::from(x[i * k + kk]) * f64::from(w[j * k + kk]))
                    .sum::<f64>()
                    + f64::from(bias[j]);
                let exact = exact.max(0.0);
                assert!(
                    (f64::from(v) - exact).abs() < 1e-4,
                    "[{i}, {j}]: {v} vs {exact}"
                );
            }
        }
    }
}

#[test]
fn unpacked_rows_bad_arguments_are_errors() {
    let w = [1.0f32; 6];
    let x = [1.0f32; 6];
    let mut y = [0.0f32; 4];
    let epi = Fp16Epilogue::default();
    let rows = |w: &[f32], n, k, x: &[f32], y: &mut [f32], ldo, epi| {
        gemm_f32_rows(x, 2, 3, WeightRows::F32(w), n, k, y, ldo, epi)
    };
    assert!(matches!(
        rows(&w, 0, 3, &x, &mut y, 2, epi),
        Err(GemmError::EmptyDimension { .. })
    ));
    assert!(matches!(
        gemm_f32_rows(&x, 2, 3, WeightRows::F32(&w), 2, 0, &mut y, 2, epi),
        Err(GemmError::EmptyDimension { .. })
    ));
    assert!(matches!(
        rows(&w[..5], 2, 3, &x, &mut y, 2, epi),
        Err(GemmError::BufferTooSmall {
            needed: 6,
            got: 5,
            ..
        })
    ));
    assert!(matches!(
        rows(&w, 2, 3, &x[..5], &mut y, 2, epi),
        Err(GemmError::BufferTooSmall {
            needed: 6,
            got: 5,
            ..
        })
    ));
    assert!(matches!(
        rows(&w, 2, 3, &x, &mut y[..3], 2, epi),
        Err(GemmError::BufferTooSmall {
            needed: 4,
            got: 3,
            ..
        })
    ));
    assert!(matches!(
        rows(&w, 2, 3, &x, &mut y, 1, epi),
        Err(GemmError::StrideTooSmall {
            stride: 1,
            row_len: 2,
            ..
        })
    ));
    let bias = Fp16Epilogue {
        bias: Some(&[1.0; 3]),
        relu: false,
    };
    assert!(matches!(
        rows(&w, 2, 3, &x, &mut y, 2, bias),
        Err(GemmError::QParamsLength {
            expected: 2,
            got: 3,
            ..
        })
    ));
    // zero rows is a no-op
    gemm_f32_rows(&[], 0, 3, WeightRows::F32(&w), 2, 3, &mut [], 2, epi).unwrap();
    for kind in Fp16Kernel::ALL {
        if !kind.is_runnable() {
            let r = gemm_f32_rows_with(kind, &x, 2, 3, WeightRows::F32(&w), 2, 3, &mut y, 2, epi);
            assert!(
                matches!(r, Err(GemmError::UnsupportedFp16Kernel { .. })),
                "{kind}"
            );
        }
    }
}

#[test]
fn the_best_family_is_runnable_and_chosen_by_default() {
    let best = Fp16Kernel::best();
    assert!(best.is_runnable());
    assert!(Fp16Kernel::all_runnable().contains(&Fp16Kernel::Scalar));
    let packed = PackedF16::from_f32(&[1.0, 2.0], 1, 2).unwrap();
    let mut y = [0.0f32];
    let ran = fp16::gemm_f32_f16(
        &[3.0, 4.0],
        1,
        2,
        &packed,
        &mut y,
        1,
        Fp16Epilogue::default(),
    )
    .unwrap();
    assert_eq!((ran, y[0]), (best, 11.0));
    #[cfg(target_arch = "x86_64")]
    if std::env::var_os(qkernels::isa::ISA_ENV).is_none()
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c")
    {
        let avx512 = qkernels::isa::Isa::Avx512Vnni.is_supported();
        let expected = if avx512 {
            Fp16Kernel::Avx512
        } else {
            Fp16Kernel::Avx2F16c
        };
        assert_eq!(best, expected);
    }
}

/// `fma(1 + 2⁻²⁰, 1 + 2⁻¹⁰, −1)` keeps the 2⁻³⁰ bit an unfused multiply would round away.
#[test]
fn chains_are_fused() {
    let w = [-1.0f32, 1.0 + 2f32.powi(-10)];
    let x = [1.0f32, 1.0 + 2f32.powi(-20)];
    let want = 2f32.powi(-10) + 2f32.powi(-20) + 2f32.powi(-30);
    let packed = PackedF16::from_f32(&w, 1, 2).unwrap();
    for kind in Fp16Kernel::all_runnable() {
        let mut y = [0.0f32];
        gemm_f32_f16_with(kind, &x, 1, 2, &packed, &mut y, 1, Fp16Epilogue::default()).unwrap();
        assert_eq!(y[0], want, "{kind}");
    }
}

/// One chain per K block of 512, block sums added afterwards: 1 then 511 × 2⁻²⁴ stays 1 in
/// the first chain (each step ties back to 1), the second block's 489 × 2⁻²⁴ is exact, and
/// `1 + 489·2⁻²⁴` rounds to `1 + 244·2⁻²³`. One long chain would give 1.
#[test]
fn k_blocks_are_summed_after_their_chains() {
    let k = 1001;
    let tiny = 2f32.powi(-24);
    let w: Vec<f32> = (0..k).map(|i| if i == 0 { 1.0 } else { tiny }).collect();
    let x = vec![1.0f32; k];
    let want = 1.0 + 244.0 * 2f32.powi(-23);
    assert_eq!(K_BLOCK, 512);
    let packed = PackedF16::from_f32(&w, 1, k).unwrap();
    for kind in Fp16Kernel::all_runnable() {
        let mut y = [0.0f32];
        gemm_f32_f16_with(kind, &x, 1, k, &packed, &mut y, 1, Fp16Epilogue::default()).unwrap();
        assert_eq!(y[0], want, "{kind}");
    }
}

#[test]
fn packing_rounds_to_f16_and_keeps_the_layout() {
    let w: Vec<f32> = (0..3 * 20).map(|i| i as f32 * 0.1).collect();
    let p = PackedF16::from_f32(&w, 20, 3).unwrap();
    assert_eq!((p.n(), p.k(), p.panel_count()), (20, 3, 2));
    assert_eq!(p.packed_bytes(), 2 * 2 * 16 * 3);
    for n in 0..20 {
        for k in 0..3 {
            assert_eq!(p.get(n, k), Some(f16::from_f32(w[n * 3 + k]).to_f32()));
        }
    }
    assert_eq!(p.get(20, 0), None);
    assert_eq!(p.get(0, 3), None);
}

#[test]
fn bad_arguments_are_errors() {
    assert!(matches!(
        PackedF16::from_f32(&[], 0, 3),
        Err(GemmError::EmptyDimension { .. })
    ));
    assert!(matches!(
        PackedF16::from_f32(&[], 2, 0),
        Err(GemmError::EmptyDimension { .. })
    ));
    assert!(matches!(
        PackedF16::from_f32(&[1.0; 5], 2, 3),
        Err(GemmError::BufferTooSmall {
            needed: 6,
            got: 5,
            ..
        })
    ));
    let p = PackedF16::from_f32(&[1.0; 6], 2, 3).unwrap();
    let epi = Fp16Epilogue::default();
    let mut y = [0.0f32; 4];
    let short_x = fp16::gemm_f32_f16(&[1.0; 5], 2, 3, &p, &mut y, 2, epi);
    assert!(matches!(
        short_x,
        Err(GemmError::BufferTooSmall {
            needed: 6,
            got: 5,
            ..
        })
    ));
    let small_stride = fp16::gemm_f32_f16(&[1.0; 6], 2, 2, &p, &mut y, 2, epi);
    assert!(matches!(
        small_stride,
        Err(GemmError::StrideTooSmall {
            stride: 2,
            row_len: 3,
            ..
        })
    ));
    let short_out = fp16::gemm_f32_f16(&[1.0; 6], 2, 3, &p, &mut y[..3], 2, epi);
    assert!(matches!(
        short_out,
        Err(GemmError::BufferTooSmall {
            needed: 4,
            got: 3,
            ..
        })
    ));
    let bias = Fp16Epilogue {
        bias: Some(&[1.0; 3]),
        relu: false,
    };
    let bad_bias = fp16::gemm_f32_f16(&[1.0; 6], 2, 3, &p, &mut y, 2, bias);
    assert!(matches!(
        bad_bias,
        Err(GemmError::QParamsLength {
            expected: 2,
            got: 3,
            ..
        })
    ));
    // zero rows is a no-op
    fp16::gemm_f32_f16(&[], 0, 3, &p, &mut [], 2, epi).unwrap();
    for kind in Fp16Kernel::ALL {
        if !kind.is_runnable() {
            let r = gemm_f32_f16_with(kind, &[1.0; 6], 2, 3, &p, &mut y, 2, epi);
            assert!(
                matches!(r, Err(GemmError::UnsupportedFp16Kernel { .. })),
                "{kind}"
            );
        }
    }
}

/// Activations `[m, k]` in [-1, 1) and an f16 weight `[n, k]` (with its f32 copy) for the
/// unpacked-rows tests.
fn rows_inputs(m: usize, n: usize, k: usize) -> (Vec<f32>, Vec<f16>, Vec<f32>) {
    let x: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7919 % 1009) as f32) / 504.5 - 1.0)
        .collect();
    let w: Vec<f16> = (0..n * k)
        .map(|i| f16::from_f32(((i * 104_729 % 997) as f32) / 4986.0 - 0.1))
        .collect();
    let w32: Vec<f32> = w.iter().map(|v| v.to_f32()).collect();
    (x, w, w32)
}

/// Chunks of at least `PAR_MIN_MACS` multiply-adds split their weight rows over the pool:
/// in a 3-thread pool every family still gives the oracle's bits (f32 and f16 weights).
#[test]
fn unpacked_rows_split_over_threads_equal_the_oracle() {
    let (m, n, k) = (M_CHUNK + 5, 211, K_BLOCK + 300);
    assert!(M_CHUNK * n * k >= fp16::PAR_MIN_MACS);
    let (x, w, w32) = rows_inputs(m, n, k);
    let bias: Vec<f32> = (0..n).map(|i| i as f32 * 0.01 - 0.2).collect();
    let epi = Fp16Epilogue {
        bias: Some(&bias),
        relu: false,
    };
    let want = reference_fp16_gemm(&x, m, k, &w, n, epi);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    for kind in Fp16Kernel::all_runnable() {
        for (name, wr) in [("f16", WeightRows::F16(&w)), ("f32", WeightRows::F32(&w32))] {
            let mut got = vec![f32::NAN; m * n];
            pool.install(|| gemm_f32_rows_with(kind, &x, m, k, wr, n, k, &mut got, n, epi))
                .unwrap();
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{kind} {name}"
            );
        }
    }
}

/// Tails in every dimension (rows past two activation chunks and not a multiple of 16,
/// outputs not a multiple of 16 or of the 6-row tile, K past two K blocks and not a multiple
/// of 16), large enough to split over the pool: 1 and 2 threads give the oracle's bits, and
/// so does a smaller call after them on the same thread (the kept panel and transposed-output
/// buffers hold the larger call's values then).
#[test]
fn unpacked_rows_tails_at_one_and_two_threads_equal_the_oracle() {
    let shapes = [
        (2 * M_CHUNK + 17, 53, 2 * K_BLOCK + 13),
        (M_CHUNK + 1, 1024 + 5, 301),
        (37, 7, 19),
    ];
    for (m, n, k) in shapes {
        let (x, w, w32) = rows_inputs(m, n, k);
        let epi = Fp16Epilogue::default();
        let want = reference_fp16_gemm(&x, m, k, &w, n, epi);
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for kind in Fp16Kernel::all_runnable() {
                let mut got = vec![f32::NAN; m * n];
                pool.install(|| {
                    gemm_f32_rows_with(
                        kind,
                        &x,
                        m,
                        k,
                        WeightRows::F32(&w32),
                        n,
                        k,
                        &mut got,
                        n,
                        epi,
                    )
                })
                .unwrap();
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{kind} {m}×{k}→{n} on {threads} threads"
                );
            }
        }
    }
}
