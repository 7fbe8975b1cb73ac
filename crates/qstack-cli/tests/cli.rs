//! Runs the `qstack` binary: the demo and the train → eval → import round trip on tiny MNIST
//! subsets (seconds, never full MNIST), and the one-line errors for bad flags, missing or
//! corrupt files and state dicts that do not fit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn qstack(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qstack"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the qstack binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("qstack-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Asserts a failed run with exit code `code`, one stderr line containing every `needle`, and no
/// panic.
fn assert_fails(o: &Output, code: i32, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "stderr: {err}\nstdout: {}",
        stdout(o)
    );
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "missing {n:?} in: {err}");
    }
    if code == 1 {
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

fn idx(dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(payload);
    v
}

/// A raw (uncompressed) 4-file IDX dataset of `n` random images, without SHA256SUMS.
fn tiny_dataset(dir: &Path, n: u32) {
    let pixels: Vec<u8> = (0..n * 784)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    for split in ["train", "t10k"] {
        std::fs::write(
            dir.join(format!("{split}-images-idx3-ubyte")),
            idx(&[n, 28, 28], &pixels),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{split}-labels-idx1-ubyte")),
            idx(&[n], &labels),
        )
        .unwrap();
    }
}

#[test]
fn demo_on_a_tiny_subset_writes_table_report_chart_and_models() {
    let out = scratch("demo");
    let o = qstack(&[
        "demo",
        "--quiet",
        "--train-limit",
        "512",
        "--test-limit",
        "256",
        "--epochs",
        "1",
        "--runs",
        "2",
        "--calib-size",
        "64",
        "--skip-sequence",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("| LeNet5 | fp32 |"), "{text}");
    assert!(text.contains("| LeNet5 | fp16 |"), "{text}");
    for mode in ["dynamic int8", "static int8", "QAT int8"] {
        assert!(text.contains(&format!("| LeNet5 | {mode} | ")), "{text}");
        assert!(
            !text.contains(&format!("| LeNet5 | {mode} | not available")),
            "{text}"
        );
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("| LeNet5 | fp32 |") && report.contains("chart.svg"));
    let svg = std::fs::read_to_string(out.join("chart.svg")).unwrap();
    assert_eq!(svg.matches("<circle").count(), 10);
    // The per-layer SQNR chart of static int8 LeNet5: one bar per quantized layer.
    assert!(report.contains("![per-layer SQNR of LeNet5 static int8](lenet5-static-sqnr.svg)"));
    let bars = std::fs::read_to_string(out.join("lenet5-static-sqnr.svg")).unwrap();
    assert_eq!(bars.matches("class=\"bar\"").count(), 5, "{bars}");
    for layer in ["conv1", "conv2", "fc1", "fc2", "fc3"] {
        assert!(bars.contains(&format!("<title>{layer}: ")), "{bars}");
    }
    let fp32 = std::fs::metadata(out.join("lenet5-fp32.safetensors"))
        .unwrap()
        .len();
    let fp16 = std::fs::metadata(out.join("lenet5-fp16.safetensors"))
        .unwrap()
        .len();
    // 61 706 parameters: f32 ≈ 247 KB; f16 weights with f32 biases ≈ 124 KB.
    assert!(fp32 > 246_824 && fp32 < 250_000, "{fp32}");
    assert!(fp16 > 123_000 && fp16 < 126_000, "{fp16}");
    // Dynamic int8: fc weights as qint8 (48 120 bytes) + f32 convs and biases ≈ 72 KB.
    let dynamic = std::fs::metadata(out.join("lenet5-int8-dynamic.safetensors"))
        .unwrap()
        .len();
    assert!(dynamic > 60_000 && dynamic < 85_000, "{dynamic}");
    // Static int8: every conv/linear weight as qint8 with per-channel qparams.
    let stat = std::fs::metadata(out.join("lenet5-int8-static.safetensors"))
        .unwrap()
        .len();
    assert!(stat > 55_000 && stat < 85_000, "{stat}");
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty());
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn demo_sequence_models_get_dynamic_int8_rows() {
    let out = scratch("demo-seq");
    let o = qstack(&[
        "demo",
        "--quiet",
        "--train-limit",
        "128",
        "--test-limit",
        "64",
        "--epochs",
        "1",
        "--runs",
        "1",
        "--calib-size",
        "64",
        "--sequence-train-limit",
        "64",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for model in ["row LSTM", "patch Transformer"] {
        assert!(
            text.contains(&format!("| {model} | dynamic int8 | ")),
            "{text}"
        );
        assert!(
            !text.contains(&format!("| {model} | dynamic int8 | not available")),
            "{text}"
        );
    }
    assert!(out.join("transformer-int8-dynamic.safetensors").is_file());
    // qint8 LSTM and classifier weights: about a quarter of the f32 file (329 KB).
    let fp32 = std::fs::metadata(out.join("lstm-fp32.safetensors"))
        .unwrap()
        .len();
    let dynamic = std::fs::metadata(out.join("lstm-int8-dynamic.safetensors"))
        .unwrap()
        .len();
    assert!(
        dynamic * 3 < fp32 && dynamic * 5 > fp32,
        "{dynamic} vs {fp32}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn train_eval_import_round_trip_on_real_mnist_subset() {
    let dir = scratch("roundtrip");
    let w = dir.join("lenet5.safetensors");
    let o = qstack(&[
        "train",
        "-q",
        "--train-limit",
        "256",
        "--test-limit",
        "200",
        "--epochs",
        "1",
        "--output",
        w.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("epoch 1: loss"), "{text}");
    let acc_line = text
        .lines()
        .find(|l| l.starts_with("test accuracy"))
        .unwrap()
        .to_string();
    let acc = acc_line.split_whitespace().nth(2).unwrap().to_string();

    let o = qstack(&[
        "eval",
        "-q",
        "--weights",
        w.to_str().unwrap(),
        "--test-limit",
        "200",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("lenet5 fp32: test accuracy {acc} %")),
        "{}",
        stdout(&o)
    );
    let o = qstack(&[
        "eval",
        "-q",
        "--half",
        "--weights",
        w.to_str().unwrap(),
        "--test-limit",
        "200",
    ]);
    assert!(
        o.status.success() && stdout(&o).contains("lenet5 fp16"),
        "{}",
        stderr(&o)
    );

    let copy = dir.join("copy.safetensors");
    let o = qstack(&[
        "import",
        "-q",
        "--input",
        w.to_str().unwrap(),
        "--output",
        copy.to_str().unwrap(),
        "--eval",
        "--test-limit",
        "200",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("a valid lenet5 state dict (61706 parameters)"));
    assert!(stdout(&o).contains(&format!("test accuracy {acc} %")));
    assert_eq!(std::fs::read(&w).unwrap(), std::fs::read(&copy).unwrap());

    // Weights of the wrong architecture, garbage weights, missing weights.
    let o = qstack(&["eval", "--model", "lstm", "--weights", w.to_str().unwrap()]);
    assert_fails(&o, 1, &["does not fit the lstm architecture"]);
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"definitely not safetensors").unwrap();
    let o = qstack(&["import", "--input", junk.to_str().unwrap()]);
    assert_fails(&o, 1, &["junk.safetensors", "not a valid safetensors file"]);
    let o = qstack(&["bench", "--weights", dir.join("nope").to_str().unwrap()]);
    assert_fails(&o, 1, &["nope"]);

    // bench prints one line per batch size.
    let o = qstack(&[
        "bench",
        "--weights",
        w.to_str().unwrap(),
        "--batch",
        "1,3",
        "--runs",
        "2",
        "--warmup",
        "0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("lenet5 fp32 batch 1: median")
            && text.contains("lenet5 fp32 batch 3: median"),
        "{text}"
    );
    // inspect: one row per node of the static int8 graph; the five conv/linear layers carry a
    // weight SQNR, and int8 keeps every output well above noise level.
    let o = qstack(&[
        "inspect",
        "--weights",
        w.to_str().unwrap(),
        "--train-limit",
        "128",
        "--calib-size",
        "64",
        "--test-limit",
        "32",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("lenet5 static int8 (fbgemm) against fp32, 32 test images:"),
        "{text}"
    );
    assert!(text.contains("weight SQNR (dB)"), "{text}");
    for layer in ["conv1", "conv2", "fc1", "fc2", "fc3"] {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(layer))
            .unwrap_or_else(|| panic!("no {layer} row in {text}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols.len(), 4, "{line}");
        let out_db: f64 = cols[1].parse().unwrap();
        let weight_db: f64 = cols[3].parse().unwrap();
        assert!(out_db > 10.0 && out_db < 80.0, "{line}");
        assert!(weight_db > 20.0 && weight_db < 80.0, "{line}");
    }
    let o = qstack(&[
        "inspect",
        "--weights",
        w.to_str().unwrap(),
        "--train-limit",
        "128",
        "--calib-size",
        "500",
    ]);
    assert_fails(&o, 1, &["--calib-size", "500"]);
    let o = qstack(&[
        "inspect",
        "--model",
        "lstm",
        "--weights",
        w.to_str().unwrap(),
    ]);
    assert_fails(&o, 1, &["does not fit the lstm architecture"]);

    // The int8 flows report their status; their flags are checked first.
    let o = qstack(&[
        "quantize",
        "--mode",
        "static",
        "--weights",
        w.to_str().unwrap(),
        "--train-limit",
        "128",
        "--calib-size",
        "64",
        "--test-limit",
        "200",
        "--output",
        dir.join("static.safetensors").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.join("static.safetensors").is_file());
    assert!(
        stdout(&o).contains("lenet5 static int8 (fbgemm): test accuracy")
            && stdout(&o).contains("(200 images)"),
        "{}",
        stdout(&o)
    );
    // The full-range (onednn) qconfig is a backend choice like the others.
    let o = qstack(&[
        "quantize",
        "--mode",
        "static",
        "--backend",
        "onednn",
        "--weights",
        w.to_str().unwrap(),
        "--train-limit",
        "128",
        "--calib-size",
        "64",
        "--test-limit",
        "200",
        "--output",
        dir.join("static-full.safetensors").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("lenet5 static int8 (onednn): test accuracy"),
        "{}",
        stdout(&o)
    );
    let o = qstack(&[
        "quantize",
        "--mode",
        "qat",
        "--weights",
        w.to_str().unwrap(),
        "--train-limit",
        "128",
        "--calib-size",
        "64",
        "--test-limit",
        "200",
        "--output",
        dir.join("qat.safetensors").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.join("qat.safetensors").is_file());
    let o = qstack(&[
        "quantize",
        "--mode",
        "static",
        "--weights",
        w.to_str().unwrap(),
        "--train-limit",
        "128",
        "--calib-size",
        "500",
    ]);
    assert_fails(&o, 1, &["--calib-size", "500"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_flags_exit_2_with_a_message() {
    for (args, needle) in [
        (vec!["demo", "--batch-size", "0"], "--batch-size"),
        (vec!["demo", "--lr", "nan"], "--lr"),
        (vec!["demo", "--momentum", "1.5"], "--momentum"),
        (vec!["demo", "--dataset", "cifar"], "cifar"),
        (vec!["train", "--model", "resnet"], "resnet"),
        (vec!["quantize", "--mode", "int4", "--weights", "w"], "int4"),
        (vec!["quantize", "--weights", "w"], "--mode"),
        (vec!["frobnicate"], "frobnicate"),
        (vec!["bench", "--batch", "1,0"], "--batch"),
    ] {
        let o = qstack(&args);
        assert_fails(&o, 2, &[needle]);
    }
    let o = qstack(&["--help"]);
    assert!(o.status.success() && stdout(&o).contains("demo"));
}

#[test]
fn missing_and_corrupt_dataset_files_are_one_line_errors() {
    let missing = scratch("missing");
    let o = qstack(&[
        "eval",
        "--weights",
        "x",
        "--data-dir",
        missing.to_str().unwrap(),
    ]);
    // Weights are checked first.
    assert_fails(&o, 1, &["x:"]);
    let o = qstack(&["train", "--data-dir", missing.to_str().unwrap()]);
    assert_fails(
        &o,
        1,
        &["train-images-idx3-ubyte.gz", "missing dataset file"],
    );

    let dir = scratch("corrupt");
    tiny_dataset(&dir, 20);
    let run = |dir: &Path| {
        qstack(&[
            "train",
            "-q",
            "--epochs",
            "1",
            "--data-dir",
            dir.to_str().unwrap(),
            "--output",
            dir.join("w.safetensors").to_str().unwrap(),
        ])
    };
    let o = run(&dir);
    assert!(o.status.success(), "{}", stderr(&o));

    let images = dir.join("train-images-idx3-ubyte");
    let good = std::fs::read(&images).unwrap();
    let mut bad = good.clone();
    bad[0] = 0x42;
    std::fs::write(&images, &bad).unwrap();
    assert_fails(
        &run(&dir),
        1,
        &["train-images-idx3-ubyte", "not an IDX file"],
    );
    std::fs::write(&images, &good[..good.len() - 10]).unwrap();
    assert_fails(&run(&dir), 1, &["truncated"]);
    std::fs::write(&images, idx(&[20, 28, 27], &good[16..16 + 20 * 28 * 27])).unwrap();
    assert_fails(&run(&dir), 1, &["N x 28 x 28"]);
    std::fs::write(&images, idx(&[19, 28, 28], &good[16..16 + 19 * 784])).unwrap();
    assert_fails(&run(&dir), 1, &["19 images but 20 labels"]);
    std::fs::write(&images, idx(&[60000, 60000, 28], &[])).unwrap();
    assert_fails(&run(&dir), 1, &["more than the"]);
    std::fs::write(&images, &good).unwrap();
    let labels = dir.join("train-labels-idx1-ubyte");
    let mut l = std::fs::read(&labels).unwrap();
    l[8 + 5] = 10;
    std::fs::write(&labels, &l).unwrap();
    assert_fails(&run(&dir), 1, &["label 10 at index 5"]);
    l[8 + 5] = 5;
    std::fs::write(&labels, &l).unwrap();

    // A SHA256SUMS list that disagrees with a file.
    std::fs::write(
        dir.join("SHA256SUMS"),
        format!("{}  train-images-idx3-ubyte\n", "0".repeat(64)),
    )
    .unwrap();
    assert_fails(&run(&dir), 1, &["SHA-256 mismatch"]);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&missing).unwrap();
}

#[test]
fn fashion_mnist_is_read_from_debians_package_or_explained() {
    let dir = scratch("fashion");
    let o = qstack(&[
        "train",
        "-q",
        "--dataset",
        "fashion-mnist",
        "--epochs",
        "1",
        "--train-limit",
        "64",
        "--test-limit",
        "64",
        "--output",
        dir.join("w.safetensors").to_str().unwrap(),
    ]);
    if Path::new("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").is_file() {
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("Fashion-MNIST"));
    } else {
        assert_fails(&o, 1, &["apt-get install dataset-fashion-mnist"]);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_output_path_that_cannot_be_written_is_an_error_without_partial_files() {
    let dir = scratch("unwritable");
    let blocker = dir.join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let o = qstack(&[
        "demo",
        "-q",
        "--train-limit",
        "64",
        "--test-limit",
        "64",
        "--epochs",
        "1",
        "--calib-size",
        "8",
        "--skip-sequence",
        "--runs",
        "1",
        "--out",
        blocker.join("sub").to_str().unwrap(),
    ]);
    assert_fails(&o, 1, &["file/sub"]);
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
