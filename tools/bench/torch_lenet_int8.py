#!/usr/bin/env python3
"""PyTorch and ONNX Runtime side of the LeNet5 quantization study (`qstack demo`), same flow.

Usage:

    python tools/bench/torch_lenet_int8.py [--mnist DIR] [--epochs 2] [--calib 1024]
                                           [--repeats 200] [--seed 0] [--no-ort]

Trains LeNet5 (input padded to 32x32, conv 1->6 k5, ReLU, max-pool 2, conv 6->16 k5, ReLU,
max-pool 2, Linear 400->120, ReLU, ->84, ReLU, ->10) on MNIST for `epochs` epochs (Adam, lr 1e-3,
batch 64), then quantizes it the eager-mode way: fuse conv+relu and linear+relu,
`get_default_qconfig("fbgemm")` (histogram activations with reduce_range, per-channel weights),
prepare, calibrate on `calib` training images, convert. ONNX Runtime gets the same fp32 model
(exported with torch.onnx) and its `quantize_static` (QDQ, per-channel, MinMax calibration on the
same images). Every latency is single-thread (torch.set_num_threads(1), ORT intra-op threads 1),
the median of `repeats` timed calls after warm-up, at batch 1 and batch 64.

Prints one JSON object per line, e.g.

    {"suite": "lenet_int8", "engine": "torch", "model": "fp32", "accuracy": 0.9912,
     "batch1_us": 240.1, "batch64_us": 2600.3}

MNIST is read from DIR (default: the repository's data/mnist, gzipped IDX files).
Exit status 3 when torch is missing or is not 2.15.0.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import struct
import sys
import tempfile
import time

REQUIRED_TORCH = "2.15.0"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def read_idx(path: str):
    import numpy as np

    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist(root: str):
    import numpy as np

    def images(name):
        x = read_idx(os.path.join(root, name)).astype(np.float32) / 255.0
        x = (x - 0.1307) / 0.3081
        x = np.pad(x, ((0, 0), (2, 2), (2, 2)), constant_values=(0.0 - 0.1307) / 0.3081)
        return x[:, None, :, :]

    def labels(name):
        return read_idx(os.path.join(root, name)).astype(np.int64)

    return (
        images("train-images-idx3-ubyte.gz"),
        labels("train-labels-idx1-ubyte.gz"),
        images("t10k-images-idx3-ubyte.gz"),
        labels("t10k-labels-idx1-ubyte.gz"),
    )


def median_us(fn, repeats: int, warmup: int = 10) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1000.0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnist", default=os.path.join(REPO, "data", "mnist"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--calib", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-ort", action="store_true", help="skip ONNX Runtime")
    args = ap.parse_args(argv)
    try:
        import numpy as np
        import torch
        import torch.nn as nn
    except ImportError as exc:
        print(f"torch_lenet_int8: {exc}", file=sys.stderr)
        return 3
    if not torch.__version__.startswith(REQUIRED_TORCH):
        print(f"torch_lenet_int8: need torch {REQUIRED_TORCH}, have {torch.__version__}", file=sys.stderr)
        return 3

    torch.manual_seed(args.seed)
    torch.backends.quantized.engine = "fbgemm"
    xtr, ytr, xte, yte = load_mnist(args.mnist)
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr)
    xte_t, yte_t = torch.from_numpy(xte), torch.from_numpy(yte)

    class LeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant = torch.ao.quantization.QuantStub()
            self.conv1, self.relu1, self.pool1 = nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2)
            self.conv2, self.relu2, self.pool2 = nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2)
            self.flatten = nn.Flatten()
            self.fc1, self.relu3 = nn.Linear(400, 120), nn.ReLU()
            self.fc2, self.relu4 = nn.Linear(120, 84), nn.ReLU()
            self.fc3 = nn.Linear(84, 10)
            self.dequant = torch.ao.quantization.DeQuantStub()

        def forward(self, x):
            x = self.quant(x)
            x = self.pool1(self.relu1(self.conv1(x)))
            x = self.pool2(self.relu2(self.conv2(x)))
            x = self.flatten(x)
            x = self.relu3(self.fc1(x))
            x = self.relu4(self.fc2(x))
            return self.dequant(self.fc3(x))

    model = LeNet5()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    n = xtr_t.shape[0]
    t0 = time.time()
    for _ in range(args.epochs):
        model.train()
        perm = torch.randperm(n)
        for i in range(0, n, 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            loss_fn(model(xtr_t[idx]), ytr_t[idx]).backward()
            opt.step()
    train_s = time.time() - t0
    model.eval()

    def accuracy(m) -> float:
        with torch.no_grad():
            correct = 0
            for i in range(0, xte_t.shape[0], 500):
                correct += (m(xte_t[i : i + 500]).argmax(1) == yte_t[i : i + 500]).sum().item()
        return correct / xte_t.shape[0]

    fp32_acc = accuracy(model)

    import copy

    qmodel = copy.deepcopy(model)
    torch.ao.quantization.fuse_modules(
        qmodel, [["conv1", "relu1"], ["conv2", "relu2"], ["fc1", "relu3"], ["fc2", "relu4"]], inplace=True
    )
    qmodel.qconfig = torch.ao.quantization.get_default_qconfig("fbgemm")
    torch.ao.quantization.prepare(qmodel, inplace=True)
    with torch.no_grad():
        for i in range(0, args.calib, 64):
            qmodel(xtr_t[i : min(i + 64, args.calib)])
    torch.ao.quantization.convert(qmodel, inplace=True)
    int8_acc = accuracy(qmodel)

    torch.set_num_threads(1)
    x1, x64 = xte_t[:1].contiguous(), xte_t[:64].contiguous()
    rows = []
    with torch.no_grad():
        for name, m, acc in (("fp32", model, fp32_acc), ("static_int8", qmodel, int8_acc)):
            rows.append(
                {
                    "suite": "lenet_int8",
                    "engine": "torch",
                    "model": name,
                    "accuracy": acc,
                    "batch1_us": round(median_us(lambda: m(x1), args.repeats), 1),
                    "batch64_us": round(median_us(lambda: m(x64), max(20, args.repeats // 4)), 1),
                }
            )
    rows[0]["train_seconds"] = round(train_s, 1)

    if not args.no_ort:
        try:
            import onnxruntime as ort
            from onnxruntime.quantization import (
                CalibrationDataReader,
                QuantFormat,
                QuantType,
                quantize_static,
            )
        except ImportError as exc:
            print(f"torch_lenet_int8: skipping ONNX Runtime: {exc}", file=sys.stderr)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                fp32_path = os.path.join(tmp, "lenet.onnx")
                int8_path = os.path.join(tmp, "lenet_int8.onnx")
                torch.onnx.export(
                    model, (x1,), fp32_path, input_names=["x"], output_names=["y"],
                    dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False,
                )

                class Reader(CalibrationDataReader):
                    def __init__(self):
                        self.batches = iter(
                            [{"x": xtr[i : min(i + 64, args.calib)]} for i in range(0, args.calib, 64)]
                        )

                    def get_next(self):
                        return next(self.batches, None)

                quantize_static(
                    fp32_path, int8_path, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                )
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = 1
                opts.inter_op_num_threads = 1
                for name, path in (("fp32", fp32_path), ("static_int8", int8_path)):
                    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
                    preds = []
                    for i in range(0, xte.shape[0], 500):
                        preds.append(sess.run(None, {"x": xte[i : i + 500]})[0].argmax(1))
                    acc = float((np.concatenate(preds) == yte).mean())
                    a1, a64 = xte[:1].copy(), xte[:64].copy()
                    rows.append(
                        {
                            "suite": "lenet_int8",
                            "engine": "onnxruntime",
                            "model": name,
                            "accuracy": acc,
                            "batch1_us": round(median_us(lambda: sess.run(None, {"x": a1}), args.repeats), 1),
                            "batch64_us": round(
                                median_us(lambda: sess.run(None, {"x": a64}), max(20, args.repeats // 4)), 1
                            ),
                        }
                    )
    for r in rows:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
