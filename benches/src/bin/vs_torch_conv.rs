//! The qstack side of the convolution comparison with PyTorch (`tools/bench/torch_conv.py`
//! is the other side; both print one JSON object per line with the same keys):
//!
//! `{"suite":"conv","mode":"int8","shape":"1,64,56,64,3,1","threads":1,"ns":123456,...}`
//!
//! Shapes are `N,C,H,O,k,groups[,stride]` (H = W, stride 1 unless given, padding k/2): an
//! NHWC quint8 input,
//! per-channel symmetric qint8 weights packed once, a float bias, quint8 NHWC output
//! (allocated per call, as torch does). `ns` is the median of `--repeats` timed calls after
//! `--warmup` untimed ones, each thread count inside a rayon pool of exactly that many threads
//! (pinned one per CPU with `QSTACK_BENCH_PIN=1`, see `qstack_benches::bench_pool`).
//! At each thread count it also times qstack's float `qnn::float::Conv2d` (NCHW f32) on the
//! same shape, the counterpart of torch_conv.py's f32 lines (issue 5): `"mode":"f32"` is
//! `Conv2d::apply`, the convolution alone (as `F.conv2d` on tensors that need no gradient);
//! `"mode":"f32-forward"` is `Module::forward` in eval mode, which also keeps a copy of the
//! input for a later backward (PyTorch has no counterpart line).
//!
//! Weights: the `"mode":"int8"` lines use `i8 / 2` (|w| ≤ 64: no depthwise tap pair can
//! leave i16, so fbgemm's pair saturation never applies and the depthwise kernels take an
//! exact product). On depthwise shapes (groups = C) the `int8` mode also prints
//! `"mode":"int8-full"`: the same convolution with full-range weights as real checkpoints
//! have them, Gaussian values quantized per channel to `round(127·w / max|w|)` (what
//! torch_conv.py's weights are), so every channel reaches ±127 and tap pairs can saturate.
//! `--weights half|full|half,full` (default both) picks which of the two lines to print.
//!
//! Usage: `vs_torch_conv [--shapes "N,C,H,O,k,g;..."] [--threads 1,2] [--modes
//! int8,f32,f32-forward] [--weights half,full] [--repeats 15] [--warmup 3]` (default: every
//! mode, both weights).

use qkernels::conv::{self, ConvGeometry, PackedConvWeights};
use qkernels::gemm::{Activation, Requantize, WeightQParams};
use qnn::float::{Conv2d, Conv2dConfig};
use qnn::{Module, Value};
use qtensor::Tensor;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

/// The shapes (N, C, H=W, O, k, groups), then more depthwise ones (MobileNet-like,
/// the last with stride 2 and 5×5).
const SHAPES: &str = "64,3,32,6,5,1;1,64,56,64,3,1;8,64,56,64,3,1;1,256,14,256,3,1;1,256,14,1024,1,1;1,144,56,144,3,144;1,32,112,32,3,32;1,96,112,96,3,96,2;1,240,28,240,5,240";

/// Every mode, in output order.
const MODES: [&str; 3] = ["int8", "f32", "f32-forward"];

/// Every int8 weight range (`--weights`): `i8 / 2`, and per-channel full range.
const WEIGHTS: [&str; 2] = ["half", "full"];

struct Settings {
    shapes: Vec<[usize; 7]>,
    threads: Vec<usize>,
    modes: Vec<String>,
    weights: Vec<String>,
    repeats: usize,
    warmup: usize,
}

/// `N,C,H,O,k,g[,stride]` per shape (stride 1 when absent, and then not printed).
fn parse_shapes(v: &str) -> Result<Vec<[usize; 7]>, String> {
    v.split(';')
        .map(|t| {
            let mut d: Vec<usize> = t
                .split(',')
                .map(|x| x.trim().parse::<usize>().map_err(|e| format!("{t:?}: {e}")))
                .collect::<Result<_, _>>()?;
            if d.len() == 6 {
                d.push(1);
            }
            match <[usize; 7]>::try_from(d) {
                Ok(s @ [.., stride]) if stride > 0 => Ok(s),
                _ => Err(format!("--shapes: {t:?} is not N,C,H,O,k,g[,stride>0]")),
            }
        })
        .collect()
}

/// The shape as given (`N,C,H,O,k,g`, with `,stride` only when it is not 1).
fn shape_name([n, c, h, o, k, g, s]: [usize; 7]) -> String {
    if s == 1 {
        format!("{n},{c},{h},{o},{k},{g}")
    } else {
        format!("{n},{c},{h},{o},{k},{g},{s}")
    }
}

fn parse_args(args: &[String]) -> Result<Settings, String> {
    let mut s = Settings {
        shapes: parse_shapes(SHAPES)?,
        threads: vec![1, 2],
        modes: MODES.iter().map(|m| m.to_string()).collect(),
        weights: WEIGHTS.iter().map(|m| m.to_string()).collect(),
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
            "--shapes" => s.shapes = parse_shapes(value)?,
            "--threads" => s.threads = value.split(',').map(num).collect::<Result<_, _>>()?,
            "--modes" => {
                s.modes = value.split(',').map(str::to_string).collect();
                if let Some(m) = s.modes.iter().find(|m| !MODES.contains(&m.as_str())) {
                    return Err(format!("--modes: unknown mode {m:?} (known: {MODES:?})"));
                }
            }
            "--weights" => {
                s.weights = value.split(',').map(str::to_string).collect();
                if let Some(w) = s.weights.iter().find(|w| !WEIGHTS.contains(&w.as_str())) {
                    return Err(format!(
                        "--weights: unknown range {w:?} (known: {WEIGHTS:?})"
                    ));
                }
            }
            "--repeats" => s.repeats = num(value)?.max(1),
            "--warmup" => s.warmup = num(value)?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(s)
}

/// A deterministic xorshift byte stream.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

/// Full-range per-channel symmetric qint8 weights, `o` channels of `per` values: Gaussian
/// values (Box–Muller on [`bytes`]) quantized per channel to `round(127·w / max|w|)`, as
/// PyTorch's `quantize_per_channel` with scale `max|w| / 127` does (torch_conv.py).
fn full_range_weights(o: usize, per: usize) -> Vec<i8> {
    let b = bytes(4 * o * per, 5);
    let uniform =
        |i: usize| (f64::from(b[2 * i]) * 256.0 + f64::from(b[2 * i + 1]) + 0.5) / 65536.0;
    let gauss: Vec<f64> = (0..o * per)
        .map(|i| {
            let (u, v) = (uniform(2 * i), uniform(2 * i + 1));
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        })
        .collect();
    gauss
        .chunks(per)
        .flat_map(|ch| {
            let m = ch.iter().fold(0f64, |m, v| m.max(v.abs()));
            ch.iter().map(move |v| (127.0 * v / m).round() as i8)
        })
        .collect()
}

/// Median time of `qnn::float::Conv2d` (eval, NCHW f32, on the current rayon pool) on the same shape:
/// qstack's own fp32 convolution, for issue 5's comparison with PyTorch's fp32. With
/// `forward`, `Module::forward` (which also saves the input); otherwise `Conv2d::apply`.
/// Returns the median and the fastest call.
fn float_conv_ns(
    s: &Settings,
    [n, c, h, o, k, g, stride]: [usize; 7],
    forward: bool,
) -> Result<(u64, u64), String> {
    let mut rng = qnn::init::Rng::new(3);
    let cfg = Conv2dConfig::new(c, o, k)
        .stride(stride)
        .padding(k / 2)
        .groups(g);
    let mut conv = Conv2d::new(cfg, &mut rng).map_err(|e| e.to_string())?;
    conv.eval();
    let x = Tensor::from_fn(&[n, c, h, h], |i| ((i % 251) as f32 - 125.0) / 40.0);
    let xv = Value::F32(x.clone());
    let mut call = || -> Result<(), String> {
        if forward {
            black_box(conv.forward(&xv).map_err(|e| e.to_string())?);
        } else {
            black_box(conv.apply(&x).map_err(|e| e.to_string())?);
        }
        Ok(())
    };
    for _ in 0..s.warmup {
        call()?;
    }
    let mut times = Vec::with_capacity(s.repeats);
    for _ in 0..s.repeats {
        let t0 = Instant::now();
        call()?;
        times.push(t0.elapsed().as_nanos() as u64);
    }
    times.sort_unstable();
    Ok((times[times.len() / 2], times[0]))
}

fn run(s: &Settings) -> Result<(), String> {
    for &shape in &s.shapes {
        let [n, c, h, o, k, g, stride] = shape;
        let name = shape_name(shape);
        let geometry = ConvGeometry::new(n, c, o, g, &[h, h], &[k, k])
            .and_then(|x| x.with_padding(&[k / 2, k / 2]))
            .and_then(|x| x.with_stride(&[stride, stride]))
            .map_err(|e| e.to_string())?;
        let input = bytes(geometry.input_len(), 1);
        let half: Vec<i8> = bytes(o * (c / g) * k * k, 2)
            .iter()
            .map(|&b| (b as i8) / 2)
            .collect();
        let scales: Vec<f32> = (0..o).map(|i| 0.001 + i as f32 * 1e-5).collect();
        let zps = vec![0i32; o];
        let bias: Vec<f32> = (0..o).map(|i| i as f32 * 0.01).collect();
        let params = Requantize {
            act_scale: 0.02,
            out_scale: 0.5,
            out_zero_point: 128,
            bias: Some(&bias),
            activation: Activation::None,
        };
        let out_len = geometry.output_len().map_err(|e| e.to_string())?;
        let oh = (h + 2 * (k / 2) - k) / stride + 1;
        let macs = (n * oh * oh * o * (c / g) * k * k) as f64;
        let int8 = s.modes.iter().any(|m| m == "int8");
        let depthwise = g > 1 && g == c;
        for range in &s.weights {
            let (mode, weights) = match range.as_str() {
                "half" => ("int8", half.clone()),
                _ if depthwise => ("int8-full", full_range_weights(o, (c / g) * k * k)),
                _ => continue,
            };
            if !int8 {
                break;
            }
            let packed = PackedConvWeights::pack_best(
                &weights,
                &geometry,
                WeightQParams::PerChannel {
                    scales: &scales,
                    zero_points: &zps,
                },
            )
            .map_err(|e| e.to_string())?;
            for &threads in &s.threads {
                let pool = qstack_benches::bench_pool(threads)?;
                let (ns, kernel) = pool.install(|| {
                    let call = || {
                        let mut out = vec![0u8; out_len];
                        let kind =
                            conv::conv_u8s8(&geometry, &input, 120, &packed, params, &mut out)
                                .expect("conv");
                        black_box(&out);
                        kind
                    };
                    for _ in 0..s.warmup {
                        call();
                    }
                    let mut times = Vec::with_capacity(s.repeats);
                    let mut kind = None;
                    for _ in 0..s.repeats {
                        let t0 = Instant::now();
                        kind = Some(call());
                        times.push(t0.elapsed().as_nanos() as u64);
                    }
                    times.sort_unstable();
                    (times[times.len() / 2], kind)
                });
                println!(
                    "{{\"suite\":\"conv\",\"mode\":\"{mode}\",\"shape\":\"{name}\",\"threads\":{threads},\"ns\":{ns},\"gops\":{:.1},\"repeats\":{},\"kernel\":\"{}\",\"path\":\"{}\"{}}}",
                    2.0 * macs / ns as f64,
                    s.repeats,
                    kernel.map(|k| k.name()).unwrap_or("?"),
                    match packed.path() {
                        "gemm" if geometry.is_pointwise() => "gemm",
                        "gemm" if conv::indirect_applies(&geometry, packed.kind()) => "indirect",
                        "row-run" if conv::row_run_amx_applies(&geometry, packed.kind()) =>
                            "row-run-amx",
                        "row-run" if !conv::row_run_applies(&geometry, packed.kind()) =>
                            "implicit-gemm",
                        "gemm" => "implicit-gemm",
                        other => other,
                    },
                    // which depthwise kernel (product) ran, e.g. avx512-pairs / avx512-cols
                    conv::depthwise_kernel(&geometry, &packed)
                        .map(|d| format!(",\"depthwise\":\"{d}\""))
                        .unwrap_or_default()
                );
            }
        }
        for &threads in &s.threads {
            for (mode, forward) in [("f32", false), ("f32-forward", true)] {
                if !s.modes.iter().any(|m| m == mode) {
                    continue;
                }
                let pool = qstack_benches::bench_pool(threads)?;
                let (ns, min_ns) = pool.install(|| float_conv_ns(s, shape, forward))?;
                println!(
                    "{{\"suite\":\"conv\",\"mode\":\"{mode}\",\"shape\":\"{name}\",\"threads\":{threads},\"ns\":{ns},\"min_ns\":{min_ns},\"gops\":{:.1},\"repeats\":{}}}",
                    2.0 * macs / ns as f64,
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
            eprintln!("vs_torch_conv: {e}");
            ExitCode::from(2)
        }
    }
}
