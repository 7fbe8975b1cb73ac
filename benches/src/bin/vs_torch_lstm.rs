//! The qstack side of the dynamic LSTM comparison with PyTorch (`tools/bench/torch_lstm.py` is
//! the other side; both print one JSON object per line with the same keys):
//!
//! `{"suite":"lstm","mode":"qint8","shape":"32,8,256,512,2","threads":1,"ns":123456,...}`
//!
//! `shape` is `T,B,I,H,L` (sequence length, batch, input features, hidden features, layers;
//! one direction, sequence-first, zero initial state). Modes:
//! * `qint8`: `qnn::dynamic::Lstm` with per-tensor symmetric qint8 weights
//!   (`torch.ao.nn.quantized.dynamic.LSTM` from `quantize_dynamic`'s default qconfig);
//! * `fp16`: the same with f16 weights (`float16_dynamic_qconfig`);
//! * `float`: `qnn::float::Lstm` in eval (`torch.nn.LSTM`).
//!
//! `ns` is the median of `--repeats` timed forward calls after `--warmup` untimed ones, inside
//! a rayon pool of exactly `--threads` threads.
//!
//! Usage: `vs_torch_lstm [--shapes 32x8x256x512x2] [--threads 1] [--modes qint8,float]
//! [--repeats 15] [--warmup 3]`.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use qnn::dynamic::Lstm;
use qnn::float::{self, RecurrentConfig};
use qnn::init::Rng;
use qnn::qtensor::{QParams, Tensor};
use qnn::{Module, Value};

/// The shape: T=32, B=8, 256 → 512, 2 layers.
const SHAPES: [[usize; 5]; 1] = [[32, 8, 256, 512, 2]];

struct Settings {
    shapes: Vec<[usize; 5]>,
    threads: Vec<usize>,
    modes: Vec<String>,
    repeats: usize,
    warmup: usize,
}

fn parse_args(args: &[String]) -> Result<Settings, String> {
    let mut s = Settings {
        shapes: SHAPES.to_vec(),
        threads: vec![1],
        modes: vec!["qint8".into(), "float".into()],
        repeats: 15,
        warmup: 3,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| {
            v.parse::<usize>()
                .map_err(|e| format!("{flag}: {v:?}: {e}"))
        };
        match flag.as_str() {
            "--shapes" => {
                s.shapes = value
                    .split(',')
                    .map(|t| {
                        let d: Vec<usize> = t.split('x').map(num).collect::<Result<_, _>>()?;
                        match d[..] {
                            [t, b, i, h, l] if d.iter().all(|&v| v > 0) => Ok([t, b, i, h, l]),
                            _ => Err(format!("--shapes: {t:?} is not TxBxIxHxL")),
                        }
                    })
                    .collect::<Result<_, _>>()?
            }
            "--threads" => s.threads = value.split(',').map(num).collect::<Result<_, _>>()?,
            "--modes" => s.modes = value.split(',').map(str::to_string).collect(),
            "--repeats" => s.repeats = num(value)?,
            "--warmup" => s.warmup = num(value)?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if s.repeats == 0 || s.threads.contains(&0) {
        return Err("--repeats and every --threads value must be at least 1".into());
    }
    Ok(s)
}

/// (median, minimum) wall time of `f` in ns over `repeats` runs after `warmup` runs.
fn median_ns(repeats: usize, warmup: usize, mut f: impl FnMut()) -> (u128, u128) {
    for _ in 0..warmup {
        f();
    }
    let mut t: Vec<u128> = (0..repeats)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_nanos()
        })
        .collect();
    t.sort_unstable();
    (t[t.len() / 2], t[0])
}

/// `MinMaxObserver(qint8, per_tensor_symmetric)`'s qparams: `max(|min|, max) / 127.5`, zp 0.
fn symmetric_qparams(_name: &str, w: &Tensor<f32>) -> qnn::qtensor::Result<QParams> {
    let m = w.data().iter().fold(0.0f32, |a, &v| a.max(v.abs()));
    Ok(QParams::PerTensor {
        scale: (f64::from(m) / 127.5).max(f64::from(f32::EPSILON)),
        zero_point: 0,
    })
}

fn run(s: &Settings) -> Result<(), String> {
    let kind = qnn::qkernels::gemm::KernelKind::best();
    for &[t, b, i, h, l] in &s.shapes {
        let cfg = RecurrentConfig {
            num_layers: l,
            ..RecurrentConfig::new(i, h)
        };
        let mut rng = Rng::new(0);
        let mut float_lstm = float::Lstm::new(cfg, &mut rng).map_err(|e| e.to_string())?;
        float_lstm.eval();
        let x: Vec<f32> = (0..t * b * i)
            .map(|j| ((j * 7919 % 1000) as f32 / 500.0 - 1.0) * 2.0)
            .collect();
        let x = Value::F32(Tensor::new(&[t, b, i], x).map_err(|e| e.to_string())?);
        for &threads in &s.threads {
            let pool = qstack_benches::bench_pool(threads)?;
            for mode in &s.modes {
                let mut module: Box<dyn Module> = match mode.as_str() {
                    "qint8" => Box::new(
                        Lstm::from_float(&float_lstm, &mut symmetric_qparams)
                            .map_err(|e| e.to_string())?,
                    ),
                    "fp16" => {
                        Box::new(Lstm::from_float_fp16(&float_lstm).map_err(|e| e.to_string())?)
                    }
                    "float" => Box::new(float_lstm.clone()),
                    other => return Err(format!("unknown mode {other:?}")),
                };
                let (ns, ns_min) = pool.install(|| {
                    median_ns(s.repeats, s.warmup, || {
                        black_box(module.forward(&x).expect("forward"));
                    })
                });
                println!(
                    "{{\"suite\":\"lstm\",\"mode\":\"{mode}\",\"shape\":\"{t},{b},{i},{h},{l}\",\"threads\":{threads},\"ns\":{ns},\"ns_min\":{ns_min},\"kernel\":\"{kind}\",\"repeats\":{}}}",
                    s.repeats
                );
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_args(&args).and_then(|s| run(&s)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vs_torch_lstm: {e}");
            ExitCode::from(2)
        }
    }
}
