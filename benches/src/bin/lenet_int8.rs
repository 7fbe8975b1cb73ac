//! Static int8 LeNet5 inference speed, per layer: the model `qstack demo` builds (the CLI's
//! LeNet5 graph, fused, fbgemm default qconfig with histogram activations and per-channel
//! weights, calibrated on MNIST training images, converted), timed at batch 1 and 64.
//!
//! The float weights are PyTorch's default init drawn from a fixed seed (not trained): the
//! timing does not depend on the weight values. Calibration and inputs are the bundled MNIST
//! (`data/mnist`, run from the workspace root), normalized and padded as the demo does.
//!
//! Prints one JSON object per line:
//! `{"suite":"lenet_int8","batch":1,"threads":1,"ns":12345}` for the whole `predict` call, then
//! `{"suite":"lenet_int8","batch":1,"node":"conv1","ns":2345}` per graph node (median of the
//! same repeats, measured between consecutive node hooks of `Graph::run_with`). `ns` is
//! `Graph::run`; `predict_ns` is the demo's `Model::predict` on an equal model; `min_ns` is
//! the fastest call (more robust than the median on a loaded machine).
//!
//! Usage: `lenet_int8 [--batch N]... [--repeats 200] [--warmup 20] [--calib 1024]`
//! (default batches 1 and 64; one thread).

use std::hint::black_box;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use qflow::Graph;
use qnn::Value;
use qnn::qtensor::Tensor;
use qstack_cli::data::{
    DatasetKind, InputLayout, Normalizer, Split, SplitKind, load_split, make_batch,
};
use qstack_cli::model::FloatModel;
use qstack_cli::quantize::{Backend, QuantInputs, QuantMode, build_static, quantized_module};
use qstack_cli::training::{OptimizerKind, TrainConfig};
use qstack_cli::zoo::Arch;

struct Settings {
    batches: Vec<usize>,
    repeats: usize,
    warmup: usize,
    calib: usize,
}

fn parse_args(args: &[String]) -> Result<Settings, String> {
    let mut s = Settings {
        batches: Vec::new(),
        repeats: 200,
        warmup: 20,
        calib: 1024,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = value
            .parse::<usize>()
            .map_err(|e| format!("{flag}: {value:?}: {e}"))?;
        match flag.as_str() {
            "--batch" => s.batches.push(num.max(1)),
            "--repeats" => s.repeats = num.max(1),
            "--warmup" => s.warmup = num,
            "--calib" => s.calib = num.max(1),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if s.batches.is_empty() {
        s.batches = vec![1, 64];
    }
    Ok(s)
}

/// `(median, min)`.
fn median(v: &mut [u64]) -> (u64, u64) {
    v.sort_unstable();
    (v[v.len() / 2], v[0])
}

fn run(s: &Settings) -> Result<(), Box<dyn std::error::Error>> {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global();
    let train: Split = load_split(
        Path::new("data/mnist"),
        DatasetKind::Mnist,
        SplitKind::Train,
        Some(s.calib.max(64)),
    )?;
    let norm = Normalizer::for_dataset(DatasetKind::Mnist);
    let float = FloatModel::fp32(Arch::Lenet5.build(0)?, Arch::Lenet5);
    let inputs = QuantInputs {
        train: &train,
        norm: &norm,
        calib_size: s.calib,
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
    };
    let mut module = quantized_module(QuantMode::Static, &float, &inputs)?;
    let graph = module
        .downcast_mut::<Graph>()
        .ok_or("the static LeNet5 is not a qflow graph")?;
    // the demo's own wrapper (`Model::predict`, as `qstack demo` times it), built the same way
    let mut model = build_static(&float, &inputs)?;
    for &batch in &s.batches {
        let idx: Vec<usize> = (0..batch).map(|i| i % train.len()).collect();
        let (x, _): (Tensor<f32>, _) = make_batch(&train, &idx, InputLayout::Padded32, &norm);
        let x = [Value::F32(x)];
        for _ in 0..s.warmup {
            black_box(graph.run(&x)?);
        }
        let mut total = Vec::with_capacity(s.repeats);
        for _ in 0..s.repeats {
            let t0 = Instant::now();
            black_box(graph.run(&x)?);
            total.push(t0.elapsed().as_nanos() as u64);
        }
        let mut names: Vec<String> = Vec::new();
        let mut per_node: Vec<Vec<u64>> = Vec::new();
        for _ in 0..s.repeats {
            let mut k = 0;
            let mut last = Instant::now();
            graph.run_with(&x, &mut |node, _| {
                let now = Instant::now();
                if per_node.len() <= k {
                    per_node.push(Vec::with_capacity(s.repeats));
                    names.push(node.name().to_string());
                }
                per_node[k].push((now - last).as_nanos() as u64);
                k += 1;
                last = Instant::now();
            })?;
        }
        let Value::F32(xt) = &x[0] else {
            return Err("input is not f32".into());
        };
        let mut predict = Vec::with_capacity(s.repeats);
        for _ in 0..s.repeats {
            let t0 = Instant::now();
            black_box(model.predict(xt)?);
            predict.push(t0.elapsed().as_nanos() as u64);
        }
        let ((run_med, run_min), (pred_med, pred_min)) = (median(&mut total), median(&mut predict));
        println!(
            "{{\"suite\":\"lenet_int8\",\"batch\":{batch},\"threads\":1,\"ns\":{run_med},\"min_ns\":{run_min},\"predict_ns\":{pred_med},\"predict_min_ns\":{pred_min}}}"
        );
        for (name, t) in names.iter().zip(per_node.iter_mut()) {
            let (med, min) = median(t);
            println!(
                "{{\"suite\":\"lenet_int8\",\"batch\":{batch},\"node\":\"{name}\",\"ns\":{med},\"min_ns\":{min}}}"
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings = match parse_args(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("lenet_int8: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lenet_int8: {e}");
            ExitCode::FAILURE
        }
    }
}
