#!/usr/bin/env python3
"""Time PyTorch's fp32 LeNet5 training step and forward pass (the other side of
`benches/src/bin/lenet_train.rs`).

Usage:

    python tools/bench/torch_lenet.py [--batch 64] [--size 32] [--repeats 50] [--warmup 5]
    python tools/bench/torch_lenet.py --mnist-epochs N [--mnist DIR] [--batch 64]

LeNet5 on 1 x S x S synthetic inputs (S = 32 by default): conv 1->6 k5, ReLU, max-pool 2,
conv 6->16 k5, ReLU, max-pool 2, Linear ->120, ReLU, ->84, ReLU, ->10; single thread
(torch.set_num_threads(1)). Phases: "train_step" (forward, cross-entropy, zero_grad, backward,
SGD lr 0.01 momentum 0.9), "forward" (eval mode, torch.no_grad()), "forward_half" (the model and
input in torch.float16, as PyTorch's .half() runs on CPU). The median of `repeats` timed calls
after `warmup` untimed ones is printed as one JSON object per line:

    {"suite": "lenet", "phase": "train_step", "batch": 64, "size": 32, "threads": 1, "ns": 123456}

With `--mnist-epochs N` it instead trains N real epochs on MNIST (DIR defaults to the
repository's data/mnist; 60000 images normalized and padded to 32 x 32 as `qstack train` and
torch_lenet_int8.py do), shuffled, batch 64, SGD lr 0.01 momentum 0.9, single thread, and prints
the wall time of each epoch (the counterpart of `qstack train --model lenet5 --optimizer sgd
--lr 0.01 --momentum 0.9 --constant-lr`, which prints its epochs' times the same way):

    {"suite": "lenet", "phase": "mnist_epoch", "epoch": 1, "batch": 64, "threads": 1, "seconds": 6.1}

Exit status 3 when torch is missing or is not 2.15.0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

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
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--mnist-epochs", type=int, default=0,
                    help="train this many real MNIST epochs and time each (instead of the phases)")
    ap.add_argument("--mnist", default=None, help="MNIST folder (default: the repo's data/mnist)")
    args = ap.parse_args(argv)
    try:
        import torch
        from torch import nn
    except ImportError:
        print("torch_lenet.py: torch is not installed", file=sys.stderr)
        return 3
    if not torch.__version__.startswith(REQUIRED_TORCH):
        print(f"torch_lenet.py: need torch {REQUIRED_TORCH}, found {torch.__version__}", file=sys.stderr)
        return 3
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if args.mnist_epochs > 0:
        return mnist_epochs(torch, nn, args)
    side = ((args.size - 4) // 2 - 4) // 2
    model = lenet5(nn, side)
    x = torch.rand(args.batch, 1, args.size, args.size) * 2 - 1
    y = torch.randint(0, 10, (args.batch,))
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def report(phase: str, ns: int) -> None:
        print(json.dumps({"suite": "lenet", "phase": phase, "batch": args.batch, "size": args.size,
                          "threads": 1, "ns": ns}))

    report("train_step", median_ns(step, args.repeats, args.warmup))
    model.eval()
    with torch.no_grad():
        report("forward", median_ns(lambda: model(x), args.repeats, args.warmup))
        model.half()
        xh = x.half()
        report("forward_half", median_ns(lambda: model(xh), args.repeats, args.warmup))
    return 0


def lenet5(nn, side: int):
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * side * side, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )


def mnist_epochs(torch, nn, args) -> int:
    """Real MNIST epochs, timed one by one (see the module doc)."""
    import os

    from torch_lenet_int8 import REPO, load_mnist

    xtr, ytr, _, _ = load_mnist(args.mnist or os.path.join(REPO, "data", "mnist"))
    x, y = torch.from_numpy(xtr.copy()), torch.from_numpy(ytr.copy())
    model = lenet5(nn, 5)
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    n = x.shape[0]
    for epoch in range(1, args.mnist_epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        for i in range(0, n, args.batch):
            idx = perm[i : i + args.batch]
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        seconds = time.perf_counter() - t0
        print(json.dumps({"suite": "lenet", "phase": "mnist_epoch", "epoch": epoch, "batch": args.batch,
                          "threads": 1, "seconds": round(seconds, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
