//! Model files for the float layers beyond conv / linear / batch norm: ConvTranspose2d, the
//! norms, the parameterized activations, softmaxes, Flatten, embeddings, recurrent layers and
//! cells. A loaded graph computes the same bits, trains to the same weights, and halved layers
//! stay halved.

use qflow::io::{describe_graph, graph_from_bytes, graph_to_bytes};
use qflow::{FunctionalBuilder, FunctionalOp, Graph, SequentialBuilder};
use qnn::float::{
    BagMode, ConvTranspose2d, ConvTranspose2dConfig, Elu, Embedding, EmbeddingBag, Flatten,
    GRUCell, Gelu, GroupNorm, Gru, InstanceNorm2d, LSTMCell, LayerNorm, LeakyReLU, LogSoftmax,
    Lstm, RNNCell, RecurrentConfig, Rnn, Softmax,
};
use qnn::init::Rng;
use qnn::optim::{Optimizer, Sgd, SgdConfig};
use qnn::qtensor::Tensor;
use qnn::repr::TensorDType;
use qnn::state_dict::state_dict;
use qnn::{Module, Value};

fn rand(shape: &[usize], seed: u64) -> Value {
    let mut rng = Rng::new(seed);
    Value::F32(Tensor::from_fn(shape, |_| rng.uniform(-1.0, 1.0)))
}

fn roundtrip(g: &Graph) -> Graph {
    let back = graph_from_bytes(&graph_to_bytes(g).unwrap()).unwrap();
    assert_eq!(describe_graph(&back).unwrap(), describe_graph(g).unwrap());
    assert_eq!(state_dict(&back), state_dict(g));
    assert_eq!(back.is_training(), g.is_training());
    back
}

/// Same outputs on `inputs`, then (if `train`) one SGD step on `sum(y^2) / 2` from both gives
/// the same parameters.
fn assert_same(a: &mut Graph, b: &mut Graph, inputs: &[Value], train: bool) {
    let ya = a.run(inputs).unwrap();
    assert_eq!(b.run(inputs).unwrap(), ya);
    if train {
        for g in [&mut *a, &mut *b] {
            g.zero_grad();
            g.backward_all(&ya).unwrap();
            Sgd::new(SgdConfig::new(0.05)).unwrap().step(g).unwrap();
        }
        assert_eq!(state_dict(b), state_dict(a));
    }
}

fn image_graph(seed: u64) -> Graph {
    let mut rng = Rng::new(seed);
    let config = ConvTranspose2dConfig {
        stride: [2, 2],
        output_padding: [1, 0],
        padding: [1, 1],
        ..ConvTranspose2dConfig::new(4, 6, 3)
    };
    SequentialBuilder::new("x")
        .add("up", ConvTranspose2d::new(config, &mut rng).unwrap())
        .add("gn", GroupNorm::new(3, 6, 1e-4, true).unwrap())
        .add("inorm", InstanceNorm2d::new(6, 1e-5, true).unwrap())
        .add("leaky", LeakyReLU::new(0.2))
        .add("ln", LayerNorm::new(&[9], 1e-6, true))
        .add("elu", Elu::new(0.7))
        .add("gelu", Gelu::new())
        .add("flat", Flatten::new(2, -1))
        .add("softmax", Softmax::new(-1))
        .add("logsoftmax", LogSoftmax::new(1))
        .build()
        .unwrap()
}

#[test]
fn image_layers_round_trip_and_train_identically() {
    let x = rand(&[2, 4, 5, 5], 3);
    let mut g = image_graph(1);
    g.train(true);
    let mut back = roundtrip(&g);
    assert_same(&mut g, &mut back, std::slice::from_ref(&x), true);
    let mut back = roundtrip(&g);
    assert_same(&mut g, &mut back, std::slice::from_ref(&x), true);
    g.eval();
    let mut back = roundtrip(&g);
    assert_same(&mut g, &mut back, std::slice::from_ref(&x), false);
    // Halved: the transposed convolution's weight comes back as f16.
    g.half().unwrap();
    let mut back = roundtrip(&g);
    let up = back.node("up").unwrap().module().unwrap();
    assert_eq!(up.param_dtype("weight"), Some(TensorDType::F16));
    assert_eq!(back.param_bytes(), g.param_bytes());
    assert_same(&mut g, &mut back, &[x], false);
}

#[test]
fn embeddings_round_trip_and_train_identically() {
    let mut rng = Rng::new(2);
    let mut b = FunctionalBuilder::new();
    let idx = b.input("idx");
    let e = b.module(
        "emb",
        Embedding::new(10, 6, Some(2), &mut rng).unwrap(),
        &[&idx],
    );
    let bag = b.module(
        "bag",
        EmbeddingBag::new(10, 6, BagMode::Max, &mut rng),
        &[&idx],
    );
    b.output(&e);
    b.output(&bag);
    let mut g = b.build().unwrap();
    g.train(true);
    // Row 2 is the padding row: its gradient is never accumulated, before or after loading.
    let idx = Value::I32(Tensor::new(&[3, 4], vec![2, 1, 2, 9, 0, 2, 5, 5, 7, 3, 2, 8]).unwrap());
    let mut back = roundtrip(&g);
    assert_eq!(
        back.module_as::<Embedding>("emb").unwrap().padding_idx(),
        Some(2)
    );
    let row2 =
        |g: &Graph| g.module_as::<Embedding>("emb").unwrap().weight.value.data()[12..18].to_vec();
    let before = row2(&g);
    assert_same(&mut g, &mut back, std::slice::from_ref(&idx), true);
    assert_eq!(row2(&back), before);
    g.eval();
    g.half().unwrap();
    let mut back = roundtrip(&g);
    assert_same(&mut g, &mut back, &[idx], false);
    assert_eq!(back.param_bytes(), g.param_bytes());
}

fn recurrent_graph(seed: u64) -> Graph {
    let mut rng = Rng::new(seed);
    let rnn = RecurrentConfig {
        num_layers: 2,
        bidirectional: true,
        ..RecurrentConfig::new(4, 5)
    };
    let lstm = RecurrentConfig {
        batch_first: true,
        bias: false,
        ..RecurrentConfig::new(10, 3)
    };
    SequentialBuilder::new("x")
        .add("rnn", Rnn::new(rnn, &mut rng).unwrap())
        .functional("rnn_out", FunctionalOp::GetItem(0))
        .add("lstm", Lstm::new(lstm, &mut rng).unwrap())
        .functional("lstm_out", FunctionalOp::GetItem(0))
        .add(
            "gru",
            Gru::new(RecurrentConfig::new(3, 2), &mut rng).unwrap(),
        )
        .functional("gru_out", FunctionalOp::GetItem(0))
        .functional("last", FunctionalOp::Reshape(vec![-1, 2]))
        .add("rcell", RNNCell::new_relu(2, 4, true, &mut rng))
        .add("lcell", LSTMCell::new(4, 3, false, &mut rng))
        .functional("h", FunctionalOp::GetItem(0))
        .add("gcell", GRUCell::new(3, 5, true, &mut rng))
        .add("tcell", RNNCell::new(5, 2, true, &mut rng))
        .build()
        .unwrap()
}

#[test]
fn recurrent_layers_and_cells_round_trip() {
    let x = rand(&[3, 2, 4], 7);
    let mut g = recurrent_graph(4);
    g.eval();
    let mut back = roundtrip(&g);
    assert_same(&mut g, &mut back, std::slice::from_ref(&x), false);
    assert!(back.module_as::<RNNCell>("rcell").unwrap().is_relu());
    assert!(!back.module_as::<RNNCell>("tcell").unwrap().is_relu());
    g.half().unwrap();
    let mut back = roundtrip(&g);
    assert_eq!(back.param_bytes(), g.param_bytes());
    for node in ["rnn", "lstm", "gru", "rcell", "lcell", "gcell", "tcell"] {
        let m = back.node(node).unwrap().module().unwrap();
        let name = if ["rnn", "lstm", "gru"].contains(&node) {
            "weight_ih_l0"
        } else {
            "weight_ih"
        };
        assert_eq!(m.param_dtype(name), Some(TensorDType::F16), "{node}");
    }
    assert_same(&mut g, &mut back, &[x], false);
}
