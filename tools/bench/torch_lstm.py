#!/usr/bin/env python3
"""Time PyTorch's dynamic quantized LSTM (fbgemm engine) for `cargo xtask bench-vs-torch --suite lstm`.

Usage:

    python tools/bench/torch_lstm.py [--shapes 32x8x256x512x2] [--threads 1]
                                     [--modes qint8,float] [--repeats 15] [--warmup 3]

Shapes are TxBxIxHxL (sequence length, batch, input, hidden, layers; one direction,
sequence-first, zero initial state). For every (shape, threads, mode), with
torch.set_num_threads(threads), under torch.no_grad():
  qint8: torch.ao.quantization.quantize_dynamic(nn.LSTM, {nn.LSTM}, dtype=torch.qint8)
         (per-tensor symmetric qint8 weights, reduce_range activations);
  fp16:  the same with dtype=torch.float16;
  float: the float nn.LSTM in eval.
The Rust side is benches/src/bin/vs_torch_lstm.rs (same shapes and modes, inputs alike in
distribution). Each forward runs `warmup` untimed times, then `repeats` timed times
(time.perf_counter_ns); the median is printed as one JSON object per line:

    {"suite": "lstm", "mode": "qint8", "shape": "32,8,256,512,2", "threads": 1, "ns": 123456, ...}

Exit status 3 when torch is missing or is not 2.15.0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings

REQUIRED_TORCH = "2.15.0"


def median_ns(fn, repeats: int, warmup: int) -> int:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return int(statistics.median(times))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="32x8x256x512x2")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--modes", default="qint8,float")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError as exc:
        print(f"torch_lstm: cannot import torch: {exc}", file=sys.stderr)
        return 3
    if not torch.__version__.startswith(REQUIRED_TORCH):
        print(f"torch_lstm: need torch {REQUIRED_TORCH}, found {torch.__version__}", file=sys.stderr)
        return 3
    warnings.filterwarnings("ignore")
    torch.backends.quantized.engine = "fbgemm"
    torch.manual_seed(0)
    for shape in args.shapes.split(","):
        t, b, i, h, layers = (int(v) for v in shape.split("x"))
        lstm = torch.nn.LSTM(i, h, num_layers=layers).eval()
        x = (torch.rand(t, b, i) * 2 - 1) * 2
        for threads in (int(v) for v in args.threads.split(",")):
            torch.set_num_threads(threads)
            for mode in args.modes.split(","):
                if mode == "qint8":
                    model = torch.ao.quantization.quantize_dynamic(lstm, {torch.nn.LSTM}, dtype=torch.qint8)
                elif mode == "fp16":
                    model = torch.ao.quantization.quantize_dynamic(lstm, {torch.nn.LSTM}, dtype=torch.float16)
                elif mode == "float":
                    model = lstm
                else:
                    print(f"torch_lstm: unknown mode {mode!r}", file=sys.stderr)
                    return 2
                with torch.no_grad():
                    ns = median_ns(lambda: model(x), args.repeats, args.warmup)
                print(json.dumps({
                    "suite": "lstm", "mode": mode, "shape": f"{t},{b},{i},{h},{layers}", "threads": threads,
                    "ns": ns, "repeats": args.repeats, "torch": torch.__version__,
                }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
