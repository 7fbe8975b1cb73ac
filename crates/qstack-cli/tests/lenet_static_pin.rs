//! Pins the static int8 LeNet5 of `qstack demo` bit for bit: the LeNet5 of
//! `tests/data/lenet5_torch.safetensors` (PyTorch's random init, saved by torch), through the CLI's static flow (fuse, fbgemm default
//! qconfig with histogram activations and per-channel weights, calibration on the first 256
//! bundled MNIST training images, convert), on the first 64 MNIST test images.
//!
//! The logits in `tests/data/lenet_static_pin.txt` were recorded before the LeNet5 latency
//! work (issue 8) began: kernel and executor optimisations must leave every logit bit-identical,
//! at batch 64 and at batch 1 (which take different kernel paths), and so must a save/load
//! round trip of the int8 file. To re-record after an intended numeric change, run the test
//! with `QSTACK_BLESS=1` and review the diff.

use std::path::{Path, PathBuf};

use qnn::qtensor::Tensor;
use qstack_cli::data::{
    DatasetKind, InputLayout, Normalizer, Split, SplitKind, load_split, make_batch,
};
use qstack_cli::model::{FloatModel, load_weights};
use qstack_cli::quantize::{Backend, QuantInputs, QuantMode, build_static, quantized_module};
use qstack_cli::training::{OptimizerKind, TrainConfig};
use qstack_cli::zoo::Arch;

const BATCH: usize = 64;

fn manifest(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn mnist(split: SplitKind, n: usize) -> Split {
    load_split(
        &manifest("../../data/mnist"),
        DatasetKind::Mnist,
        split,
        Some(n),
    )
    .unwrap()
}

fn inputs<'a>(train: &'a Split, norm: &'a Normalizer) -> QuantInputs<'a> {
    QuantInputs {
        train,
        norm,
        calib_size: 256,
        backend: Backend::Fbgemm,
        qat: TrainConfig {
            epochs: 0,
            batch_size: 64,
            lr: 1e-3,
            optimizer: OptimizerKind::Adam,
            momentum: 0.9,
            seed: 0,
            cosine: false,
        },
        qat_images: 0,
        quiet: true,
    }
}

fn float_model() -> FloatModel {
    let module = load_weights(
        Arch::Lenet5,
        &manifest("tests/data/lenet5_torch.safetensors"),
    )
    .unwrap();
    FloatModel::fp32(module, Arch::Lenet5)
}

fn pinned() -> Vec<f32> {
    let text = std::fs::read_to_string(manifest("tests/data/lenet_static_pin.txt")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| l.split_whitespace())
        .map(|v| v.parse::<f32>().unwrap())
        .collect()
}

fn assert_bits(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            g.to_bits(),
            w.to_bits(),
            "{what}: logit {i} (image {}, class {}) = {g}, pinned {w}",
            i / 10,
            i % 10
        );
    }
}

#[test]
fn static_int8_lenet5_logits_are_pinned_at_batch_64_and_1_and_after_reload() {
    let train = mnist(SplitKind::Train, 256);
    let test = mnist(SplitKind::Test, BATCH);
    let norm = Normalizer::for_dataset(DatasetKind::Mnist);
    let float = float_model();
    let mut model = build_static(&float, &inputs(&train, &norm)).unwrap();
    let idx: Vec<usize> = (0..BATCH).collect();
    let (x, _) = make_batch(&test, &idx, InputLayout::Padded32, &norm);
    let y = model.predict(&x).unwrap();
    assert_eq!(y.shape(), &[BATCH, 10]);

    if std::env::var_os("QSTACK_BLESS").is_some() {
        let mut text = String::from(
            "# static int8 LeNet5 logits, 64 MNIST test images x 10 classes (lenet_static_pin.rs)\n",
        );
        for row in y.data().chunks(10) {
            let vals: Vec<String> = row.iter().map(|v| format!("{v:?}")).collect();
            text.push_str(&vals.join(" "));
            text.push('\n');
        }
        std::fs::write(manifest("tests/data/lenet_static_pin.txt"), text).unwrap();
    }
    let want = pinned();
    assert_bits("batch 64", y.data(), &want);
    // not a constant output: the (untrained, random-init) model's logits vary widely
    let mut distinct: Vec<u32> = y.data().iter().map(|v| v.to_bits()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(
        distinct.len() >= 50,
        "only {} distinct logits",
        distinct.len()
    );

    // batch 1 (the M = 1 kernel paths) gives the same rows
    for i in [0usize, 1, 17, 63] {
        let (xi, _) = make_batch(&test, &[i], InputLayout::Padded32, &norm);
        let yi = model.predict(&xi).unwrap();
        assert_bits(
            &format!("batch 1, image {i}"),
            yi.data(),
            &want[i * 10..i * 10 + 10],
        );
    }

    // the saved int8 file loads back, into the int8 graph of another (random) float model,
    // with the same logits
    let dir = std::env::temp_dir().join(format!("qstack-lenet-pin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("int8-static.safetensors");
    let size = model.save(&file).unwrap();
    assert_eq!(size, std::fs::metadata(&file).unwrap().len());
    let other = FloatModel::fp32(Arch::Lenet5.build(1).unwrap(), Arch::Lenet5);
    let mut reloaded = quantized_module(QuantMode::Static, &other, &inputs(&train, &norm)).unwrap();
    let before = reloaded
        .forward(&qnn::Value::F32(Tensor::clone(&x)))
        .unwrap()
        .into_f32("logits")
        .unwrap();
    assert_ne!(
        before.data(),
        y.data(),
        "the other model must differ before loading"
    );
    let dict = qnn::state_dict::from_safetensors(&std::fs::read(&file).unwrap()).unwrap();
    qnn::state_dict::load_state_dict(reloaded.as_mut(), &dict, true).unwrap();
    let y2 = reloaded
        .forward(&qnn::Value::F32(Tensor::clone(&x)))
        .unwrap()
        .into_f32("logits")
        .unwrap();
    assert_bits("reloaded", y2.data(), &want);
    std::fs::remove_dir_all(&dir).unwrap();
}
