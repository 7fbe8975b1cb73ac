//! Recurrent layers: finite-difference gradient checks through time (inputs, initial states
//! and every parameter) and PyTorch goldens.

mod common;

use common::rand_tensor;
use qnn::float::*;
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::{Module, Value};

fn pack(ts: &[Tensor<f32>]) -> Value {
    if ts.len() == 1 {
        Value::F32(ts[0].clone())
    } else {
        Value::Tuple(ts.iter().cloned().map(Value::F32).collect())
    }
}

fn unpack(v: Value) -> Vec<Tensor<f32>> {
    match v {
        Value::F32(t) => vec![t],
        Value::Tuple(vs) => vs
            .into_iter()
            .map(|v| v.into_f32("unpack").unwrap())
            .collect(),
        other => panic!("unexpected {}", other.kind_name()),
    }
}

fn probe(m: &mut dyn Module, inputs: &[Tensor<f32>], rs: &[Tensor<f32>]) -> f64 {
    let outs = unpack(m.forward(&pack(inputs)).unwrap());
    outs.iter()
        .zip(rs)
        .map(|(o, r)| {
            o.data()
                .iter()
                .zip(r.data())
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum::<f64>()
        })
        .sum()
}

/// Central-difference check of every input tensor and parameter of a module with tuple I/O.
fn check(m: &mut dyn Module, inputs: Vec<Tensor<f32>>) -> usize {
    let (h, atol, rtol) = (1e-2f32, 2e-3f64, 1e-2f64);
    let outs = unpack(m.forward(&pack(&inputs)).unwrap());
    let rs: Vec<Tensor<f32>> = outs
        .iter()
        .enumerate()
        .map(|(k, o)| rand_tensor(o.shape(), -1.0, 1.0, 500 + k as u64))
        .collect();
    m.zero_grad();
    let grads = unpack(m.backward(&pack(&rs)).unwrap());
    assert_eq!(grads.len(), inputs.len());
    let mut analytic = Vec::new();
    m.visit_params(&mut |n, p| analytic.push((n.to_string(), p.grad.data().to_vec())));
    let mut checked = 0;
    let close = |what: &str, i: usize, num: f64, ana: f32| {
        let tol = atol + rtol * ana.abs() as f64;
        assert!(
            (num - ana as f64).abs() <= tol,
            "{what}[{i}]: numeric {num:.6} vs analytic {ana:.6}"
        );
    };
    for k in 0..inputs.len() {
        assert_eq!(grads[k].shape(), inputs[k].shape());
        for i in 0..inputs[k].numel() {
            let mut up = inputs.clone();
            up[k].data_mut()[i] += h;
            let mut down = inputs.clone();
            down[k].data_mut()[i] -= h;
            close(
                &format!("input {k}"),
                i,
                (probe(m, &up, &rs) - probe(m, &down, &rs)) / (2.0 * h as f64),
                grads[k].data()[i],
            );
            checked += 1;
        }
    }
    for (name, g) in &analytic {
        for (i, &ga) in g.iter().enumerate() {
            let nudge = |m: &mut dyn Module, delta: f32| {
                m.visit_params_mut(&mut |n, p| {
                    if n == name {
                        p.value.data_mut()[i] += delta
                    }
                })
            };
            nudge(m, h);
            let up = probe(m, &inputs, &rs);
            nudge(m, -2.0 * h);
            let down = probe(m, &inputs, &rs);
            nudge(m, h);
            close(name, i, (up - down) / (2.0 * h as f64), ga);
            checked += 1;
        }
    }
    checked
}

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
