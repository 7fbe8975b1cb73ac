//! `Module::half()` beyond Linear/Conv: the recurrent layers and cells, Embedding(Bag),
//! MultiheadAttention, TransformerEncoderLayer and ConvTranspose2d keep their weights in f16,
//! compute exactly what the f32 layer computes with f16-rounded weights, report half the weight
//! bytes, keep their state-dict names, and refuse backward.

use half::f16;
use qnn::float::*;
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::state_dict::{load_state_dict, state_dict};
use qnn::{Module, QnnError, Value};

/// Whether `half()` stores this parameter in f16 (norm parameters and biases stay f32).
fn halved_name(name: &str) -> bool {
    name.contains("weight") && !name.starts_with("norm")
}

/// Rounds every parameter `half()` converts to f16 and back, in f32 storage.
fn round_halved_params(model: &mut dyn Module) {
    model.visit_params_mut(&mut |name, p| {
        if halved_name(name) {
            p.value
                .data_mut()
                .iter_mut()
                .for_each(|v| *v = f16::from_f32(*v).to_f32());
        }
    });
}

/// The f32 outputs of a forward, flattened in order (tuples included).
fn outputs(model: &mut dyn Module, x: &Value) -> Vec<Vec<f32>> {
    match model.forward(x).unwrap() {
        Value::Tuple(parts) => parts
            .into_iter()
            .map(|p| p.into_f32("test").unwrap().into_data())
            .collect(),
        v => vec![v.into_f32("test").unwrap().into_data()],
    }
}

/// Bytes of the parameters `half()` converts, and of the others.
fn byte_split(model: &dyn Module) -> (usize, usize) {
    let (mut halved, mut kept) = (0, 0);
    model.visit_params(&mut |name, p| {
        if halved_name(name) {
            halved += p.value.numel();
        } else {
            kept += p.value.numel();
        }
    });
    (halved, kept)
}

/// Checks the whole `half()` contract on `make()`'s layer, for input `x`. `exact`: whether the
/// halved layer must equal the rounded f32 layer bit for bit (layers that widen their f16
/// weights and run the f32 code) or within 1e-5 (layers on the f16-weight GEMM).
fn check_half<M: Module + 'static>(make: impl Fn() -> M, x: Value, exact: bool) {
    let mut plain = make();
    let mut rounded = make();
    round_halved_params(&mut rounded);
    let mut halved = make();
    for m in [&mut plain as &mut dyn Module, &mut rounded, &mut halved] {
        m.eval();
    }
    let (halved_n, kept_n) = byte_split(&halved);
    assert!(halved_n > 0);
    assert_eq!(halved.param_bytes(), 4 * (halved_n + kept_n));
    halved.half().unwrap();
    halved.half().unwrap(); // idempotent
    assert_eq!(halved.param_bytes(), 2 * halved_n + 4 * kept_n);

    let (y_plain, y_rounded, y_half) = (
        outputs(&mut plain, &x),
        outputs(&mut rounded, &x),
        outputs(&mut halved, &x),
    );
    let max_diff = |a: &[Vec<f32>], b: &[Vec<f32>]| {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .flat_map(|(u, v)| {
                assert_eq!(u.len(), v.len());
                u.iter().zip(v).map(|(p, q)| (p - q).abs())
            })
            .fold(0.0f32, f32::max)
    };
    if exact {
        assert_eq!(y_half, y_rounded);
    } else {
        assert!(max_diff(&y_half, &y_rounded) < 1e-5);
    }
    // the rounding really happened
    assert!(max_diff(&y_half, &y_plain) > 0.0);

    // names, shapes and (rounded) values are those of the rounded f32 layer
    assert_eq!(state_dict(&halved), state_dict(&rounded));
    // loading f32 values into the halved layer rounds them
    let mut fresh = make();
    let dict = state_dict(&plain);
    fresh.half().unwrap();
    load_state_dict(&mut fresh, &dict, true).unwrap();
    assert_eq!(state_dict(&fresh), state_dict(&rounded));

    // inference only
    let mut trainable = make();
    trainable.half().unwrap();
    trainable.train(true);
    let y = trainable.forward(&x).unwrap();
    let err = trainable.backward(&y).unwrap_err();
    assert!(
        matches!(&err, QnnError::InvalidConfig { reason, .. } if reason.contains("half()")),
        "{err}"
    );
}

fn seq(t: usize, b: usize, f: usize) -> Value {
    Value::F32(Tensor::from_fn(&[t, b, f], |i| {
        ((i * 29 % 83) as f32 / 41.0) - 1.0
    }))
}

#[test]
fn lstm_gru_rnn_halve_every_layer_and_direction() {
    let cfg = RecurrentConfig {
        num_layers: 2,
        bidirectional: true,
        ..RecurrentConfig::new(6, 5)
    };
    check_half(
        || Lstm::new(cfg, &mut Rng::new(1)).unwrap(),
        seq(4, 3, 6),
        true,
    );
    check_half(
        || Gru::new(cfg, &mut Rng::new(2)).unwrap(),
        seq(4, 3, 6),
        true,
    );
    check_half(
        || Rnn::new(cfg, &mut Rng::new(3)).unwrap(),
        seq(4, 3, 6),
        true,
    );
}

#[test]
fn cells_halve() {
    let x = || Value::F32(Tensor::from_fn(&[3, 6], |i| (i as f32 * 0.37).sin()));
    check_half(|| LSTMCell::new(6, 5, true, &mut Rng::new(4)), x(), true);
    check_half(|| GRUCell::new(6, 5, true, &mut Rng::new(5)), x(), true);
    check_half(|| RNNCell::new(6, 5, false, &mut Rng::new(6)), x(), true);
}

#[test]
fn embeddings_halve_and_widen_only_the_selected_rows() {
    let idx = Value::I32(Tensor::new(&[2, 3], vec![1, 4, 4, 0, 9, 2]).unwrap());
    check_half(
        || Embedding::new(10, 7, Some(3), &mut Rng::new(7)).unwrap(),
        idx.clone(),
        true,
    );
    for mode in [BagMode::Sum, BagMode::Mean, BagMode::Max] {
        check_half(
            || EmbeddingBag::new(10, 7, mode, &mut Rng::new(8)),
            idx.clone(),
            true,
        );
    }
}

#[test]
fn attention_and_transformer_layer_halve() {
    check_half(
        || MultiheadAttention::new(8, 2, true, false, &mut Rng::new(9)).unwrap(),
        seq(5, 2, 8),
        true,
    );
    let cfg = TransformerEncoderConfig {
        dim_feedforward: 16,
        dropout: 0.0,
        ..TransformerEncoderConfig::new(8, 2)
    };
    // its Linears run on the f16-weight GEMM: equal up to summation order
    check_half(
        || TransformerEncoderLayer::new(cfg, &mut Rng::new(10)).unwrap(),
        seq(5, 2, 8),
        false,
    );
}

#[test]
fn conv_transpose_halves() {
    let cfg = ConvTranspose2dConfig::new(3, 4, 3).stride(2);
    let x = Value::F32(Tensor::from_fn(&[2, 3, 5, 5], |i| {
        ((i * 13 % 31) as f32 / 15.0) - 1.0
    }));
    check_half(
        || ConvTranspose2d::new(cfg, &mut Rng::new(11)).unwrap(),
        x,
        true,
    );
}
