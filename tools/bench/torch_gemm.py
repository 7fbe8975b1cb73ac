#!/usr/bin/env python3
"""Time PyTorch's quantized Linear (fbgemm engine) for `cargo xtask bench-vs-torch --suite gemm`.

Usage:

    python tools/bench/torch_gemm.py [--shapes 1x1024x1024,...] [--threads 1,2]
                                     [--modes static,dynamic] [--repeats 15] [--warmup 3]

Shapes are MxKxN (default: the issue-3 shapes). For every (shape, threads, mode), with
torch.set_num_threads(threads):
  static:  torch.ops.quantized.linear(qx, packed, 0.5, 128): quint8 M x K activations,
           per-channel symmetric qint8 weights N x K with a float bias, quint8 output;
  dynamic: torch.ops.quantized.linear_dynamic(x, packed, True): f32 in, f32 out (what
           nnqd.Linear runs, reduce_range=True);
  f32:     torch.nn.functional.linear(x, w, bias), the float Linear (not run by default).
The same inputs as benches/src/bin/vs_torch_gemm.rs in distribution (not in values). Each call
runs at least `warmup` untimed times and 20 ms, then at least `repeats` timed times and 50 ms
of them, at most 5000 (time.perf_counter_ns; the rule of qstack_benches::time_calls); the median is
reported as one JSON object per line on stdout:

    {"suite": "gemm", "mode": "static", "m": 64, "k": 1024, "n": 1024, "threads": 1, "ns": 123456, ...}

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
SHAPES = "1x1024x1024,16x1024x1024,64x1024x1024,256x1024x1024,128x768x3072,128x3072x768,512x4096x4096"


# The same rule as qstack_benches::time_calls (benches/src/lib.rs): at least `warmup` runs
# and 20 ms of warm-up, at least `repeats` samples and 50 ms of them (at most 5000).
MIN_WARMUP_NS = 20_000_000
MIN_TIMED_NS = 50_000_000
MAX_SAMPLES = 5000


def median_ns(fn, repeats: int, warmup: int) -> tuple[int, int]:
    """(median ns, samples) of `fn` by the shared warm-up and sample rule."""
    start = time.perf_counter_ns()
    runs = 0
    while runs < warmup or time.perf_counter_ns() - start < MIN_WARMUP_NS:
        fn()
        runs += 1
    times = []
    timed = 0
    while len(times) < max(repeats, 1) or (timed < MIN_TIMED_NS and len(times) < MAX_SAMPLES):
        t0 = time.perf_counter_ns()
        fn()
        ns = time.perf_counter_ns() - t0
        timed += ns
        times.append(ns)
    return int(statistics.median(times)), len(times)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default=SHAPES)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--modes", default="static,dynamic")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError as exc:
        print(f"torch_gemm: cannot import torch: {exc}", file=sys.stderr)
        return 3
    if not torch.__version__.startswith(REQUIRED_TORCH):
        print(f"torch_gemm: need torch {REQUIRED_TORCH}, found {torch.__version__}", file=sys.stderr)
        return 3
    warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
    torch.backends.quantized.engine = "fbgemm"
    gen = torch.Generator().manual_seed(0)
    for shape in args.shapes.split(","):
        m, k, n = (int(v) for v in shape.split("x"))
        w = torch.randn(n, k, generator=gen) * 0.1
        scales = (w.abs().amax(dim=1) / 127).double()
        qw = torch.quantize_per_channel(w, scales, torch.zeros(n, dtype=torch.long), 0, torch.qint8)
        bias = torch.randn(n, generator=gen)
        packed = torch.ops.quantized.linear_prepack(qw, bias)
        x = torch.randn(m, k, generator=gen) * 3.0
        qx = torch.quantize_per_tensor(x, 0.02, 120, torch.quint8)
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            for mode in args.modes.split(","):
                if mode == "static":
                    fn = lambda: torch.ops.quantized.linear(qx, packed, 0.5, 128)  # noqa: E731
                elif mode == "dynamic":
                    fn = lambda: torch.ops.quantized.linear_dynamic(x, packed, True)  # noqa: E731
                elif mode == "f32":
                    fn = lambda: torch.nn.functional.linear(x, w, bias)  # noqa: E731
                else:
                    print(f"torch_gemm: unknown mode {mode!r}", file=sys.stderr)
                    return 2
                ns, samples = median_ns(fn, args.repeats, args.warmup)
                print(json.dumps({
                    "suite": "gemm", "mode": mode, "m": m, "k": k, "n": n, "threads": threads,
                    "ns": ns, "gops": round(2.0 * m * n * k / ns, 1), "repeats": samples,
                    "torch": torch.__version__,
                }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
