//! Float GEMM tests against the naive oracle, over strides, layouts, alpha/beta and errors.

use half::f16;

use super::*;

/// Deterministic values in [-1, 1) (xorshift32).
fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// A buffer holding an `rows x cols` matrix with the given layout and padding, plus its strides.
fn layout(
    rows: usize,
    cols: usize,
    col_major: bool,
    pad: usize,
    seed: u32,
) -> (Vec<f32>, usize, usize) {
    let (rs, cs) = if col_major {
        (1, rows + pad)
    } else {
        (cols + pad, 1)
    };
    let len = if col_major {
        (rows + pad) * cols
    } else {
        rows * (cols + pad)
    };
    (values(len, seed), rs, cs)
}

fn assert_close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "element {i}: got {g}, want {w}"
        );
    }
}

#[test]
fn sgemm_matches_reference_over_layouts_and_scalars() {
    let shapes = [(1, 1, 1), (3, 5, 7), (17, 33, 9), (64, 40, 31), (2, 130, 3)];
    for &(m, k, n) in &shapes {
        for a_cm in [false, true] {
            for b_cm in [false, true] {
                for c_cm in [false, true] {
                    for &(alpha, beta) in &[(1.0f32, 0.0f32), (0.5, 1.0), (-2.0, 0.25)] {
                        let (a, ars, acs) = layout(m, k, a_cm, 1, 1);
                        let (b, brs, bcs) = layout(k, n, b_cm, 2, 2);
                        let (c0, crs, ccs) = layout(m, n, c_cm, 3, 3);
                        let mut got = c0.clone();
                        let mut want = c0.clone();
                        let av = MatRef::new(&a, m, k, ars, acs).unwrap();
                        let bv = MatRef::new(&b, k, n, brs, bcs).unwrap();
                        sgemm(
                            alpha,
                            av,
                            bv,
                            beta,
                            MatMut::new(&mut got, m, n, crs, ccs).unwrap(),
                            Threads::Single,
                        )
                        .unwrap();
                        reference_sgemm(
                            alpha,
                            av,
                            bv,
                            beta,
                            MatMut::new(&mut want, m, n, crs, ccs).unwrap(),
                        )
                        .unwrap();
                        assert_close(&got, &want, 1e-4 * k as f32);
                    }
                }
            }
        }
    }
}

#[test]
fn transposed_view_multiplies_by_the_transpose() {
    // y = x wᵀ with w stored [n, k] row-major, the Linear layout.
    let (m, k, n) = (5, 6, 4);
    let x = values(m * k, 7);
    let w = values(n * k, 8);
    let mut y = vec![0.0; m * n];
    sgemm(
        1.0,
        MatRef::row_major(&x, m, k).unwrap(),
        MatRef::row_major(&w, n, k).unwrap().t(),
        0.0,
        MatMut::row_major(&mut y, m, n).unwrap(),
        Threads::Single,
    )
    .unwrap();
    for i in 0..m {
        for j in 0..n {
            let want: f32 = (0..k).map(|p| x[i * k + p] * w[j * k + p]).sum();
            assert!(
                (y[i * n + j] - want).abs() < 1e-5,
                "({i},{j}) {} vs {want}",
                y[i * n + j]
            );
        }
    }
}

#[test]
fn beta_zero_ignores_nan_in_destination_and_beta_one_accumulates() {
    let a = [1.0f32, 2.0];
    let b = [3.0f32, 4.0];
    let mut c = [f32::NAN];
    sgemm(
        1.0,
        MatRef::row_major(&a, 1, 2).unwrap(),
        MatRef::row_major(&b, 2, 1).unwrap(),
        0.0,
        MatMut::row_major(&mut c, 1, 1).unwrap(),
        Threads::Single,
    )
    .unwrap();
    assert_eq!(c, [11.0]);
    sgemm(
        1.0,
        MatRef::row_major(&a, 1, 2).unwrap(),
        MatRef::row_major(&b, 2, 1).unwrap(),
        1.0,
        MatMut::row_major(&mut c, 1, 1).unwrap(),
        Threads::Single,
    )
    .unwrap();
    assert_eq!(c, [22.0]);
}

#[test]
fn empty_inner_dimension_scales_destination() {
    let mut c = [2.0f32, f32::NAN];
    sgemm(
        1.0,
        MatRef::row_major(&[], 2, 0).unwrap(),
        MatRef::row_major(&[], 0, 1).unwrap(),
        0.0,
        MatMut::row_major(&mut c, 2, 1).unwrap(),
        Threads::Single,
    )
    .unwrap();
    assert_eq!(c, [0.0, 0.0]);
    let mut c = [2.0f32, 3.0];
    sgemm(
        1.0,
        MatRef::row_major(&[], 2, 0).unwrap(),
        MatRef::row_major(&[], 0, 1).unwrap(),
        0.5,
        MatMut::row_major(&mut c, 2, 1).unwrap(),
        Threads::Single,
    )
    .unwrap();
    assert_eq!(c, [1.0, 1.5]);
}

#[test]
fn rayon_threads_agree_with_single_thread() {
    let (m, k, n) = (96, 200, 130);
    let a = values(m * k, 11);
    let b = values(k * n, 12);
    let mut one = vec![0.0; m * n];
    let mut many = vec![0.0; m * n];
    let av = MatRef::row_major(&a, m, k).unwrap();
    let bv = MatRef::row_major(&b, k, n).unwrap();
    sgemm(
        1.0,
        av,
        bv,
        0.0,
        MatMut::row_major(&mut one, m, n).unwrap(),
        Threads::Single,
    )
    .unwrap();
    sgemm(
        1.0,
        av,
        bv,
        0.0,
        MatMut::row_major(&mut many, m, n).unwrap(),
        Threads::Rayon(0),
    )
    .unwrap();
    assert_close(&many, &one, 1e-5);
}

#[test]
fn views_reject_out_of_bounds_and_overlap() {
    let data = [0.0f32; 6];
    assert_eq!(
        MatRef::new(&data, 2, 4, 4, 1).unwrap_err(),
        FloatGemmError::ViewOutOfBounds {
            rows: 2,
            cols: 4,
            row_stride: 4,
            col_stride: 1,
            needed: 8,
            len: 6
        }
    );
    assert!(matches!(
        MatRef::new(&data, usize::MAX, 2, usize::MAX, 1),
        Err(FloatGemmError::StrideTooLarge { .. })
    ));
    assert!(
        MatRef::new(&data, 3, 2, 0, 1).is_ok(),
        "broadcast rows are fine for inputs"
    );
    let mut out = [0.0f32; 6];
    assert_eq!(
        MatMut::new(&mut out, 3, 2, 0, 1).unwrap_err(),
        FloatGemmError::OverlappingDestination {
            rows: 3,
            cols: 2,
            row_stride: 0,
            col_stride: 1
        }
    );
    assert!(MatMut::new(&mut out, 2, 2, 1, 1).is_err());
    assert!(
        MatMut::new(&mut out, 2, 3, 1, 2).is_ok(),
        "column-major is fine"
    );
}

#[test]
fn shape_mismatch_names_all_three_shapes() {
    let a = [0.0f32; 6];
    let b = [0.0f32; 6];
    let mut c = [0.0f32; 4];
    let err = sgemm(
        1.0,
        MatRef::row_major(&a, 2, 3).unwrap(),
        MatRef::row_major(&b, 2, 3).unwrap(),
        0.0,
        MatMut::row_major(&mut c, 2, 2).unwrap(),
        Threads::Single,
    )
    .unwrap_err();
    assert_eq!(
        err,
        FloatGemmError::ShapeMismatch {
            a: [2, 3],
            b: [2, 3],
            c: [2, 2]
        }
    );
    assert_eq!(
        err.to_string(),
        "gemm shape mismatch: a is [2, 3], b is [2, 3], c is [2, 2]"
    );
}

#[test]
fn hgemm_accumulates_in_f32_and_rounds_once() {
    let (m, k, n) = (9, 70, 11);
    let a: Vec<f16> = values(m * k, 21).into_iter().map(f16::from_f32).collect();
    let b: Vec<f16> = values(k * n, 22).into_iter().map(f16::from_f32).collect();
    let mut c = vec![f16::ZERO; m * n];
    hgemm(
        1.0,
        MatRef::row_major(&a, m, k).unwrap(),
        MatRef::row_major(&b, k, n).unwrap(),
        0.0,
        MatMut::row_major(&mut c, m, n).unwrap(),
        Threads::Single,
    )
    .unwrap();
    for i in 0..m {
        for j in 0..n {
            let exact: f32 = (0..k)
                .map(|p| a[i * k + p].to_f32() * b[p * n + j].to_f32())
                .sum();
            let got = c[i * n + j].to_f32();
            // one f16 rounding of an f32 sum: within half an f16 ulp (2^-11 relative) plus f32 noise
            assert!(
                (got - exact).abs() <= exact.abs() * 4.9e-4 + 1e-4,
                "({i},{j}) {got} vs {exact}"
            );
        }
    }
}

#[test]
fn gemm_mixed_equals_sgemm_on_widened_values() {
    let (m, k, n) = (8, 30, 13);
    let x = values(m * k, 31);
    let w16: Vec<f16> = values(n * k, 32).into_iter().map(f16::from_f32).collect();
    // the widened operand is a contiguous row-major copy of wᵀ: [k, n]
    let wt32: Vec<f32> = (0..k * n)
        .map(|idx| w16[(idx % n) * k + idx / n].to_f32())
        .collect();
    let mut got = vec![0.0; m * n];
    let mut want = vec![0.0; m * n];
    let xv = MatRef::row_major(&x, m, k).unwrap();
    gemm_mixed(
        1.0,
        FloatMat::F32(xv),
        FloatMat::F16(MatRef::row_major(&w16, n, k).unwrap().t()),
        0.0,
        MatMut::row_major(&mut got, m, n).unwrap(),
        Threads::Single,
    )
    .unwrap();
    sgemm(
        1.0,
        xv,
        MatRef::row_major(&wt32, k, n).unwrap(),
        0.0,
        MatMut::row_major(&mut want, m, n).unwrap(),
        Threads::Single,
    )
    .unwrap();
    // same values, summed in another order (the f16 operand is widened block by block)
    assert_close(&got, &want, 1e-5);
}

/// The two special paths of `gemm_mixed`: one activation row times a transposed f16 weight
/// (the batch-1 Linear, on `gemv_f16`), and a small f16 left operand (a convolution's weights,
/// widened whole) — both against the naive f32 product of the widened values, with and without
/// accumulation into `C`.
#[test]
fn gemm_mixed_one_row_and_f16_left_operand_match_the_reference() {
    for (k, n) in [(1usize, 1usize), (17, 5), (400, 120), (84, 10)] {
        let x = values(k, 41);
        let w16: Vec<f16> = values(n * k, 42).into_iter().map(f16::from_f32).collect();
        let w32: Vec<f32> = w16.iter().map(|h| h.to_f32()).collect();
        for beta in [0.0f32, 1.0] {
            let c0 = values(n, 43);
            let (mut got, mut want) = (c0.clone(), c0.clone());
            gemm_mixed(
                0.5,
                FloatMat::F32(MatRef::row_major(&x, 1, k).unwrap()),
                FloatMat::F16(MatRef::row_major(&w16, n, k).unwrap().t()),
                beta,
                MatMut::row_major(&mut got, 1, n).unwrap(),
                Threads::Single,
            )
            .unwrap();
            reference_sgemm(
                0.5,
                MatRef::row_major(&x, 1, k).unwrap(),
                MatRef::row_major(&w32, n, k).unwrap().t(),
                beta,
                MatMut::row_major(&mut want, 1, n).unwrap(),
            )
            .unwrap();
            assert_close(&got, &want, 1e-5 * k as f32);
        }
        // f16 weights on the left: W [n, k] times columns [k, 7]
        let cols = values(k * 7, 44);
        let (mut got, mut want) = (vec![0.0; n * 7], vec![0.0; n * 7]);
        gemm_mixed(
            1.0,
            FloatMat::F16(MatRef::row_major(&w16, n, k).unwrap()),
            FloatMat::F32(MatRef::row_major(&cols, k, 7).unwrap()),
            0.0,
            MatMut::row_major(&mut got, n, 7).unwrap(),
            Threads::Single,
        )
        .unwrap();
        reference_sgemm(
            1.0,
            MatRef::row_major(&w32, n, k).unwrap(),
            MatRef::row_major(&cols, k, 7).unwrap(),
            0.0,
            MatMut::row_major(&mut want, n, 7).unwrap(),
        )
        .unwrap();
        assert_close(&got, &want, 1e-5 * k as f32);
    }
}

/// `gemm_mixed`'s one-row f32 path (the fp32 Linear at batch 1: `gemv_f32` on AVX2 CPUs, the
/// crate elsewhere) against the naive product, with and without accumulation, on one thread
/// and on a 2-thread pool above the split threshold (same bits as one thread).
#[test]
fn gemm_mixed_one_row_f32_matches_the_reference_on_any_pool() {
    for (k, n) in [(1usize, 1usize), (17, 5), (400, 120), (1024, 300)] {
        let x = values(k, 51);
        let w = values(n * k, 52);
        for beta in [0.0f32, 1.0] {
            let c0 = values(n, 53);
            let run = |threads: Threads| {
                let mut got = c0.clone();
                gemm_mixed(
                    0.5,
                    FloatMat::F32(MatRef::row_major(&x, 1, k).unwrap()),
                    FloatMat::F32(MatRef::row_major(&w, n, k).unwrap().t()),
                    beta,
                    MatMut::row_major(&mut got, 1, n).unwrap(),
                    threads,
                )
                .unwrap();
                got
            };
            let got = run(Threads::Single);
            let mut want = c0.clone();
            reference_sgemm(
                0.5,
                MatRef::row_major(&x, 1, k).unwrap(),
                MatRef::row_major(&w, n, k).unwrap().t(),
                beta,
                MatMut::row_major(&mut want, 1, n).unwrap(),
            )
            .unwrap();
            assert_close(&got, &want, 1e-5 * k as f32);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            let two = pool.install(|| run(Threads::Rayon(0)));
            let b = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(b(&two), b(&got), "k={k} n={n} beta={beta}");
        }
    }
}
