//! LeNet5 training and inference speed, the qstack side (`tools/bench/torch_lenet.py` is the
//! PyTorch side; both print one JSON object per line with the same keys):
//!
//! `{"suite":"lenet","phase":"train_step","batch":64,"threads":1,"ns":123456}`
//!
//! LeNet5 on `1 x S x S` inputs (S = 32 by default, 28 for MNIST's own size): conv 1→6 k5,
//! ReLU, max-pool 2, conv 6→16 k5, ReLU, max-pool 2, Linear →120, ReLU, →84, ReLU, →10.
//! Synthetic uniform inputs and random labels (timing only). Phases:
//! - `train_step`: forward, cross-entropy, zero_grad, backward, SGD (lr 0.01, momentum 0.9);
//! - `forward`: eval-mode forward;
//! - `forward_half`: eval-mode forward after `Module::half()` (f16 weights, f32 accumulation).
//!
//! `ns` is the median of `--repeats` timed calls after `--warmup` untimed ones, in a rayon
//! pool of `--threads` threads (default 1; `qstack_benches::bench_pool`, pinned with
//! `QSTACK_BENCH_PIN=1`): the float convolutions' forward splits over the pool, the rest runs
//! on one thread. One epoch of MNIST is 938 steps of batch 64.
//!
//! Usage: `lenet_train [--batch 64] [--size 32] [--repeats 50] [--warmup 5] [--threads 1]`.

use qnn::float::{Conv2d, Conv2dConfig, Flatten, Linear, MaxPool2d, ReLU, Sequential};
use qnn::init::Rng;
use qnn::loss::CrossEntropyLoss;
use qnn::optim::{Optimizer, Sgd, SgdConfig};
use qnn::qtensor::Tensor;
use qnn::{Module, Value};
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

struct Settings {
    batch: usize,
    size: usize,
    repeats: usize,
    warmup: usize,
    threads: usize,
}

fn parse_args(args: &[String]) -> Result<Settings, String> {
    let mut s = Settings {
        batch: 64,
        size: 32,
        repeats: 50,
        warmup: 5,
        threads: 1,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = value
            .parse::<usize>()
            .map_err(|e| format!("{flag}: {value:?}: {e}"))?;
        match flag.as_str() {
            "--batch" => s.batch = num.max(1),
            "--size" if num >= 16 => s.size = num,
            "--size" => return Err(format!("--size {num}: LeNet5 needs at least 16")),
            "--repeats" => s.repeats = num.max(1),
            "--warmup" => s.warmup = num,
            "--threads" => s.threads = num.max(1),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(s)
}

fn lenet5(size: usize, rng: &mut Rng) -> qnn::Result<Sequential> {
    let side = ((size - 4) / 2 - 4) / 2;
    Ok(Sequential::new()
        .push(Conv2d::new(Conv2dConfig::new(1, 6, 5), rng)?)
        .push(ReLU::new())
        .push(MaxPool2d::new(2)?)
        .push(Conv2d::new(Conv2dConfig::new(6, 16, 5), rng)?)
        .push(ReLU::new())
        .push(MaxPool2d::new(2)?)
        .push(Flatten::default())
        .push(Linear::new(16 * side * side, 120, true, rng))
        .push(ReLU::new())
        .push(Linear::new(120, 84, true, rng))
        .push(ReLU::new())
        .push(Linear::new(84, 10, true, rng)))
}

fn median_ns(
    repeats: usize,
    warmup: usize,
    mut f: impl FnMut() -> qnn::Result<()>,
) -> qnn::Result<u128> {
    for _ in 0..warmup {
        f()?;
    }
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let t0 = Instant::now();
        f()?;
        times.push(t0.elapsed().as_nanos());
    }
    times.sort_unstable();
    Ok(times[times.len() / 2])
}

fn report(phase: &str, s: &Settings, ns: u128) {
    println!(
        "{{\"suite\":\"lenet\",\"phase\":\"{phase}\",\"batch\":{},\"size\":{},\"threads\":{},\"ns\":{ns}}}",
        s.batch, s.size, s.threads
    );
}

fn run(s: &Settings) -> qnn::Result<()> {
    let mut rng = Rng::new(0);
    let mut model = lenet5(s.size, &mut rng)?;
    let mut x = Tensor::zeros(&[s.batch, 1, s.size, s.size]);
    rng.fill_uniform(x.data_mut(), -1.0, 1.0);
    let x = Value::F32(x);
    let targets: Vec<usize> = (0..s.batch).map(|_| rng.below(10)).collect();
    let mut loss_fn = CrossEntropyLoss::new();
    let mut sgd = Sgd::new(SgdConfig {
        momentum: 0.9,
        ..SgdConfig::new(0.01)
    })?;

    let ns = median_ns(s.repeats, s.warmup, || {
        let logits = model.forward(&x)?.into_f32("lenet")?;
        black_box(loss_fn.forward(&logits, &targets)?);
        model.zero_grad();
        model.backward(&Value::F32(loss_fn.backward()?))?;
        sgd.step(&mut model)
    })?;
    report("train_step", s, ns);

    model.eval();
    let ns = median_ns(s.repeats, s.warmup, || {
        black_box(model.forward(&x)?);
        Ok(())
    })?;
    report("forward", s, ns);

    model.half()?;
    let ns = median_ns(s.repeats, s.warmup, || {
        black_box(model.forward(&x)?);
        Ok(())
    })?;
    report("forward_half", s, ns);
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings = match parse_args(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("lenet_train: {e}");
            return ExitCode::from(2);
        }
    };
    let pool = match qstack_benches::bench_pool(settings.threads) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("lenet_train: {e}");
            return ExitCode::FAILURE;
        }
    };
    match pool.install(|| run(&settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lenet_train: {e}");
            ExitCode::FAILURE
        }
    }
}
