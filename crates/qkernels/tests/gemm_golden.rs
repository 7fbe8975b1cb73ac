//! PyTorch goldens (torch 2.15.0, fbgemm engine, generated on an AVX-512 VNNI CPU by
//! `tools/golden/gen_linear.py`): `quantized::linear(_relu)` and
//! `quantized::linear(_relu)_dynamic` (reduce_range) must be reproduced bit for bit by every
//! runnable kernel family. The saturating AVX2 family joins the dynamic cases only, whose
//! reduce_range activations cannot saturate.

use std::collections::HashMap;

use qkernels::gemm::{
    self, Activation, Activations, Dequantize, KernelKind, Output, PackedWeights, Requantize,
    WeightQParams,
};

/// One field of a golden case: raw little-endian bytes with a type tag, or a string token.
enum Field {
    Bytes(String, Vec<u8>),
    Str(String),
}

type Case = (String, HashMap<String, Field>);

/// Parses the golden v1 format (see tools/golden/README.md), checking the `# cases` count.
fn parse(text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    let mut declared = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# cases ") {
            declared = Some(rest.trim().parse::<usize>().expect("case count"));
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.split(' ').collect();
        if parts[0] == "case" {
            cases.push((parts[1].to_string(), HashMap::new()));
            continue;
        }
        let fields = &mut cases.last_mut().expect("field before first case").1;
        let field = if parts[1] == "str" {
            Field::Str(parts[2].to_string())
        } else {
            let hex = parts[3];
            let bytes = if hex == "-" {
                Vec::new()
            } else {
                (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                    .collect()
            };
            Field::Bytes(parts[1].to_string(), bytes)
        };
        fields.insert(parts[0].to_string(), field);
    }
    assert_eq!(declared, Some(cases.len()), "truncated golden file");
    cases
}

fn bytes<'a>(c: &'a Case, key: &str, ty: &str) -> &'a [u8] {
    match c.1.get(key) {
        Some(Field::Bytes(t, b)) if t == ty => b,
        _ => panic!("case {}: field {key} of type {ty} missing", c.0),
    }
}

fn flag(c: &Case, key: &str) -> bool {
    match c.1.get(key) {
        Some(Field::Str(s)) => s == "yes",
        _ => panic!("case {}: string field {key} missing", c.0),
    }
}

fn f64s(c: &Case, key: &str) -> Vec<f64> {
    bytes(c, key, "f64")
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn i64s(c: &Case, key: &str) -> Vec<i64> {
    bytes(c, key, "i64")
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn f32s(c: &Case, key: &str) -> Vec<f32> {
    bytes(c, key, "f32")
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// The weights of a case, packed for `kind` the way fbgemm's prepack stores them
/// (scales as float, zero points as int).
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
            w: bytes(c, "w", "u8").iter().map(|&b| b as i8).collect(),
            scales: f64s(c, "w_scales").into_iter().map(|s| s as f32).collect(),
            zps: i64s(c, "w_zps").into_iter().map(|z| z as i32).collect(),
            per_channel: flag(c, "per_channel"),
            bias: flag(c, "has_bias").then(|| f32s(c, "bias")),
        }
    }

    fn pack(&self, n: usize, k: usize, kind: KernelKind) -> PackedWeights {
        let q = if self.per_channel {
            WeightQParams::PerChannel {
                scales: &self.scales,
                zero_points: &self.zps,
            }
        } else {
            WeightQParams::PerTensor {
                scale: self.scales[0],
                zero_point: self.zps[0],
            }
        };
        PackedWeights::pack(&self.w, n, k, q, kind).expect("pack")
    }
}

fn dims(c: &Case) -> (usize, usize, usize) {
    let s = i64s(c, "shape");
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
            let x = bytes(c, "x_q", "u8");
            let params = Requantize {
                act_scale: f64s(c, "x_scale")[0] as f32,
                out_scale: f64s(c, "out_scale")[0] as f32,
                out_zero_point: i64s(c, "out_zp")[0] as i32,
                bias: w.bias.as_deref(),
                activation: if flag(c, "relu") {
                    Activation::Relu
                } else {
                    Activation::None
                },
            };
            let acts = Activations {
                data: x,
                rows: m,
                row_stride: k,
                zero_point: i64s(c, "x_zp")[0] as i32,
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
            let want = bytes(c, "y", "u8");
            let bad = y.iter().zip(want).filter(|(a, b)| a != b).count();
            assert_eq!(
                bad,
                0,
                "{kind}: case {}: {bad} of {} outputs differ",
                c.0,
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
            let x = f32s(c, "x");
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
            qtensor::quantize_slice_u8(&x, scale as f32, zp, &mut q).expect("quantize");
            assert!(
                q.iter().all(|&v| v <= 127),
                "reduce_range activations are 7-bit"
            );
            let params = Dequantize {
                act_scale: scale as f32,
                bias: w.bias.as_deref(),
                relu: flag(c, "relu"),
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
            let want = f32s(c, "y");
            let bad: Vec<_> = y
                .iter()
                .zip(&want)
                .enumerate()
                .filter(|(_, (a, b))| a.to_bits() != b.to_bits())
                .take(3)
                .collect();
            assert!(
                bad.is_empty(),
                "{kind}: case {}: first mismatches (index, (ours, torch)) {bad:?}",
                c.0
            );
        }
    }
}
