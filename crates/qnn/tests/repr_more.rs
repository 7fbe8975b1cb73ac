//! PyTorch's one-line reprs of the norms, embeddings and recurrent layers. The expected strings
//! are `repr(module)` from torch 2.15.0 for the same constructor arguments.

use qnn::float::*;
use qnn::init::Rng;
use qnn::repr::module_repr;

#[test]
fn norms_embeddings_and_recurrent_layers_print_like_pytorch() {
    let mut rng = Rng::new(0);
    let stacked = RecurrentConfig {
        num_layers: 2,
        bidirectional: true,
        ..RecurrentConfig::new(6, 5)
    };
    let batch_first = RecurrentConfig {
        batch_first: true,
        ..RecurrentConfig::new(6, 5)
    };
    let no_bias = RecurrentConfig {
        bias: false,
        ..RecurrentConfig::new(6, 5)
    };
    let cases: Vec<(Box<dyn qnn::Module>, &str)> = vec![
        (
            Box::new(Lstm::new(stacked, &mut rng).unwrap()),
            "LSTM(6, 5, num_layers=2, bidirectional=True)",
        ),
        (
            Box::new(Gru::new(batch_first, &mut rng).unwrap()),
            "GRU(6, 5, batch_first=True)",
        ),
        (
            Box::new(Rnn::new(no_bias, &mut rng).unwrap()),
            "RNN(6, 5, bias=False)",
        ),
        (
            Box::new(Lstm::new(RecurrentConfig::new(6, 5), &mut rng).unwrap()),
            "LSTM(6, 5)",
        ),
        (
            Box::new(LSTMCell::new(6, 5, true, &mut rng)),
            "LSTMCell(6, 5)",
        ),
        (
            Box::new(GRUCell::new(6, 5, false, &mut rng)),
            "GRUCell(6, 5, bias=False)",
        ),
        (
            Box::new(RNNCell::new_relu(6, 5, true, &mut rng)),
            "RNNCell(6, 5, nonlinearity=relu)",
        ),
        (
            Box::new(LayerNorm::new(&[64], 1e-5, true)),
            "LayerNorm((64,), eps=1e-05, elementwise_affine=True, bias=True)",
        ),
        (
            Box::new(LayerNorm::new(&[4, 5], 1e-5, false)),
            "LayerNorm((4, 5), eps=1e-05, elementwise_affine=False, bias=False)",
        ),
        (
            Box::new(GroupNorm::new(2, 4, 1e-5, true).unwrap()),
            "GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)",
        ),
        (
            Box::new(InstanceNorm2d::new(4, 1e-5, false).unwrap()),
            "InstanceNorm2d(4, eps=1e-05, momentum=0.1, affine=False, bias=False, track_running_stats=False)",
        ),
        (
            Box::new(InstanceNorm2d::new(4, 1e-5, true).unwrap()),
            "InstanceNorm2d(4, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=False)",
        ),
        (
            Box::new(Embedding::new(10, 7, Some(3), &mut rng).unwrap()),
            "Embedding(10, 7, padding_idx=3)",
        ),
        (
            Box::new(Embedding::new(10, 7, None, &mut rng).unwrap()),
            "Embedding(10, 7)",
        ),
        (
            Box::new(EmbeddingBag::new(10, 7, BagMode::Max, &mut rng)),
            "EmbeddingBag(10, 7, mode='max')",
        ),
        (
            Box::new(EmbeddingBag::new(10, 7, BagMode::Mean, &mut rng)),
            "EmbeddingBag(10, 7, mode='mean')",
        ),
    ];
    for (mut module, want) in cases {
        assert_eq!(module_repr(module.as_ref()), want);
        // halving changes the storage, not the line
        module.half().unwrap();
        assert_eq!(module_repr(module.as_ref()), want);
    }
}

#[test]
fn quantized_activations_dropout_and_dynamic_recurrent_layers_print_like_pytorch() {
    use qnn::{dynamic, quantized};
    let mut rng = Rng::new(1);
    let gru2 = RecurrentConfig {
        num_layers: 2,
        ..RecurrentConfig::new(6, 5)
    };
    let per_tensor = |_: &str, _: &qnn::qtensor::Tensor<f32>| {
        Ok(qnn::qtensor::QParams::PerTensor {
            scale: 0.01,
            zero_point: 0,
        })
    };
    let lstm = Lstm::new(RecurrentConfig::new(6, 5), &mut rng).unwrap();
    let gru = Gru::new(gru2, &mut rng).unwrap();
    let cases: Vec<(Box<dyn qnn::Module>, &str)> = vec![
        (
            Box::new(quantized::LeakyReLU::new(0.1, 3, 0.2).unwrap()),
            "QuantizedLeakyReLU(negative_slope=0.2)",
        ),
        (
            Box::new(quantized::ELU::new(0.1, 3, 1.0).unwrap()),
            "QuantizedELU(alpha=1.0)",
        ),
        (
            Box::new(quantized::Softmax::new(1, 0.1, 3).unwrap()),
            "QuantizedSoftmax(dim=1)",
        ),
        (
            Box::new(quantized::Dropout::new(0.5)),
            "QuantizedDropout(p=0.5, inplace=False)",
        ),
        (
            Box::new(dynamic::Lstm::from_float(&lstm, &mut { per_tensor }).unwrap()),
            "DynamicQuantizedLSTM(6, 5)",
        ),
        (
            Box::new(dynamic::Gru::from_float_fp16(&gru).unwrap()),
            "DynamicQuantizedGRU(6, 5, num_layers=2)",
        ),
        (
            Box::new(
                dynamic::LSTMCell::from_float(&LSTMCell::new(6, 5, true, &mut rng), &mut {
                    per_tensor
                })
                .unwrap(),
            ),
            "DynamicQuantizedLSTMCell(6, 5)",
        ),
        (
            Box::new(
                dynamic::GRUCell::from_float_fp16(&GRUCell::new(6, 5, true, &mut rng)).unwrap(),
            ),
            "DynamicQuantizedGRUCell(6, 5)",
        ),
    ];
    for (module, want) in cases {
        assert_eq!(module_repr(module.as_ref()), want);
    }
}

#[test]
fn quantized_norms_print_like_pytorch() {
    use qnn::qtensor::Tensor;
    use qnn::quantized;
    let ones = |n: usize| Some(Tensor::new(&[n], vec![1.0f32; n]).unwrap());
    let zeros = |n: usize| Some(Tensor::new(&[n], vec![0.0f32; n]).unwrap());
    let ln = quantized::LayerNorm::new(&[4], ones(4), zeros(4), 1e-5, 0.1, 3).unwrap();
    assert_eq!(
        module_repr(&ln),
        "QuantizedLayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True)"
    );
    let gn = quantized::GroupNorm::new(2, 4, ones(4), zeros(4), 1e-5, 0.1, 3).unwrap();
    assert_eq!(
        module_repr(&gn),
        "QuantizedGroupNorm(2, 4, eps=1e-05, affine=True, bias=True)"
    );
    // PyTorch prints `affine=False` here whatever the weight (its constructor quirk); qstack
    // prints whether a weight is present.
    let inorm = quantized::InstanceNorm2d::new(4, None, None, 1e-5, 0.1, 3).unwrap();
    assert_eq!(
        module_repr(&inorm),
        "QuantizedInstanceNorm2d(4, eps=1e-05, momentum=0.1, affine=False, bias=False, track_running_stats=False)"
    );
}
