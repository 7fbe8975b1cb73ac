//! PyTorch goldens (torch 2.15.0, fbgemm engine, `tools/golden/gen_conv.py`):
//! `quantized::conv1d/conv2d/conv3d(_relu)` must be reproduced bit for bit by every runnable
//! kernel family (the exact ones; the saturating AVX2 family is opt-in and skipped), and
//! by the scalar oracle.

use std::collections::HashMap;

use qkernels::conv::{self, ConvGeometry, PackedConvWeights, reference};
use qkernels::gemm::{Activation, KernelKind, Requantize, WeightQParams};

enum Field {
    Bytes(String, Vec<u8>),
    Str(String),
}

struct Case {
    name: String,
    fields: HashMap<String, Field>,
}

/// Parses the golden v1 format (tools/golden/README.md), checking the `# cases` count.
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
            cases.push(Case {
                name: parts[1].to_string(),
                fields: HashMap::new(),
            });
            continue;
        }
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
        let case = cases.last_mut().expect("field before first case");
        case.fields.insert(parts[0].to_string(), field);
    }
    assert_eq!(declared, Some(cases.len()), "truncated golden file");
    assert!(!cases.is_empty());
    cases
}

impl Case {
    fn bytes(&self, key: &str, ty: &str) -> &[u8] {
        match self.fields.get(key) {
            Some(Field::Bytes(t, b)) if t == ty => b,
            _ => panic!("case {}: field {key} of type {ty} missing", self.name),
        }
    }
    fn flag(&self, key: &str) -> bool {
        match self.fields.get(key) {
            Some(Field::Str(s)) => s == "yes",
            _ => panic!("case {}: string field {key} missing", self.name),
        }
    }
    fn f64s(&self, key: &str) -> Vec<f64> {
        self.bytes(key, "f64")
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }
    fn i64s(&self, key: &str) -> Vec<i64> {
        self.bytes(key, "i64")
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }
    fn f32s(&self, key: &str) -> Vec<f32> {
        self.bytes(key, "f32")
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }
}

fn check_file(text: &str, expected_cases: usize) {
    let cases = parse(text);
    assert_eq!(cases.len(), expected_cases);
    let mut runs = 0;
    for c in &cases {
        let g: Vec<usize> = c.i64s("geom").iter().map(|&v| v as usize).collect();
        let geometry = ConvGeometry {
            batch: g[0],
            in_channels: g[1],
            out_channels: g[2],
            groups: g[3],
            input: [g[4], g[5], g[6]],
            kernel: [g[7], g[8], g[9]],
            stride: [g[10], g[11], g[12]],
            padding: [g[13], g[14], g[15]],
            dilation: [g[16], g[17], g[18]],
        };
        let w: Vec<i8> = c.bytes("w", "u8").iter().map(|&b| b as i8).collect();
        // PyTorch stores the weight scales as float after prepack.
        let scales: Vec<f32> = c.f64s("w_scales").iter().map(|&s| s as f32).collect();
        let zps: Vec<i32> = c.i64s("w_zps").iter().map(|&z| z as i32).collect();
        let q = if c.flag("per_channel") {
            WeightQParams::PerChannel {
                scales: &scales,
                zero_points: &zps,
            }
        } else {
            WeightQParams::PerTensor {
                scale: scales[0],
                zero_point: zps[0],
            }
        };
        let bias = c.f32s("bias");
        let params = Requantize {
            act_scale: c.f64s("x_scale")[0] as f32,
            out_scale: c.f64s("out_scale")[0] as f32,
            out_zero_point: c.i64s("out_zp")[0] as i32,
            bias: c.flag("has_bias").then_some(&bias[..]),
            activation: if c.flag("relu") {
                Activation::Relu
            } else {
                Activation::None
            },
        };
        let x = c.bytes("x_q", "u8");
        let za = c.i64s("x_zp")[0] as i32;
        let want = c.bytes("y", "u8");
        let oracle = reference::conv_u8s8(&geometry, x, za, &w, q, params).expect("oracle");
        assert_eq!(&oracle[..], want, "oracle, case {}", c.name);
        for kind in KernelKind::all_runnable() {
            if kind.saturates_pairs() {
                continue;
            }
            let packed = PackedConvWeights::pack(&w, &geometry, q, kind).expect("pack");
            let mut got = vec![0u8; want.len()];
            conv::conv_u8s8(&geometry, x, za, &packed, params, &mut got).expect("conv");
            let diff = got.iter().zip(want).filter(|(a, b)| a != b).count();
            assert_eq!(
                diff, 0,
                "kind {kind}, case {}: {diff} outputs differ",
                c.name
            );
            runs += 1;
        }
        // the case is informative: outputs are not all one value
        assert!(want.iter().any(|&v| v != want[0]), "case {}", c.name);
    }
    assert!(runs >= cases.len());
}

#[test]
fn conv2d_goldens_are_bit_exact() {
    check_file(include_str!("data/conv/conv2d.golden"), 57);
}

#[test]
fn conv1d_goldens_are_bit_exact() {
    check_file(include_str!("data/conv/conv1d.golden"), 12);
}

#[test]
fn conv3d_goldens_are_bit_exact() {
    check_file(include_str!("data/conv/conv3d.golden"), 15);
}
