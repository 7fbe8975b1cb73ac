//! The qstack side of `cargo xtask bench-vs-torch --suite quantize`: times per-tensor
//! quantize (f32 -> quint8) and dequantize the way `tools/bench/torch_quantize.py` times
//! `torch.quantize_per_tensor` and `Tensor.dequantize`: same sizes, thread counts, input
//! distribution (N(0, 3) f32), scale, zero point, warm-up and repeat counts, and the same
//! output — one JSON object per line on stdout, with an `impl` field naming the code path:
//!
//! `{"op": "quantize", "n": 1048576, "threads": 1, "impl": "qkernels", "ns": 412345, "repeats": 15}`
//!
//! * `qtensor`: `qtensor::quantize_per_tensor` / `QTensor::dequantize` (portable,
//!   auto-vectorized, `#![forbid(unsafe_code)]`);
//! * `qkernels`: `qkernels::quant::quantize_per_tensor_fast` / `dequantize_fast` (SIMD level
//!   chosen at run time, printed on stderr);
//! * `qkernels_into`: `qkernels::quant::quantize_u8` / `dequantize_into` writing into one
//!   reused buffer, so no allocation and no page faults on a fresh output (torch has no
//!   equivalent call; this row shows what the allocation costs).
//!
//! `ns` is the median wall time of one call (for the allocating paths the result's allocation
//! and drop included, as in Python). Each thread count runs inside a rayon pool of exactly that
//! many threads.
//!
//! Usage: `vs_torch_quantize [--sizes 1048576,16777216] [--threads 1,2] [--repeats 15]
//! [--warmup 3] [--scale 0.05] [--zero-point 128]`

use qkernels::quant;
use qtensor::{QDType, Tensor, quantize_per_tensor};
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

/// The measurement settings (defaults equal the PyTorch script's).
struct Settings {
    sizes: Vec<usize>,
    threads: Vec<usize>,
    repeats: usize,
    warmup: usize,
    scale: f64,
    zero_point: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            sizes: vec![1 << 20, 1 << 24],
            threads: vec![1, 2],
            repeats: 15,
            warmup: 3,
            scale: 0.05,
            zero_point: 128,
        }
    }
}

fn parse_list(name: &str, text: &str) -> Result<Vec<usize>, String> {
    text.split(',')
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse()
                .map_err(|e| format!("{name}: bad number {v:?}: {e}"))
        })
        .collect()
}

fn parse_args(args: &[String]) -> Result<Settings, String> {
    let mut settings = Settings::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value"))
                .cloned()
        };
        let number = |v: String| v.parse::<f64>().map_err(|e| format!("{flag}: {v:?}: {e}"));
        match flag.as_str() {
            "--sizes" => settings.sizes = parse_list(flag, &value()?)?,
            "--threads" => settings.threads = parse_list(flag, &value()?)?,
            "--repeats" => settings.repeats = number(value()?)? as usize,
            "--warmup" => settings.warmup = number(value()?)? as usize,
            "--scale" => settings.scale = number(value()?)?,
            "--zero-point" => settings.zero_point = number(value()?)? as i64,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if settings.repeats == 0 || settings.threads.contains(&0) {
        return Err("--repeats and every --threads value must be at least 1".to_string());
    }
    Ok(settings)
}

/// Deterministic N(0, `std`) samples (xorshift64* and Box–Muller); the exact values do not
/// matter for timing, only their spread relative to the quantization range.
fn normal_samples(n: usize, std: f32) -> Tensor<f32> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut uniform = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        (bits as f64 + 0.5) / (1u64 << 53) as f64
    };
    Tensor::from_fn(&[n], |_| {
        let (u1, u2) = (uniform(), uniform());
        let r = (-2.0 * u1.ln()).sqrt();
        (r * (std::f64::consts::TAU * u2).cos()) as f32 * std
    })
}

/// Median wall time of `f` in nanoseconds over `repeats` runs after `warmup` untimed runs.
fn median_ns<R>(repeats: usize, warmup: usize, mut f: impl FnMut() -> R) -> u128 {
    for _ in 0..warmup {
        black_box(f());
    }
    let mut times: Vec<u128> = (0..repeats)
        .map(|_| {
            let start = Instant::now();
            drop(black_box(f()));
            start.elapsed().as_nanos()
        })
        .collect();
    times.sort_unstable();
    let mid = times.len() / 2;
    if times.len() % 2 == 1 {
        times[mid]
    } else {
        (times[mid - 1] + times[mid]) / 2
    }
}

/// Prints one result line.
fn emit(op: &str, n: usize, threads: usize, imp: &str, ns: u128, repeats: usize) {
    println!(
        "{{\"op\": \"{op}\", \"n\": {n}, \"threads\": {threads}, \"impl\": \"{imp}\", \"ns\": {ns}, \"repeats\": {repeats}}}"
    );
}

fn run(settings: &Settings) -> Result<(), String> {
    eprintln!(
        "vs_torch_quantize: qkernels dispatch level {}",
        qkernels::isa::detect()
    );
    for &n in &settings.sizes {
        let x = normal_samples(n, 3.0);
        for &threads in &settings.threads {
            let pool = qstack_benches::bench_pool(threads)?;
            let (s, zp) = (settings.scale, settings.zero_point);
            let q = quantize_per_tensor(&x, s, zp, QDType::QUInt8).map_err(|e| e.to_string())?;
            let fast = quant::quantize_per_tensor_fast(&x, s, zp, QDType::QUInt8)
                .map_err(|e| e.to_string())?;
            if fast != q {
                return Err(format!("qkernels and qtensor quantize differ at n={n}"));
            }
            let (rep, warm) = (settings.repeats, settings.warmup);
            let time = |f: &mut (dyn FnMut() + Send)| pool.install(|| median_ns(rep, warm, f));
            let mut bytes = vec![0u8; n];
            let mut floats = vec![0.0f32; n];
            let (s32, zp32) = (s as f32, zp as i32);
            let rows = [
                (
                    "quantize",
                    "qtensor",
                    time(&mut || {
                        drop(black_box(quantize_per_tensor(
                            black_box(&x),
                            s,
                            zp,
                            QDType::QUInt8,
                        )))
                    }),
                ),
                (
                    "quantize",
                    "qkernels",
                    time(&mut || {
                        drop(black_box(quant::quantize_per_tensor_fast(
                            black_box(&x),
                            s,
                            zp,
                            QDType::QUInt8,
                        )))
                    }),
                ),
                (
                    "quantize",
                    "qkernels_into",
                    time(&mut || {
                        let r = quant::quantize_u8(black_box(x.data()), s32, zp32, &mut bytes);
                        black_box(r).ok();
                    }),
                ),
                (
                    "dequantize",
                    "qtensor",
                    time(&mut || drop(black_box(black_box(&q).dequantize()))),
                ),
                (
                    "dequantize",
                    "qkernels",
                    time(&mut || drop(black_box(quant::dequantize_fast(black_box(&q))))),
                ),
                (
                    "dequantize",
                    "qkernels_into",
                    time(&mut || {
                        black_box(quant::dequantize_into(black_box(&q), &mut floats)).ok();
                    }),
                ),
            ];
            for (op, imp, ns) in rows {
                emit(op, n, threads, imp, ns, rep);
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_args(&args).and_then(|settings| run(&settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("vs_torch_quantize: {err}");
            ExitCode::from(2)
        }
    }
}
