#!/usr/bin/env python3
"""Time torch.quantize_per_tensor and Tensor.dequantize for `cargo xtask bench-vs-torch`.

Usage:

    python tools/bench/torch_quantize.py [--sizes 1048576,16777216] [--threads 1,2]
                                         [--repeats 15] [--warmup 3] [--scale 0.05] [--zero-point 128]

For every (size, threads) pair it measures, with torch.set_num_threads(threads) and the fbgemm
engine:
  quantize:   torch.quantize_per_tensor(x, scale, zero_point, torch.quint8), x ~ N(0, 3) f32
  dequantize: q.dequantize() of that quantized tensor
Each op runs `warmup` untimed times and then `repeats` timed times (time.perf_counter_ns);
the median is reported. Output: one JSON object per line on stdout, e.g.

    {"op": "quantize", "n": 1048576, "threads": 1, "ns": 412345, "repeats": 15, "torch": "2.15.0+cu132"}

`ns` is the median wall time of one call, in nanoseconds. Diagnostics go to stderr.
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


def parse_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


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
    ap.add_argument("--sizes", default="1048576,16777216", help="comma-separated element counts")
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--scale", type=float, default=0.05)
    ap.add_argument("--zero-point", type=int, default=128)
    args = ap.parse_args(argv)

    try:
        import torch
    except ImportError as exc:
        print(f"torch_quantize: cannot import torch: {exc}", file=sys.stderr)
        return 3
    if not torch.__version__.startswith(REQUIRED_TORCH):
        print(f"torch_quantize: need torch {REQUIRED_TORCH}, found {torch.__version__}", file=sys.stderr)
        return 3
    warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
    torch.backends.quantized.engine = "fbgemm"

    gen = torch.Generator().manual_seed(0)
    for n in parse_list(args.sizes):
        x = torch.randn(n, generator=gen) * 3.0
        for threads in parse_list(args.threads):
            torch.set_num_threads(threads)
            q = torch.quantize_per_tensor(x, args.scale, args.zero_point, torch.quint8)
            results = {
                "quantize": median_ns(
                    lambda: torch.quantize_per_tensor(x, args.scale, args.zero_point, torch.quint8),
                    args.repeats, args.warmup),
                "dequantize": median_ns(q.dequantize, args.repeats, args.warmup),
            }
            for op, ns in results.items():
                print(json.dumps({"op": op, "n": n, "threads": threads, "ns": ns,
                                  "repeats": args.repeats, "torch": torch.__version__}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
