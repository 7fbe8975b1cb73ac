#!/usr/bin/env python3
"""Time PyTorch's quantized conv2d (fbgemm engine) for `cargo xtask bench-vs-torch --suite conv`.

Usage:

    python tools/bench/torch_conv.py [--shapes N,C,H,O,k,g;...] [--threads 1,2]
                                     [--repeats 15] [--warmup 3]

Shapes are (N, C, H=W, O, k, groups[, stride]) separated by ';' (default: the issue-4 shapes,
then more depthwise ones). Every conv has stride 1 unless given and padding k//2, per-channel symmetric qint8 weights, a float bias, a
quint8 NCHW input (torch converts to channels-last internally; the input is made
channels-last once, outside the timing, as qstack's NHWC input is) and a quint8 output. For
every (shape, threads), with torch.set_num_threads(threads), it also times the float conv2d on
the same shape: "mode": "f32" on channels-last input and weight (the layout the int8 path
runs in) and "mode": "f32-nchw" on PyTorch's default contiguous NCHW tensors (the layout of
qstack's `qnn::float::Conv2d`, the like-for-like line for issue 5). The weights are Gaussian
floats quantized per channel with scale max|w|/127, so every channel reaches +-127 (full
range, as real checkpoints); on depthwise shapes (groups = C) the same int8 call is timed a
second time as "mode": "int8-full", the counterpart of vs_torch_conv's full-range line (its
"int8" line uses weights i8/2; fbgemm's int8 time does not depend on the weight values, and
its "int8" line here has the full-range weights too). Each call runs `warmup`
untimed times, then `repeats` timed times (time.perf_counter_ns); the median is reported as
one JSON object per line on stdout:

    {"suite": "conv", "mode": "int8", "shape": "1,64,56,64,3,1", "threads": 1, "ns": 123456, ...}

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
SHAPES = (
    "64,3,32,6,5,1;1,64,56,64,3,1;8,64,56,64,3,1;1,256,14,256,3,1;1,256,14,1024,1,1;1,144,56,144,3,144;"
    "1,32,112,32,3,32;1,96,112,96,3,96,2;1,240,28,240,5,240"
)


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
    ap.add_argument("--shapes", default=SHAPES)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError as exc:
        print(f"torch_conv: cannot import torch: {exc}", file=sys.stderr)
        return 3
    if not torch.__version__.startswith(REQUIRED_TORCH):
        print(f"torch_conv: need torch {REQUIRED_TORCH}, found {torch.__version__}", file=sys.stderr)
        return 3
    warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
    torch.backends.quantized.engine = "fbgemm"
    gen = torch.Generator().manual_seed(0)
    for shape in args.shapes.split(";"):
        dims = [int(v) for v in shape.split(",")]
        n, c, h, o, k, g = dims[:6]
        s = dims[6] if len(dims) > 6 else 1
        w = torch.randn(o, c // g, k, k, generator=gen) * 0.1
        scales = (w.abs().amax(dim=(1, 2, 3)) / 127).double()
        qw = torch.quantize_per_channel(w, scales, torch.zeros(o, dtype=torch.long), 0, torch.qint8)
        bias = torch.randn(o, generator=gen)
        pad = k // 2
        packed = torch.ops.quantized.conv2d_prepack(qw, bias, [s, s], [pad, pad], [1, 1], g)
        x = torch.randn(n, c, h, h, generator=gen) * 3.0
        qx = torch.quantize_per_tensor(x, 0.02, 120, torch.quint8).contiguous(memory_format=torch.channels_last)
        xf = x.contiguous(memory_format=torch.channels_last)
        wf = w.contiguous(memory_format=torch.channels_last)
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            modes = {
                "int8": lambda: torch.ops.quantized.conv2d(qx, packed, 0.5, 128),  # noqa: E731
                "f32": lambda: torch.nn.functional.conv2d(xf, wf, bias, s, pad, 1, g),  # noqa: E731
                "f32-nchw": lambda: torch.nn.functional.conv2d(x, w, bias, s, pad, 1, g),  # noqa: E731
            }
            if g > 1 and g == c:
                modes["int8-full"] = modes["int8"]  # same weights: already full range
            for mode, fn in modes.items():
                ns = median_ns(fn, args.repeats, args.warmup)
                oh = (h + 2 * pad - k) // s + 1
                macs = n * oh * oh * o * (c // g) * k * k
                print(json.dumps({
                    "suite": "conv", "mode": mode, "shape": shape, "threads": threads, "ns": ns,
                    "gops": round(2.0 * macs / ns, 1), "repeats": args.repeats, "torch": torch.__version__,
                }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
