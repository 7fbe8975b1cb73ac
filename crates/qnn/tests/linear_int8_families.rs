//! Which int8 GEMM family the quantized Linear runs, and that the choice never changes a bit.
//!
//! On AVX2 without VNNI the weight is packed for the saturating `vpmaddubsw` family (exact for
//! `reduce_range` activations, `0..=127`) and for the exact widening family (every other
//! input); elsewhere only the best exact family exists. Either way the output must equal the
//! scalar kernel's, and each call must run the family its activations allow.

use qkernels::gemm::{
    self, Activation, Activations, KernelKind, Output, PackedWeights, Requantize, WeightQParams,
};
use qnn::quantized::Linear;
use qtensor::{IntRepr, Layout, QDType, QParams, QTensor, Tensor};

const N: usize = 37;
const K: usize = 301;
const M: usize = 5;

/// Deterministic pseudo-random bytes.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The family packed first for reduce_range activations, and the exact fallback, if any.
fn families() -> (KernelKind, Option<KernelKind>) {
    let best = KernelKind::best();
    if best == KernelKind::Avx2 && KernelKind::Avx2Saturating.is_runnable() {
        (KernelKind::Avx2Saturating, Some(best))
    } else {
        (best, None)
    }
}

fn runs() -> Vec<u64> {
    KernelKind::ALL
        .iter()
        .map(|&k| gemm::kernel_runs(k))
        .collect()
}

/// The families whose run counters moved since `before`.
fn ran_since(before: &[u64]) -> Vec<KernelKind> {
    KernelKind::ALL
        .iter()
        .zip(before)
        .filter(|&(&k, &b)| gemm::kernel_runs(k) > b)
        .map(|(&k, _)| k)
        .collect()
}

/// One test (not several) so no other test in this process moves the run counters between
/// the before/after reads.
#[test]
fn linear_takes_the_saturating_family_only_where_exact_and_matches_the_scalar_kernel() {
    // Weights in -128..=127 (the -128 makes full-range pairs saturate), per channel.
    let w_int: Vec<i8> = bytes(N * K, 3).into_iter().map(|b| b as i8).collect();
    let scales: Vec<f64> = (0..N).map(|i| 0.01 + 0.001 * i as f64).collect();
    let w = Tensor::new(
        &[N, K],
        w_int
            .iter()
            .enumerate()
            .map(|(i, &v)| f32::from(v) * scales[i / K] as f32)
            .collect(),
    )
    .unwrap();
    let bias = Tensor::new(&[N], (0..N).map(|i| i as f32 * 0.3 - 5.0).collect()).unwrap();
    let qparams = QParams::PerChannel {
        scales: scales.clone(),
        zero_points: vec![0; N],
        axis: 0,
    };
    let layer = Linear::from_weights(&w, Some(&bias), &qparams, 0.7, 100).unwrap();
    assert_eq!(layer.weight_int().data(), &w_int[..]);
    let (fast, exact) = families();

    let raw = bytes(M * K, 9);
    for (a, expect) in [
        (raw.iter().map(|&v| v >> 1).collect::<Vec<u8>>(), fast),
        (raw.clone(), exact.unwrap_or(fast)),
    ] {
        let (in_scale, in_zp) = (0.05f32, 64);
        let x = QTensor::from_u8_storage(
            a.clone(),
            &[M, K],
            Layout::RowMajor,
            QDType::QUInt8,
            QParams::PerTensor {
                scale: f64::from(in_scale),
                zero_point: in_zp,
            },
        )
        .unwrap();
        let before = runs();
        let y = layer.apply(&x).unwrap();
        assert_eq!(
            ran_since(&before),
            vec![expect],
            "a_max {:?}",
            a.iter().max()
        );

        let s32: Vec<f32> = scales.iter().map(|&s| s as f32).collect();
        let zps = vec![0i32; N];
        let q = WeightQParams::PerChannel {
            scales: &s32,
            zero_points: &zps,
        };
        let scalar = PackedWeights::pack(&w_int, N, K, q, KernelKind::Scalar).unwrap();
        let mut want = vec![0u8; M * N];
        gemm::gemm_u8s8(
            Activations {
                data: &a,
                rows: M,
                row_stride: K,
                zero_point: in_zp as i32,
            },
            &scalar,
            Output::QUInt8 {
                params: Requantize {
                    act_scale: in_scale,
                    out_scale: 0.7,
                    out_zero_point: 100,
                    bias: Some(bias.data()),
                    activation: Activation::None,
                },
                out: &mut want,
                ldc: N,
            },
        )
        .unwrap();
        let IntRepr::U8(got) = y.int_repr() else {
            panic!("quint8 output expected");
        };
        assert_eq!(got.data(), &want[..]);
        // The outputs are not all clamped (the comparison says something).
        assert!(want.iter().any(|&v| v != 0 && v != 255));
    }
}
