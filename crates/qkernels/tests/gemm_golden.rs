//! PyTorch goldens (torch 2.15.0, fbgemm engine, generated on an AVX-512 VNNI CPU by
//! `tools/golden/gen_linear.py`): `quantized::linear(_relu)` and
//! `quantized::linear(_relu)_dynamic` (reduce_range) must be reproduced bit for bit by every
//! runnable kernel family. The saturating AVX2 family joins the dynamic cases only, whose
//! reduce_range activations cannot saturate.

mod common;

use common::{Case, parse, yes};

use qkernels::gemm::{
    self, Activation, Activations, Dequantize, KernelKind, Output, PackedWeights, Requantize,
    WeightQParams,
};

/// One field of a golden case: raw little-endian bytes with a type tag, or a string token.
struct Weights {
    w: Vec<i8>,
    scales: Vec<f32>,
    zps: Vec<i32>,
    per_channel: bool,
    bias: Option<Vec<f32>>,
}

impl Weights {
    fn of(c: &Case) -> Self {
        Weights {
            w: c.u8s("w").iter().map(|&b| b as i8).collect(),
            scales: c.f64s("w_scales").iter().map(|&s| s as f32).collect(),
            zps: c.i64s("w_zps").iter().map(|&z| z as i32).collect(),
            per_channel: yes(c, "per_channel"),
            bias: yes(c, "has_bias").then(|| c.f32s("bias").to_vec()),
        }
    }

    fn pack(&self, n: usize, k: usize, kind: KernelKind) -> PackedWeights {
        let q = WeightQParams::from_slices(self.per_channel, &self.scales, &self.zps)
            .expect("weight qparams");
        PackedWeights::pack(&self.w, n, k, q, kind).expect("pack")
    }
}

fn dims(c: &Case) -> (usize, usize, usize) {
    let s = c.i64s("shape");
    (s[0] as usize, s[1] as usize, s[2] as usize)
}

#[test]
fn static_linear_matches_pytorch_bit_for_bit() {
    let cases = parse(include_str!("data/linear/linear_static.golden"));
    assert!(cases.len() >= 40);
    let mut checked = 0;
    for kind in KernelKind::all_runnable()
        .into_iter()
        .filter(|k| !k.saturates_pairs())
    {
        for c in &cases {
            let (m, k, n) = dims(c);
            let w = Weights::of(c);
            let packed = w.pack(n, k, kind);
            let x = c.u8s("x_q");
            let params = Requantize {
                act_scale: c.f64s("x_scale")[0] as f32,
                out_scale: c.f64s("out_scale")[0] as f32,
                out_zero_point: c.i64s("out_zp")[0] as i32,
                bias: w.bias.as_deref(),
                activation: if yes(c, "relu") {
                    Activation::Relu
                } else {
                    Activation::None
                },
            };
            let acts = Activations {
                data: x,
                rows: m,
                row_stride: k,
                zero_point: c.i64s("x_zp")[0] as i32,
            };
            let mut y = vec![0u8; m * n];
            gemm::gemm_u8s8(
                acts,
                &packed,
                Output::QUInt8 {
                    params,
                    out: &mut y,
                    ldc: n,
                },
            )
            .expect("gemm");
            let want = c.u8s("y");
            let bad = y.iter().zip(want).filter(|(a, b)| a != b).count();
            assert_eq!(
                bad,
                0,
                "{kind}: case {}: {bad} of {} outputs differ",
                c.name,
                y.len()
            );
            checked += y.len();
        }
    }
    assert!(checked > 0);
}

#[test]
fn dynamic_linear_matches_pytorch_bit_for_bit() {
    let cases = parse(include_str!("data/linear/linear_dynamic.golden"));
    assert!(cases.len() >= 40);
    for kind in KernelKind::all_runnable() {
        for c in &cases {
            let (m, k, n) = dims(c);
            let w = Weights::of(c);
            let packed = w.pack(n, k, kind);
            let x = c.f32s("x");
            // fbgemm's dynamic path: FindMinMax, quant_utils::ChooseQuantizationParams with
            // reduce_range, QuantizeAvx2 with the scale cast to float.
            let (lo, hi) = x
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            let (scale, zp) =
                qtensor::choose_qparams_quant_utils(lo, hi, 0, 255, false, false, true);
            let mut q = vec![0u8; m * k];
            qtensor::quantize_slice_u8(x, scale as f32, zp, &mut q).expect("quantize");
            assert!(
                q.iter().all(|&v| v <= 127),
                "reduce_range activations are 7-bit"
            );
            let params = Dequantize {
                act_scale: scale as f32,
                bias: w.bias.as_deref(),
                relu: yes(c, "relu"),
            };
            let acts = Activations {
                data: &q,
                rows: m,
                row_stride: k,
                zero_point: zp,
            };
            let mut y = vec![0f32; m * n];
            gemm::gemm_u8s8(
                acts,
                &packed,
                Output::F32 {
                    params,
                    out: &mut y,
                    ldc: n,
                },
            )
            .expect("gemm");
            let want = c.f32s("y");
            let bad: Vec<_> = y
                .iter()
                .zip(want)
                .enumerate()
                .filter(|(_, (a, b))| a.to_bits() != b.to_bits())
                .take(3)
                .collect();
            assert!(
                bad.is_empty(),
                "{kind}: case {}: first mismatches (index, (ours, torch)) {bad:?}",
                c.name
            );
        }
    }
}
