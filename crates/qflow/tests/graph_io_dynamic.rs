//! Whole-graph files for dynamic quantized graphs: `quantize_dynamic` (qint8 per-tensor,
//! qint8 per-channel, fp16) on a graph of Linear, fused LinearReLU, LSTM, GRU and the
//! LSTM/GRU/RNN cells; save, load, and the loaded graph computes the same bits.

use qflow::io::{graph_from_bytes, graph_to_bytes};
use qflow::passes::{DynamicDType, quantize_dynamic};
use qflow::{Graph, SequentialBuilder};
use qnn::float::{GRUCell, Gru, LSTMCell, Linear, Lstm, RNNCell, RecurrentConfig};
use qnn::fused::LinearReLU;
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::state_dict::state_dict;
use qnn::{Module, ModuleKind, Value};

/// `[T=3, B=2, 6]` → LSTM (2 layers, bidirectional) → GRU (batch 2, 10 → 5); and the cells.
fn sequence_graph(seed: u64) -> Graph {
    let mut rng = Rng::new(seed);
    let lstm = RecurrentConfig {
        num_layers: 2,
        bidirectional: true,
        ..RecurrentConfig::new(6, 5)
    };
    SequentialBuilder::new("x")
        .add("lstm", Lstm::new(lstm, &mut rng).unwrap())
        .functional("pick", qflow::FunctionalOp::GetItem(0))
        .add(
            "gru",
            Gru::new(RecurrentConfig::new(10, 5), &mut rng).unwrap(),
        )
        .build()
        .unwrap()
}

fn mlp_graph(seed: u64) -> Graph {
    let mut rng = Rng::new(seed);
    let fc1 = Linear::new(8, 16, true, &mut rng);
    SequentialBuilder::new("x")
        .add("fc1", LinearReLU::new(fc1, qnn::float::ReLU::new()))
        .add("fc2", Linear::new(16, 4, false, &mut rng))
        .add("cell", LSTMCell::new(4, 3, true, &mut rng))
        .functional("h", qflow::FunctionalOp::GetItem(0))
        .add("gcell", GRUCell::new(3, 2, true, &mut rng))
        .add("rcell", RNNCell::new_relu(2, 4, true, &mut rng))
        .add("tcell", RNNCell::new(4, 3, false, &mut rng))
        .build()
        .unwrap()
}

fn outputs(g: &mut Graph, x: &Tensor<f32>) -> Vec<u32> {
    let y = g.forward(&Value::F32(x.clone())).unwrap();
    let mut bits = Vec::new();
    let mut push = |v: Value| {
        bits.extend(
            v.into_f32("test")
                .unwrap()
                .data()
                .iter()
                .map(|f| f.to_bits()),
        );
    };
    match y {
        Value::Tuple(parts) => parts.into_iter().for_each(&mut push),
        v => push(v),
    }
    bits
}

fn round_trip(mut g: Graph, x: &Tensor<f32>, dtype: DynamicDType) {
    let swapped = quantize_dynamic(&mut g, &[], dtype).unwrap();
    assert!(!swapped.is_empty());
    let want = outputs(&mut g, x);
    let bytes = graph_to_bytes(&g).unwrap();
    let mut back = graph_from_bytes(&bytes).unwrap();
    for (a, b) in g.nodes().zip(back.nodes()) {
        assert_eq!(a.name(), b.name());
        assert_eq!(
            a.module().map(|m| m.kind()),
            b.module().map(|m| m.kind()),
            "{dtype:?} {}",
            a.name()
        );
    }
    assert_eq!(state_dict(&back), state_dict(&g), "{dtype:?}");
    assert_eq!(outputs(&mut back, x), want, "{dtype:?}");
}

#[test]
fn dynamic_graphs_save_and_load_bit_exactly() {
    let seq_x = Tensor::from_fn(&[3, 2, 6], |i| ((i * 31 % 89) as f32 / 44.0) - 1.0);
    let mlp_x = Tensor::from_fn(&[2, 8], |i| ((i * 17 % 23) as f32 / 11.0) - 1.0);
    for dtype in [
        DynamicDType::QInt8,
        DynamicDType::QInt8PerChannel,
        DynamicDType::Float16,
    ] {
        round_trip(sequence_graph(1), &seq_x, dtype);
        let kinds = [
            ModuleKind::Linear,
            ModuleKind::LinearReLU,
            ModuleKind::LSTMCell,
            ModuleKind::GRUCell,
            ModuleKind::RNNCell,
        ];
        let mut g = mlp_graph(2);
        quantize_dynamic(&mut g, &kinds, dtype).unwrap();
        assert!(
            g.nodes()
                .filter_map(|n| n.module())
                .all(|m| format!("{:?}", m.kind()).starts_with("Dynamic")),
            "{dtype:?}: every layer swapped"
        );
        let want = outputs(&mut g, &mlp_x);
        let mut back = graph_from_bytes(&graph_to_bytes(&g).unwrap()).unwrap();
        assert_eq!(state_dict(&back), state_dict(&g), "{dtype:?}");
        assert_eq!(outputs(&mut back, &mlp_x), want, "{dtype:?}");
        // The RNN cells keep their nonlinearity (ReLU, tanh).
        let relu = |g: &Graph, n: &str| g.module_as::<qnn::dynamic::RNNCell>(n).unwrap().is_relu();
        assert!(relu(&back, "rcell") && !relu(&back, "tcell"), "{dtype:?}");
    }
}
