//! The demo's patch Transformer (`qstack_cli::zoo::Arch::Transformer`: one encoder layer,
//! d 64, 4 heads, ff 128, 16 patches) in fp32 and halved (`Module::half`), forward latency at
//! batch 1 and 64 on one thread, for issue 5's "fp16 within 1.1× of our fp32".
//!
//! The two models are timed interleaved (one fp32 call, one fp16 call, …) so that load from
//! other processes hits both alike. Prints one JSON object per batch size:
//! `{"suite":"transformer_half","batch":1,"fp32_ns":…,"fp16_ns":…,"ratio":…}` (medians;
//! `ratio` = fp16 / fp32, and the minimums as `fp32_min_ns`, `fp16_min_ns`).
//!
//! Usage: `transformer_half [--repeats N]` (default 201 calls per model at batch 1, a tenth of
//! that at batch 64).

use qnn::Value;
use qnn::qtensor::Tensor;
use qstack_cli::zoo::Arch;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

fn median(mut t: Vec<u128>) -> (u128, u128) {
    t.sort_unstable();
    (t[t.len() / 2], t[0])
}

fn run(repeats: usize) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let mut fp32 = Arch::Transformer.build(0).map_err(|e| err(&e))?;
    fp32.eval();
    let mut fp16 = Arch::Transformer.build(0).map_err(|e| err(&e))?;
    fp16.eval();
    fp16.half().map_err(|e| err(&e))?;
    for batch in [1usize, 64] {
        let n = batch * 16 * 49;
        let data: Vec<f32> = (0..n)
            .map(|i| ((i * 7919 % 1000) as f32) / 500.0 - 1.0)
            .collect();
        let x = Value::F32(Tensor::new(&[batch, 16, 49], data).map_err(|e| err(&e))?);
        let calls = if batch == 1 {
            repeats
        } else {
            repeats / 10 + 1
        };
        let (mut t32, mut t16) = (Vec::new(), Vec::new());
        for i in 0..calls + 5 {
            let s = Instant::now();
            black_box(fp32.forward(&x).map_err(|e| err(&e))?);
            let a = s.elapsed().as_nanos();
            let s = Instant::now();
            black_box(fp16.forward(&x).map_err(|e| err(&e))?);
            let b = s.elapsed().as_nanos();
            if i >= 5 {
                t32.push(a);
                t16.push(b);
            }
        }
        let ((m32, min32), (m16, min16)) = (median(t32), median(t16));
        println!(
            "{{\"suite\":\"transformer_half\",\"batch\":{batch},\"fp32_ns\":{m32},\"fp16_ns\":{m16},\"ratio\":{:.3},\"fp32_min_ns\":{min32},\"fp16_min_ns\":{min16}}}",
            m16 as f64 / m32 as f64
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let repeats = match args.as_slice() {
        [] => 201,
        [flag, v] if flag == "--repeats" => match v.parse() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("transformer_half: --repeats wants a positive integer");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: transformer_half [--repeats N]");
            return ExitCode::from(2);
        }
    };
    match run(repeats) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("transformer_half: {e}");
            ExitCode::FAILURE
        }
    }
}
