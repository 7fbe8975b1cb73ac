//! Recurrent layers: finite-difference gradient checks through time (inputs, initial states
//! and every parameter) and PyTorch goldens.

mod common;

use common::{check_tuple_gradients as check, pack, rand_tensor, unpack};
use qnn::Module;
use qnn::float::*;
use qnn::init::Rng;
use qnn::qtensor::Tensor;

#[test]
fn cell_gradients() {
    let mut rng = Rng::new(1);
    let (b, i, hd) = (2, 3, 4);
    let x = rand_tensor(&[b, i], -1.0, 1.0, 1);
    let h = rand_tensor(&[b, hd], -1.0, 1.0, 2);
    let c = rand_tensor(&[b, hd], -1.0, 1.0, 3);
    assert!(
        check(
            &mut RNNCell::new(i, hd, true, &mut rng),
            vec![x.clone(), h.clone()]
        ) > 0
    );
    assert!(check(&mut RNNCell::new(i, hd, false, &mut rng), vec![x.clone()]) > 0);
    assert!(
        check(
            &mut LSTMCell::new(i, hd, true, &mut rng),
            vec![x.clone(), h.clone(), c.clone()]
        ) > 0
    );
    assert!(check(&mut LSTMCell::new(i, hd, true, &mut rng), vec![x.clone()]) > 0);
    assert!(
        check(
            &mut GRUCell::new(i, hd, true, &mut rng),
            vec![x.clone(), h.clone()]
        ) > 0
    );
    assert!(check(&mut GRUCell::new(i, hd, false, &mut rng), vec![x]) > 0);
}

#[test]
fn sequence_gradients_multi_layer_bidirectional() {
    let mut rng = Rng::new(2);
    let (t, b, i, hd) = (3, 2, 3, 2);
    let cfg = RecurrentConfig {
        num_layers: 2,
        bidirectional: true,
        ..RecurrentConfig::new(i, hd)
    };
    let x = rand_tensor(&[t, b, i], -1.0, 1.0, 10);
    let h0 = rand_tensor(&[4, b, hd], -1.0, 1.0, 11);
    let c0 = rand_tensor(&[4, b, hd], -1.0, 1.0, 12);
    let mut lstm = Lstm::new(cfg, &mut rng).unwrap();
    assert!(check(&mut lstm, vec![x.clone(), h0.clone(), c0]) > 100);
    let mut gru = Gru::new(cfg, &mut rng).unwrap();
    assert!(check(&mut gru, vec![x.clone(), h0]) > 100);
    let mut rnn = Rnn::new(
        RecurrentConfig {
            batch_first: true,
            ..RecurrentConfig::new(i, hd)
        },
        &mut rng,
    )
    .unwrap();
    assert!(check(&mut rnn, vec![rand_tensor(&[b, t, i], -1.0, 1.0, 13)]) > 10);
    let mut lstm_bf = Lstm::new(
        RecurrentConfig {
            batch_first: true,
            bias: false,
            ..RecurrentConfig::new(i, hd)
        },
        &mut rng,
    )
    .unwrap();
    assert!(check(&mut lstm_bf, vec![rand_tensor(&[b, t, i], -1.0, 1.0, 14)]) > 10);
}

#[test]
fn parameter_names_follow_pytorch() {
    let lstm = Lstm::new(
        RecurrentConfig {
            num_layers: 2,
            bidirectional: true,
            ..RecurrentConfig::new(3, 5)
        },
        &mut Rng::new(0),
    )
    .unwrap();
    let mut names = Vec::new();
    lstm.visit_params(&mut |n, p| names.push(format!("{n}{:?}", p.shape())));
    assert_eq!(
        names[..5],
        [
            "weight_ih_l0[20, 3]",
            "weight_hh_l0[20, 5]",
            "bias_ih_l0[20]",
            "bias_hh_l0[20]",
            "weight_ih_l0_reverse[20, 3]"
        ]
    );
    assert_eq!(names[8], "weight_ih_l1[20, 10]");
    assert_eq!(names.len(), 16);
    let bound = 1.0 / 5.0f32.sqrt();
    lstm.visit_params(&mut |_, p| assert!(p.value.data().iter().all(|v| v.abs() <= bound)));
}

#[allow(dead_code)]
#[path = "../../qtensor/tests/golden_support/format.rs"]
mod format;

#[test]
fn recurrent_layers_match_torch() {
    let g = format::parse(include_str!("data/rnn.golden")).unwrap();
    assert_eq!(g.cases.len(), g.declared_cases);
    for c in &g.cases {
        let t = |k: &str, s: &str| Tensor::new(&c.shape(s), c.f32s(k).to_vec()).unwrap();
        let cfg = RecurrentConfig {
            input_size: c.i64("input_size") as usize,
            hidden_size: c.i64("hidden_size") as usize,
            num_layers: c.i64("num_layers") as usize,
            bias: c.str("bias") == "yes",
            batch_first: c.str("batch_first") == "yes",
            bidirectional: c.str("bidirectional") == "yes",
        };
        let mut rng = Rng::new(0);
        let (mut m, lstm): (Box<dyn Module>, bool) = match c.str("op") {
            "lstm" => (Box::new(Lstm::new(cfg, &mut rng).unwrap()), true),
            "gru" => (Box::new(Gru::new(cfg, &mut rng).unwrap()), false),
            "rnn" => (Box::new(Rnn::new(cfg, &mut rng).unwrap()), false),
            other => panic!("{other}"),
        };
        // parameters in PyTorch's order, flattened into `params`
        let flat = c.f32s("params");
        let mut at = 0;
        m.visit_params_mut(&mut |_, p| {
            let n = p.value.numel();
            p.value.data_mut().copy_from_slice(&flat[at..at + n]);
            at += n;
        });
        assert_eq!(at, flat.len(), "{}: parameter count", c.name);
        let mut inputs = vec![t("x", "shape"), t("h0", "state_shape")];
        if lstm {
            inputs.push(t("c0", "state_shape"));
        }
        let outs = unpack(m.forward(&pack(&inputs)).unwrap());
        let close = |what: &str, got: &[f32], want: &[f32]| {
            assert_eq!(got.len(), want.len(), "{}: {what}", c.name);
            for (i, (a, b)) in got.iter().zip(want).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 + 1e-5 * b.abs(),
                    "{}: {what}[{i}] = {a}, torch {b}",
                    c.name
                );
            }
        };
        close("output", outs[0].data(), c.f32s("y"));
        close("h_n", outs[1].data(), c.f32s("h_n"));
        if lstm {
            close("c_n", outs[2].data(), c.f32s("c_n"));
        }
        let mut gout = vec![t("gy", "y_shape"), t("ghn", "state_shape")];
        if lstm {
            gout.push(t("gcn", "state_shape"));
        }
        m.zero_grad();
        let grads = unpack(m.backward(&pack(&gout)).unwrap());
        close("dx", grads[0].data(), c.f32s("dx"));
        close("dh0", grads[1].data(), c.f32s("dh0"));
        if lstm {
            close("dc0", grads[2].data(), c.f32s("dc0"));
        }
        let mut pg = Vec::new();
        m.visit_params(&mut |_, p| pg.extend_from_slice(p.grad.data()));
        close("param grads", &pg, c.f32s("dparams"));
    }
}
