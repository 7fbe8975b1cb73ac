//! A model trained in PyTorch and saved with `safetensors.torch.save_file(model.state_dict())`
//! (tools/golden/gen_qnn.py) loads into the same architecture built here and gives the same
//! outputs; state dicts round-trip through safetensors; bad files give typed errors.

#[allow(dead_code)]
#[path = "../../qtensor/tests/golden_support/format.rs"]
mod format;

use std::collections::BTreeMap;

use qnn::float::*;
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::state_dict::{
    StateEntry, from_safetensors, load_safetensors, save_safetensors, state_dict, to_safetensors,
};
use qnn::{Module, QnnError, Value};

const FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/interop_small.safetensors"
);

/// The same architecture as `interop_model()` in gen_qnn.py.
fn small_net(seed: u64) -> Sequential {
    let mut rng = Rng::new(seed);
    Sequential::new()
        .push(Conv2d::new(Conv2dConfig::new(1, 4, 3).padding(1), &mut rng).unwrap())
        .push(BatchNorm2d::new(BatchNormConfig::new(4)))
        .push(ReLU::new())
        .push(MaxPool2d::new(2).unwrap())
        .push(Conv2d::new(Conv2dConfig::new(4, 8, 3), &mut rng).unwrap())
        .push(ReLU::new())
        .push(Flatten::default())
        .push(Linear::new(32, 10, true, &mut rng))
}

#[test]
fn torch_trained_model_loads_and_matches_outputs() {
    let g = format::parse(include_str!("data/interop.golden")).unwrap();
    let case = &g.cases[0];
    let mut net = small_net(0);
    load_safetensors(&mut net, FILE, true).unwrap();
    let sd = state_dict(&net);
    assert_eq!(
        sd["1.num_batches_tracked"],
        StateEntry::I64(5),
        "five torch training steps"
    );
    net.eval();
    let x = Tensor::new(&case.shape("shape"), case.f32s("x").to_vec()).unwrap();
    let y = net
        .forward(&Value::F32(x))
        .unwrap()
        .into_f32("interop")
        .unwrap();
    assert_eq!(y.shape(), case.shape("y_shape").as_slice());
    for (i, (a, b)) in y.data().iter().zip(case.f32s("y")).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 + 1e-5 * b.abs(),
            "y[{i}] = {a}, torch {b}"
        );
    }
}

#[test]
fn safetensors_round_trip_is_exact() {
    let mut net = small_net(3);
    net.forward(&Value::F32(Tensor::from_fn(&[2, 1, 8, 8], |i| {
        (i % 7) as f32
    })))
    .unwrap();
    let dir = std::env::temp_dir().join(format!("qnn-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("net.safetensors");
    save_safetensors(&net, &path).unwrap();
    let mut other = small_net(4);
    load_safetensors(&mut other, &path, true).unwrap();
    assert_eq!(state_dict(&other), state_dict(&net));
    std::fs::remove_dir_all(&dir).unwrap();
    // the torch file re-serializes to the same entries
    let bytes = std::fs::read(FILE).unwrap();
    let dict = from_safetensors(&bytes).unwrap();
    assert_eq!(
        from_safetensors(&to_safetensors(&dict).unwrap()).unwrap(),
        dict
    );
}

#[test]
fn bad_files_give_typed_errors() {
    // wrongly shaped entry, named with both shapes
    let mut dict = from_safetensors(&std::fs::read(FILE).unwrap()).unwrap();
    dict.insert("7.weight".into(), StateEntry::F32(Tensor::zeros(&[10, 33])));
    let bytes = to_safetensors(&dict).unwrap();
    let mut net = small_net(0);
    let err = qnn::state_dict::load_state_dict(&mut net, &from_safetensors(&bytes).unwrap(), true)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "state-dict key `7.weight`: expected shape [10, 32], got [10, 33]"
    );

    // an unsupported dtype names the key
    let data = [1u8, 2, 3, 4];
    let view =
        safetensors::tensor::TensorView::new(safetensors::tensor::Dtype::BOOL, vec![4], &data)
            .unwrap();
    let bytes = safetensors::serialize([("mask", view)], None).unwrap();
    assert_eq!(
        from_safetensors(&bytes).unwrap_err(),
        QnnError::UnsupportedDtype {
            key: "mask".into(),
            dtype: "BOOL with shape [4]".into()
        }
    );

    // garbage and missing files
    assert!(matches!(
        from_safetensors(b"not a safetensors file"),
        Err(QnnError::SafeTensors(_))
    ));
    let err = load_safetensors(&mut net, "/nonexistent/qnn.safetensors", true).unwrap_err();
    assert!(matches!(err, QnnError::Io { .. }), "{err}");
    let empty: BTreeMap<String, StateEntry> = BTreeMap::new();
    assert!(matches!(
        qnn::state_dict::load_state_dict(&mut net, &empty, false),
        Err(QnnError::MissingKey { .. })
    ));
}

#[test]
fn half_precision_files_widen_to_f32() {
    let vals = [half::f16::from_f32(0.5), half::f16::from_f32(-2.0)];
    let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::tensor::Dtype::F16, vec![2], &bytes)
            .unwrap();
    let file = safetensors::serialize([("bias", view)], None).unwrap();
    let dict = from_safetensors(&file).unwrap();
    assert_eq!(
        dict["bias"],
        StateEntry::F32(Tensor::new(&[2], vec![0.5, -2.0]).unwrap())
    );
}
