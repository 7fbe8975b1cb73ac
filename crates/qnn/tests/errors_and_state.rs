//! Typed errors that name shapes and keys, and in-memory state-dict round trips.

mod common;

use std::collections::BTreeMap;

use qnn::float::*;
use qnn::init::Rng;
use qnn::qtensor::{QDType, Tensor, quantize_per_tensor};
use qnn::state_dict::{StateEntry, load_state_dict, state_dict};
use qnn::{Module, QnnError, Value};

#[test]
fn wrong_shapes_and_ranks_name_both_shapes() {
    let mut rng = Rng::new(1);
    let mut lin = Linear::new(4, 2, true, &mut rng);
    let err = lin
        .forward(&Value::F32(Tensor::zeros(&[3, 5])))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Linear input features (last dim) vs weight: shape mismatch, expected [4], got [5]"
    );

    let mut conv = Conv2d::new(Conv2dConfig::new(3, 2, 3), &mut rng).unwrap();
    let err = conv
        .forward(&Value::F32(Tensor::zeros(&[3, 5])))
        .unwrap_err();
    assert_eq!(
        err,
        QnnError::WrongRank {
            module: "Conv2d",
            expected: "3-d (C, H, W) or 4-d (N, C, H, W)",
            got: vec![3, 5]
        }
    );
    let err = conv
        .forward(&Value::F32(Tensor::zeros(&[1, 2, 5, 5])))
        .unwrap_err();
    assert!(err.to_string().contains("expected [3], got [2]"), "{err}");
    let err = conv
        .forward(&Value::F32(Tensor::zeros(&[1, 3, 2, 2])))
        .unwrap_err();
    assert!(
        matches!(
            err,
            QnnError::InvalidConfig {
                module: "Conv2d",
                ..
            }
        ),
        "{err}"
    );

    let mut bn = BatchNorm2d::new(BatchNormConfig::new(3));
    let err = bn.forward(&Value::F32(Tensor::zeros(&[2, 3]))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "BatchNorm2d: expected a 4-d (N, C, H, W) input, got shape [2, 3]"
    );
    let err = bn
        .forward(&Value::F32(Tensor::zeros(&[1, 3, 1, 1])))
        .unwrap_err();
    assert!(
        err.to_string().contains("more than 1 value per channel"),
        "{err}"
    );

    // backward before forward, and a gradient of the wrong shape
    let mut relu = ReLU::new();
    assert_eq!(
        relu.backward(&Value::F32(Tensor::zeros(&[2]))).unwrap_err(),
        QnnError::BackwardBeforeForward { module: "ReLU" }
    );
    relu.forward(&Value::F32(Tensor::zeros(&[2, 2]))).unwrap();
    let err = relu.backward(&Value::F32(Tensor::zeros(&[4]))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ReLU gradient vs forward output: shape mismatch, expected [2, 2], got [4]"
    );
}

#[test]
fn invalid_configurations_are_rejected() {
    let mut rng = Rng::new(2);
    let err = Conv2d::new(Conv2dConfig::new(3, 4, 3).groups(2), &mut rng).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Conv2d: invalid configuration: in_channels 3 and out_channels 4 must be divisible by groups 2"
    );
    assert!(Conv2d::new(Conv2dConfig::new(2, 2, 0), &mut rng).is_err());
    assert!(
        MaxPool2d::with_options([2, 2], [2, 2], [2, 0], [1, 1], false).is_err(),
        "padding above half the kernel"
    );
    assert!(AvgPool2d::new(0).is_err());
    assert!(AdaptiveAvgPool2d::new([0, 1]).is_err());
    assert!(Dropout::new(1.5, 0).is_err());
    assert!(
        Flatten::new(2, 1)
            .forward(&Value::F32(Tensor::zeros(&[2, 3, 4])))
            .is_err()
    );
}

#[test]
fn quantized_values_are_rejected_by_float_layers() {
    let q = quantize_per_tensor(&Tensor::zeros(&[2, 2]), 0.1, 0, QDType::QUInt8).unwrap();
    let err = ReLU::new().forward(&Value::Quantized(q)).unwrap_err();
    assert_eq!(
        err,
        QnnError::WrongValueKind {
            module: "ReLU",
            expected: "f32",
            got: "quantized"
        }
    );
}

fn model(seed: u64) -> Sequential {
    let mut rng = Rng::new(seed);
    Sequential::new()
        .push(Conv2d::new(Conv2dConfig::new(1, 2, 3), &mut rng).unwrap())
        .push(BatchNorm2d::new(BatchNormConfig::new(2)))
        .push(Flatten::default())
}

#[test]
fn state_dict_round_trip_restores_outputs() {
    let mut a = model(1);
    let x = common::rand_tensor(&[2, 1, 4, 4], -1.0, 1.0, 3);
    common::run(&mut a, &x); // updates running stats
    a.eval();
    let want = common::run(&mut a, &x);
    let sd = state_dict(&a);
    assert_eq!(
        sd.keys().cloned().collect::<Vec<_>>(),
        [
            "0.bias",
            "0.weight",
            "1.bias",
            "1.num_batches_tracked",
            "1.running_mean",
            "1.running_var",
            "1.weight"
        ]
    );
    assert_eq!(sd["1.num_batches_tracked"], StateEntry::I64(1));

    let mut b = model(2);
    b.eval();
    assert_ne!(common::run(&mut b, &x), want);
    load_state_dict(&mut b, &sd, true).unwrap();
    assert_eq!(common::run(&mut b, &x), want);
}

#[test]
fn state_dict_errors_name_the_key_and_shapes() {
    let mut m = model(1);
    let full = state_dict(&m);

    let mut missing = full.clone();
    missing.remove("0.weight");
    assert_eq!(
        load_state_dict(&mut m, &missing, true).unwrap_err(),
        QnnError::MissingKey {
            key: "0.weight".into(),
            expected: vec![2, 1, 3, 3]
        }
    );

    let mut wrong: BTreeMap<String, StateEntry> = full.clone();
    wrong.insert("1.running_var".into(), StateEntry::F32(Tensor::zeros(&[3])));
    let err = load_state_dict(&mut m, &wrong, true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "state-dict key `1.running_var`: expected shape [2], got [3]"
    );

    let mut extra = full.clone();
    extra.insert("2.weight".into(), StateEntry::F32(Tensor::zeros(&[4, 4])));
    assert_eq!(
        load_state_dict(&mut m, &extra, true).unwrap_err(),
        QnnError::UnexpectedKey {
            key: "2.weight".into(),
            shape: vec![4, 4]
        }
    );
    load_state_dict(&mut m, &extra, false).unwrap();
}

#[test]
fn embedding_rejects_bad_indices_and_kinds() {
    let mut e = Embedding::new(5, 2, None, &mut Rng::new(0)).unwrap();
    let err = e
        .forward(&Value::I32(Tensor::new(&[3], vec![0, 5, 1]).unwrap()))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Embedding: index 5 at position 1 is out of range for 5 embeddings"
    );
    let err = e
        .forward(&Value::I32(Tensor::new(&[1], vec![-1]).unwrap()))
        .unwrap_err();
    assert!(matches!(err, QnnError::IndexOutOfRange { index: -1, .. }));
    assert_eq!(
        e.forward(&Value::F32(Tensor::zeros(&[2]))).unwrap_err(),
        QnnError::WrongValueKind {
            module: "Embedding",
            expected: "i32",
            got: "f32"
        }
    );
    assert!(Embedding::new(5, 2, Some(5), &mut Rng::new(0)).is_err());
    let mut bag = EmbeddingBag::new(5, 2, BagMode::Sum, &mut Rng::new(0));
    let bad_offsets = Value::Tuple(vec![
        Value::I32(Tensor::new(&[3], vec![0, 1, 2]).unwrap()),
        Value::I32(Tensor::new(&[2], vec![2, 1]).unwrap()),
    ]);
    assert!(matches!(
        bag.forward(&bad_offsets),
        Err(QnnError::InvalidConfig { .. })
    ));
}
