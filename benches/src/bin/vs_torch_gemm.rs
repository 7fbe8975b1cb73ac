//! The qstack side of the GEMM comparison with PyTorch (`tools/bench/torch_gemm.py` is the
//! other side; both print one JSON object per line with the same keys):
//!
//! `{"suite":"gemm","mode":"static","m":64,"k":1024,"n":1024,"threads":1,"ns":123456,...}`
//!
//! * `static`: `qnn::quantized::Linear::apply` on a quint8 `[M, K]` tensor, the module users
//!   run (`torch.ops.quantized.linear`): per-channel qint8 weights with a float bias,
//!   requantized to quint8; the output tensor is allocated per call. The layer keeps its
//!   requantization pipeline prepared for the activation qparams it last saw
//!   (`qkernels::gemm::PreparedRequantize`), so a call builds nothing when they repeat.
//! * `static-raw` (on request): the kernel alone, `qkernels::gemm::gemm_u8s8_into_vec` with the
//!   per-call `Requantize` pipeline (multipliers and bias terms divided on every call) into a
//!   freshly allocated buffer; compare it with PyTorch's `static` line.
//! * `dynamic`: `qnn::dynamic::Linear::apply` on an f32 `[M, K]` tensor, the module users
//!   run (`torch.ops.quantized.linear_dynamic`): min/max →
//!   `choose_qparams_quant_utils(reduce_range=true)` → quantize → GEMM on the family the
//!   module packed for (on AVX2 without VNNI the `vpmaddubsw` family, exact for
//!   `reduce_range` activations) → f32 with bias; the output tensor is allocated per call.
//! * `f32` (on request): the float Linear `x Wᵀ + b` (`torch.nn.functional.linear`), for
//!   issue 5's "our fp32 is at least as fast as PyTorch's fp32" comparison:
//!   `qnn::float::Linear::apply` itself (its per-row-count kernel choice included), in the
//!   pool of that many threads (`gemm_f32_rows` splits large products over the pool; the
//!   crate's blocked GEMM path, for more rows, is cut into bands of rows over the pool).
//! * `peak`: a register-only `vpdpbusd` zmm loop (1 thread); every GEMM line also carries its
//!   `gops` (2·M·N·K / time) and `pct_peak` (against `threads ×` the 1-thread peak).
//!
//! `ns` is the median of at least `--repeats` timed calls (more for short calls: at least
//! 50 ms of them, at most 5000) after at least `--warmup` untimed ones and 20 ms
//! (`qstack_benches::time_calls`; `repeats` in the output is the sample count), each thread
//! count inside a rayon pool of exactly that many threads (its workers pinned one per CPU with
//! `QSTACK_BENCH_PIN=1`, see `qstack_benches::bench_pool`).
//!
//! Usage: `vs_torch_gemm [--shapes 1x1024x1024,64x1024x1024] [--threads 1,2]
//! [--modes static,dynamic,static-raw,f32] [--repeats 15] [--warmup 3]` (shapes are MxKxN).

use qkernels::gemm::{
    self, Activation, Activations, KernelKind, PackedWeights, Requantize, VecOutput, WeightQParams,
};
use qnn::dynamic::Linear as DynamicLinear;
use qnn::float::Linear;
use qnn::quantized::Linear as QuantizedLinear;
use qtensor::{Layout, QDType, QParams, QTensor, Tensor};
use std::hint::black_box;
use std::process::ExitCode;

/// The shapes (M, K, N).
const SHAPES: [(usize, usize, usize); 7] = [
    (1, 1024, 1024),
    (16, 1024, 1024),
    (64, 1024, 1024),
    (256, 1024, 1024),
    (128, 768, 3072),
    (128, 3072, 768),
    (512, 4096, 4096),
];

struct Settings {
    shapes: Vec<(usize, usize, usize)>,
    threads: Vec<usize>,
    modes: Vec<String>,
    repeats: usize,
    warmup: usize,
}

fn parse_args(args: &[String]) -> Result<Settings, String> {
    let mut s = Settings {
        shapes: SHAPES.to_vec(),
        threads: vec![1, 2],
        modes: vec!["static".into(), "dynamic".into()],
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
                            [m, k, n] if m > 0 && k > 0 && n > 0 => Ok((m, k, n)),
                            _ => Err(format!("--shapes: {t:?} is not MxKxN")),
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

/// Deterministic pseudo-random bytes.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// (median, minimum, samples) of `f` by the shared rule ([`qstack_benches::time_calls`]).
fn median_ns(repeats: usize, warmup: usize, f: impl FnMut()) -> (u128, u128, usize) {
    let t = qstack_benches::time_calls(repeats, warmup, f);
    (t.median, t.min, t.samples)
}

/// How many GEMM calls each kernel family has run so far.
fn kernel_runs() -> Vec<u64> {
    KernelKind::ALL
        .iter()
        .map(|&k| gemm::kernel_runs(k))
        .collect()
}

/// The families that ran int8 GEMMs since `before` (`+`-joined; `none` for the float mode).
fn ran_since(before: &[u64]) -> String {
    let ran: Vec<&str> = KernelKind::ALL
        .iter()
        .zip(before)
        .filter(|&(&k, &b)| gemm::kernel_runs(k) > b)
        .map(|(k, _)| k.name())
        .collect();
    if ran.is_empty() {
        "none".into()
    } else {
        ran.join("+")
    }
}

fn run(s: &Settings) -> Result<(), String> {
    let kind = KernelKind::best();
    // Best of several runs: the first ones pay frequency ramp-up and noisy neighbours.
    let peak = (0..7)
        .filter_map(|_| gemm::vpdpbusd_peak_gops(100_000_000 / 16))
        .reduce(f64::max);
    if let Some(p) = peak {
        println!("{{\"suite\":\"gemm\",\"mode\":\"peak\",\"threads\":1,\"gops\":{p:.1}}}");
    }
    for &(m, k, n) in &s.shapes {
        let w: Vec<i8> = bytes(n * k, 7).into_iter().map(|b| b as i8).collect();
        let scales: Vec<f32> = (0..n).map(|i| 0.001 + (i % 13) as f32 * 1e-4).collect();
        let zps = vec![0i32; n];
        let q = WeightQParams::PerChannel {
            scales: &scales,
            zero_points: &zps,
        };
        let packed = PackedWeights::pack(&w, n, k, q, kind).map_err(|e| e.to_string())?;
        let bias: Vec<f32> = (0..n).map(|i| (i % 17) as f32 * 0.1 - 0.8).collect();
        let a = bytes(m * k, 11);
        let x: Vec<f32> = a.iter().map(|&b| (f32::from(b) - 128.0) / 40.0).collect();
        let wf: Vec<f32> = w.iter().map(|&v| f32::from(v) / 1270.0).collect();
        // The same int8 weights as a float Linear whose per-channel quantization gives them
        // back exactly, for the dynamic module.
        let w_dyn: Vec<f32> = w
            .iter()
            .enumerate()
            .map(|(i, &v)| f32::from(v) * scales[i / k])
            .collect();
        let dyn_qparams = QParams::PerChannel {
            scales: scales.iter().map(|&s| f64::from(s)).collect(),
            zero_points: vec![0; n],
            axis: 0,
        };
        let float_dyn = Linear::from_tensors(
            Tensor::new(&[n, k], w_dyn).map_err(|e| e.to_string())?,
            Some(Tensor::new(&[n], bias.clone()).map_err(|e| e.to_string())?),
        )
        .map_err(|e| e.to_string())?;
        let mut dynamic =
            DynamicLinear::from_float(&float_dyn, &dyn_qparams).map_err(|e| e.to_string())?;
        let x_t = Tensor::new(&[m, k], x.clone()).map_err(|e| e.to_string())?;
        // The static module: the same weights, bias and qparams as the raw kernel's call.
        let quantized = QuantizedLinear::from_weights(
            &float_dyn.weight.value,
            Some(&Tensor::new(&[n], bias.clone()).map_err(|e| e.to_string())?),
            &dyn_qparams,
            0.5,
            128,
        )
        .map_err(|e| e.to_string())?;
        let qx = QTensor::from_u8_storage(
            a.clone(),
            &[m, k],
            Layout::RowMajor,
            QDType::QUInt8,
            QParams::PerTensor {
                scale: f64::from(0.02f32),
                zero_point: 120,
            },
        )
        .map_err(|e| e.to_string())?;
        for &threads in &s.threads {
            let pool = qstack_benches::bench_pool(threads)?;
            for mode in &s.modes {
                let runs_before = kernel_runs();
                let (ns, ns_min, samples) = pool.install(|| match mode.as_str() {
                    "static" => Ok(median_ns(s.repeats, s.warmup, || {
                        black_box(quantized.apply(&qx).expect("quantized linear"));
                    })),
                    "static-raw" => Ok(median_ns(s.repeats, s.warmup, || {
                        let mut out = Vec::new();
                        let params = Requantize {
                            act_scale: 0.02,
                            out_scale: 0.5,
                            out_zero_point: 128,
                            bias: Some(&bias),
                            activation: Activation::None,
                        };
                        let acts = Activations {
                            data: &a,
                            rows: m,
                            row_stride: k,
                            zero_point: 120,
                        };
                        gemm::gemm_u8s8_into_vec(
                            acts,
                            &packed,
                            VecOutput::QUInt8 {
                                params,
                                out: &mut out,
                            },
                        )
                        .expect("gemm");
                        black_box(out);
                    })),
                    "dynamic" => Ok(median_ns(s.repeats, s.warmup, || {
                        black_box(dynamic.apply(&x_t).expect("dynamic linear"));
                    })),
                    "f32" => {
                        let layer = Linear::from_tensors(
                            Tensor::new(&[n, k], wf.clone()).map_err(|e| e.to_string())?,
                            Some(Tensor::new(&[n], bias.clone()).map_err(|e| e.to_string())?),
                        )
                        .map_err(|e| e.to_string())?;
                        let xt = Tensor::new(&[m, k], x.clone()).map_err(|e| e.to_string())?;
                        Ok(median_ns(s.repeats, s.warmup, || {
                            black_box(layer.apply(&xt).expect("linear"));
                        }))
                    }
                    other => Err(format!("unknown mode {other:?}")),
                })?;
                let ran = ran_since(&runs_before);
                let gops = 2.0 * (m * n * k) as f64 / ns as f64;
                let pct = peak.map_or(String::from("null"), |p| {
                    format!("{:.1}", 100.0 * gops / (p * threads as f64))
                });
                println!(
                    "{{\"suite\":\"gemm\",\"mode\":\"{mode}\",\"m\":{m},\"k\":{k},\"n\":{n},\"threads\":{threads},\"ns\":{ns},\"gops\":{gops:.1},\"pct_peak\":{pct},\"kernel\":\"{ran}\",\"ns_min\":{ns_min},\"repeats\":{samples}}}"
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
            eprintln!("vs_torch_gemm: {e}");
            ExitCode::from(2)
        }
    }
}
