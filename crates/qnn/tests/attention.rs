//! MultiheadAttention and TransformerEncoderLayer: gradient checks and PyTorch goldens.

mod common;

use common::{check_gradients, check_tuple_gradients, pack, rand_tensor, unpack};
use qnn::Module;
use qnn::float::*;
use qnn::init::Rng;
use qnn::qtensor::Tensor;

/// Random non-zero biases, so that their gradients are exercised.
fn randomize_biases(m: &mut dyn Module, seed: u64) {
    let mut rng = Rng::new(seed);
    m.visit_params_mut(&mut |n, p| {
        if n.contains("bias") {
            rng.fill_uniform(p.value.data_mut(), -0.3, 0.3);
        }
    });
}

#[test]
fn multihead_attention_gradients() {
    let mut rng = Rng::new(1);
    let (l, s, n, e) = (3, 4, 2, 4);
    let mut mha = MultiheadAttention::new(e, 2, true, false, &mut rng).unwrap();
    randomize_biases(&mut mha, 2);
    let q = rand_tensor(&[l, n, e], -1.0, 1.0, 3);
    let k = rand_tensor(&[s, n, e], -1.0, 1.0, 4);
    let v = rand_tensor(&[s, n, e], -1.0, 1.0, 5);
    assert!(check_tuple_gradients(&mut mha, vec![q.clone(), k, v]) > 100);
    // self-attention, batch first, no bias: the input gradient sums the three paths
    let mut selfattn = MultiheadAttention::new(e, 4, false, true, &mut rng).unwrap();
    assert!(check_tuple_gradients(&mut selfattn, vec![rand_tensor(&[n, l, e], -1.0, 1.0, 6)]) > 50);
}

#[test]
fn transformer_encoder_layer_gradients() {
    let mut rng = Rng::new(7);
    // GELU keeps the loss smooth (a ReLU kink inside a difference quotient breaks the check;
    // the ReLU variant is covered by the PyTorch golden)
    for norm_first in [false, true] {
        let gelu = true;
        let cfg = TransformerEncoderConfig {
            dim_feedforward: 6,
            dropout: 0.0,
            norm_first,
            gelu,
            ..TransformerEncoderConfig::new(4, 2)
        };
        let mut layer = TransformerEncoderLayer::new(cfg, &mut rng).unwrap();
        randomize_biases(&mut layer, 8);
        let x = rand_tensor(&[3, 2, 4], -1.0, 1.0, 9);
        assert!(check_gradients(&mut layer, &x, 1e-2, 2e-3, 1e-2) > 100);
    }
}

#[test]
fn attention_weights_are_row_stochastic_and_names_follow_pytorch() {
    let mut mha = MultiheadAttention::new(6, 3, true, false, &mut Rng::new(0)).unwrap();
    let out = unpack(
        mha.forward(&pack(&[rand_tensor(&[5, 2, 6], -1.0, 1.0, 1)]))
            .unwrap(),
    );
    assert_eq!(out[0].shape(), &[5, 2, 6]);
    assert_eq!(out[1].shape(), &[2, 5, 5]);
    for row in out[1].data().chunks_exact(5) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
    let mut names = Vec::new();
    mha.visit_params(&mut |n, p| names.push(format!("{n}{:?}", p.shape())));
    assert_eq!(
        names,
        [
            "in_proj_weight[18, 6]",
            "in_proj_bias[18]",
            "out_proj.weight[6, 6]",
            "out_proj.bias[6]"
        ]
    );
    let layer = TransformerEncoderLayer::new(
        TransformerEncoderConfig {
            dim_feedforward: 8,
            ..TransformerEncoderConfig::new(6, 3)
        },
        &mut Rng::new(0),
    )
    .unwrap();
    let mut names = Vec::new();
    layer.visit_params(&mut |n, _| names.push(n.to_string()));
    assert_eq!(names.len(), 12);
    assert_eq!(names[4], "linear1.weight");
    assert_eq!(names[11], "norm2.bias");
    assert!(MultiheadAttention::new(6, 4, true, false, &mut Rng::new(0)).is_err());
}

#[allow(dead_code)]
#[path = "../../qtensor/tests/golden_support/format.rs"]
mod format;

#[test]
fn attention_matches_torch() {
    let g = format::parse(include_str!("data/attention.golden")).unwrap();
    assert_eq!(g.cases.len(), g.declared_cases);
    for c in &g.cases {
        let t = |k: &str, s: &str| Tensor::new(&c.shape(s), c.f32s(k).to_vec()).unwrap();
        let (e, h) = (c.i64("embed_dim") as usize, c.i64("num_heads") as usize);
        let batch_first = c.str("batch_first") == "yes";
        let mut rng = Rng::new(0);
        let (mut m, inputs): (Box<dyn Module>, Vec<Tensor<f32>>) = match c.str("op") {
            "mha" => (
                Box::new(MultiheadAttention::new(e, h, true, batch_first, &mut rng).unwrap()),
                vec![t("q", "q_shape"), t("k", "kv_shape"), t("v", "kv_shape")],
            ),
            "encoder" => {
                let cfg = TransformerEncoderConfig {
                    dim_feedforward: c.i64("dim_feedforward") as usize,
                    dropout: 0.0,
                    norm_first: c.str("norm_first") == "yes",
                    gelu: c.str("activation") == "gelu",
                    batch_first,
                    ..TransformerEncoderConfig::new(e, h)
                };
                (
                    Box::new(TransformerEncoderLayer::new(cfg, &mut rng).unwrap()),
                    vec![t("q", "q_shape")],
                )
            }
            other => panic!("{other}"),
        };
        // parameters by name, from "names" (comma-joined) and the flattened "params"
        let names: Vec<&str> = c.str("names").split(',').collect();
        let sizes = c.shape("sizes");
        let (flat, dflat) = (c.f32s("params"), c.f32s("dparams"));
        let mut offsets = std::collections::HashMap::new();
        let mut at = 0;
        for (name, &size) in names.iter().zip(&sizes) {
            offsets.insert(name.to_string(), (at, size));
            at += size;
        }
        let mut set = 0;
        m.visit_params_mut(&mut |n, p| {
            let (o, size) = offsets[n];
            p.value.data_mut().copy_from_slice(&flat[o..o + size]);
            set += 1;
        });
        assert_eq!(set, names.len(), "{}", c.name);
        let close = |what: &str, got: &[f32], want: &[f32]| {
            assert_eq!(got.len(), want.len(), "{}: {what}", c.name);
            for (i, (a, b)) in got.iter().zip(want).enumerate() {
                assert!(
                    (a - b).abs() <= 2e-5 + 2e-5 * b.abs(),
                    "{}: {what}[{i}] = {a}, torch {b}",
                    c.name
                );
            }
        };
        let outs = unpack(m.forward(&pack(&inputs)).unwrap());
        close("output", outs[0].data(), c.f32s("y"));
        let mut gouts = vec![t("gy", "y_shape")];
        if c.str("op") == "mha" {
            close("attn weights", outs[1].data(), c.f32s("w"));
            gouts.push(t("gw", "w_shape"));
        }
        m.zero_grad();
        let grads = unpack(m.backward(&pack(&gouts)).unwrap());
        close("dq", grads[0].data(), c.f32s("dq"));
        if grads.len() == 3 {
            close("dk", grads[1].data(), c.f32s("dk"));
            close("dv", grads[2].data(), c.f32s("dv"));
        }
        m.visit_params(&mut |n, p| {
            let (o, size) = offsets[n];
            close(&format!("d{n}"), p.grad.data(), &dflat[o..o + size]);
        });
    }
}
