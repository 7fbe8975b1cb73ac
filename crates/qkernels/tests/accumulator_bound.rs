//! The i32 accumulator contract at its edge (issue #9): `K·max(za, 255 − za)·max|W − zw|`
//! ≤ `i32::MAX` runs, and every runnable kernel family then equals the scalar oracle bit for
//! bit (raw i32, requantized and dequantized outputs); one step beyond, every family refuses
//! with [`GemmError::AccumulatorOverflow`] and leaves the output untouched — never a wrapped
//! result, never a debug-overflow panic. fbgemm instead wraps silently in i32.
//!
//! The extreme operands (u8 255 or 0 against an activation zero point at the other end, i8
//! −128 or 127 against a weight zero point at the other end) put the sums within 0.0001 % of
//! `i32::MIN` / `i32::MAX`.

use qkernels::GemmError;
use qkernels::conv::{self, ConvError, ConvGeometry, PackedConvWeights};
use qkernels::gemm::reference::{self, Accumulation};
use qkernels::gemm::{
    self, Activation, Activations, Dequantize, KernelKind, Output, PackedWeights, Requantize,
    WeightQParams,
};

/// The largest K the documented bound admits for these zero points and weights.
fn k_max(za: i32, w_abs_max: u64) -> usize {
    let a_max = za.max(255 - za) as u64;
    (i32::MAX as u64 / (a_max * w_abs_max)) as usize
}

/// One extreme problem: `m = 3` rows (all at the extreme, a mixed pattern, alternating ends)
/// times `n = 5` output channels (extreme, mixed, and the other end), depth `k`.
struct Problem {
    k: usize,
    a: Vec<u8>,
    za: i32,
    w: Vec<i8>,
    zw: i32,
}

const M: usize = 3;
const N: usize = 5;

impl Problem {
    fn new(k: usize, a_extreme: u8, za: i32, w_extreme: i8, zw: i32) -> Self {
        let mut a = Vec::with_capacity(M * k);
        a.extend(std::iter::repeat_n(a_extreme, k));
        a.extend((0..k).map(|i| (i * 7919 % 256) as u8));
        a.extend((0..k).map(|i| if i % 2 == 0 { 0 } else { 255 }));
        let mut w = Vec::with_capacity(N * k);
        w.extend(std::iter::repeat_n(w_extreme, k));
        w.extend((0..k).map(|i| (i * 104_729 % 256) as u8 as i8));
        w.extend(std::iter::repeat_n(w_extreme, k));
        w.extend((0..k).map(|i| if i % 3 == 0 { -128 } else { 127 }));
        let other = if w_extreme == -128 { 127 } else { -128 };
        w.extend(std::iter::repeat_n(other, k));
        Problem { k, a, za, w, zw }
    }

    fn qparams(&self) -> WeightQParams<'static> {
        WeightQParams::PerTensor {
            scale: 1.0,
            zero_point: self.zw,
        }
    }

    fn acts(&self) -> Activations<'_> {
        Activations {
            data: &self.a,
            rows: M,
            row_stride: self.k,
            zero_point: self.za,
        }
    }
}

/// Requantization that maps the whole i32 range onto 0..=255 without clamping everything.
fn requantize() -> Requantize<'static> {
    Requantize {
        act_scale: 1.0,
        out_scale: 16_777_216.0, // 2^24: ±2^31 → ±128
        out_zero_point: 128,
        bias: None,
        activation: Activation::None,
    }
}

/// The three pipelines of `kind` (or of the oracle when `kind` is `None`) as bit patterns.
fn outputs(p: &Problem, kind: Option<KernelKind>, acc: Accumulation) -> [Vec<u32>; 3] {
    let packed = kind.map(|k| PackedWeights::pack(&p.w, N, p.k, p.qparams(), k).expect("pack"));
    let run = |out: Output<'_>| match &packed {
        Some(w) => {
            gemm::gemm_u8s8(p.acts(), w, out).expect("kernel");
        }
        None => reference::gemm_u8s8(&p.a, M, p.k, p.za, &p.w, N, p.k, p.qparams(), acc, out)
            .expect("oracle"),
    };
    let mut raw = vec![7i32; M * N];
    run(Output::I32 {
        out: &mut raw,
        ldc: N,
    });
    let mut q = vec![7u8; M * N];
    run(Output::QUInt8 {
        params: requantize(),
        out: &mut q,
        ldc: N,
    });
    let mut f = vec![7.0f32; M * N];
    run(Output::F32 {
        params: Dequantize {
            act_scale: 1.0,
            bias: None,
            relu: false,
        },
        out: &mut f,
        ldc: N,
    });
    [
        raw.iter().map(|&x| x as u32).collect(),
        q.iter().map(|&x| u32::from(x)).collect(),
        f.iter().map(|x| x.to_bits()).collect(),
    ]
}

fn accumulation(kind: KernelKind) -> Accumulation {
    if kind.saturates_pairs() {
        Accumulation::PairSaturating16
    } else {
        Accumulation::Exact
    }
}

/// The operand combinations at the ends of both ranges: (a, za, w, zw, max|W − zw|).
const EXTREMES: [(u8, i32, i8, i32, u64); 4] = [
    (255, 0, -128, 0, 128),   // sums towards i32::MIN
    (0, 255, -128, 0, 128),   // sums towards i32::MAX
    (255, 0, -128, 127, 255), // widest weight offset
    (0, 255, 127, -128, 255),
];

#[test]
fn every_kernel_equals_the_oracle_at_the_bound() {
    for (a, za, w, zw, w_abs) in EXTREMES {
        let k = k_max(za, w_abs);
        let p = Problem::new(k, a, za, w, zw);
        let exact = outputs(&p, None, Accumulation::Exact);
        // The extreme row really is within a hair of the i32 ends.
        let corner = i64::from(exact[0][0] as i32);
        assert!(
            corner.abs() > i64::from(i32::MAX) - 70_000,
            "k={k} sum={corner}"
        );
        for kind in KernelKind::all_runnable() {
            let want = if kind.saturates_pairs() {
                outputs(&p, None, accumulation(kind))
            } else {
                exact.clone()
            };
            let got = outputs(&p, Some(kind), accumulation(kind));
            for (pipe, (g, w)) in ["i32", "quint8", "f32"].iter().zip(got.iter().zip(&want)) {
                assert_eq!(g, w, "{kind} {pipe} at k={k} za={za} zw={zw}");
            }
        }
    }
}

#[test]
fn every_kernel_refuses_one_step_beyond_the_bound() {
    for (a, za, w, zw, w_abs) in EXTREMES {
        let k = k_max(za, w_abs) + 1;
        let p = Problem::new(k, a, za, w, zw);
        for kind in KernelKind::all_runnable() {
            let packed = PackedWeights::pack(&p.w, N, k, p.qparams(), kind).expect("pack");
            let mut raw = vec![7i32; M * N];
            let err = gemm::gemm_u8s8(
                p.acts(),
                &packed,
                Output::I32 {
                    out: &mut raw,
                    ldc: N,
                },
            );
            let bound = k as u64 * za.max(255 - za) as u64 * w_abs;
            assert!(bound > i32::MAX as u64);
            assert_eq!(
                err,
                Err(GemmError::AccumulatorOverflow {
                    k,
                    a_zero_point: za,
                    w_abs_max: w_abs as u32,
                    bound,
                }),
                "{kind}"
            );
            assert!(raw.iter().all(|&x| x == 7), "{kind} wrote output");
            let mut q = vec![7u8; M * N];
            let err = gemm::gemm_u8s8(
                p.acts(),
                &packed,
                Output::QUInt8 {
                    params: requantize(),
                    out: &mut q,
                    ldc: N,
                },
            );
            assert!(
                matches!(err, Err(GemmError::AccumulatorOverflow { .. })),
                "{kind}"
            );
            assert!(q.iter().all(|&x| x == 7), "{kind} wrote output");
        }
    }
}

/// A 3×3 conv (im2col/implicit path) and a 1×1 conv (GEMM path) whose reduction depth sits at
/// and one step beyond the bound.
#[test]
fn conv_paths_agree_at_the_bound_and_refuse_beyond() {
    let bound = k_max(0, 128); // a = 255, za = 0, w = −128, zw = 0
    for (kernel, spatial) in [(3usize, 4usize), (1, 2)] {
        let taps = kernel * kernel;
        for (channels, fits) in [(bound / taps, true), (bound / taps + 1, false)] {
            let g = ConvGeometry::new(1, channels, 2, 1, &[spatial, spatial], &[kernel, kernel])
                .expect("geometry");
            let pixels = spatial * spatial;
            // NHWC: every pixel at 255 except a mixed last pixel.
            let input: Vec<u8> = (0..pixels * channels)
                .map(|i| {
                    if i / channels == pixels - 1 {
                        (i * 31 % 256) as u8
                    } else {
                        255
                    }
                })
                .collect();
            // Output channel 0 all −128, channel 1 mixed.
            let weights: Vec<i8> = (0..2 * channels * taps)
                .map(|i| {
                    if i < channels * taps {
                        -128
                    } else {
                        (i * 13 % 256) as u8 as i8
                    }
                })
                .collect();
            let q = WeightQParams::PerTensor {
                scale: 1.0,
                zero_point: 0,
            };
            let want = conv::reference::conv_u8s8(&g, &input, 0, &weights, q, requantize());
            for kind in KernelKind::all_runnable() {
                let packed = PackedConvWeights::pack(&weights, &g, q, kind).expect("pack");
                let mut out = vec![7u8; g.output_len().expect("output")];
                let got = conv::conv_u8s8(&g, &input, 0, &packed, requantize(), &mut out);
                if fits {
                    assert_eq!(got, Ok(kind));
                    if !kind.saturates_pairs() {
                        let want = want.as_ref().expect("oracle");
                        assert_eq!(&out, want, "{kind} {kernel}x{kernel} C={channels}");
                        assert!(
                            out.contains(&0),
                            "the extreme channel must reach the bottom"
                        );
                    }
                } else {
                    assert!(
                        matches!(
                            got,
                            Err(ConvError::Gemm(GemmError::AccumulatorOverflow { .. }))
                        ),
                        "{kind} {kernel}x{kernel} C={channels}: {got:?}"
                    );
                    assert!(out.iter().all(|&x| x == 7), "{kind} wrote output");
                }
            }
        }
    }
}
