"""Golden data for printing, inspection and PyTorch state-dict loading in crates/qflow
(issue 7: "Printing and inspection", "Models on disk").

- `lenet5_repr.golden`: how PyTorch prints a LeNet5 (`quant`, `conv1`, `relu1`, `pool1`,
  `conv2`, `relu2`, `pool2`, `flatten`, `fc1`, `relu3`, `fc2`, `relu4`, `fc3`, `dequant`) at
  each stage of the eager flow. Case `<stage>.<module path>`, field `repr` u8 (the UTF-8 of
  the module's one-line form, see `one_line`). Stages: `float`, `fused` (conv/linear + relu
  fused), `prepared` (fbgemm default qconfig, after calibrating on `calib`), `converted`,
  `dynamic` (quantize_dynamic {Linear} qint8), `dynamic_fp16`, `qat` (prepare_qat with the
  fbgemm QAT qconfig on the fused model, before any forward). Paths are the top-level
  children and the `activation_post_process` observers (the nodes a qstack graph has).
  Case `calib`: `shape` i64[4] and `x` f32 (two batches stacked, 2 x 4 x 1 x 32 x 32).
- `lenet5_print.safetensors`: the float LeNet5's state dict (`safetensors.torch.save_file`).
- `nested_torch.safetensors` + `nested_load.golden`: a model with nested PyTorch names
  (`features` Sequential of Conv2d/BatchNorm2d/ReLU, a residual block `layer1.0` with
  `conv1`/`bn1`/`conv2`/`bn2`, `fc`), trained three SGD steps so that BN running statistics
  and `num_batches_tracked` (int64) are non-trivial, saved in eval mode. Case `nested`:
  `shape` i64[4], `x` f32, `y_shape` i64[2], `y` f32 (PyTorch's eval outputs).
"""

from __future__ import annotations

import copy
import os
import warnings

import numpy as np

from golden_io import GoldenFile, f32, i64, u8
from torch_env import setup_torch

TOPIC = "print"
OUT_DIR = "crates/qflow/tests/data/print"

# Children PyTorch prints on their own lines that qstack keeps elsewhere: a layer's output
# observer (`activation_post_process` of anything but a fake-quant) is a graph node of its own,
# and packed weights are internal state (PyTorch's own `__repr__` of quantized Linear hides them
# too). A QAT layer's `weight_fake_quant` and a fake-quant's own observer are printed inline.
SEPARATE_CHILDREN = ("_packed_params",)


def one_line(m) -> str:
    """`Type(extra_repr, child, child, ...)`: PyTorch's repr with children inlined."""
    import torch.ao.quantization as tq

    parts = []
    extra = m.extra_repr()
    if extra:
        parts.append(extra)
    for name, child in m.named_children():
        if name in SEPARATE_CHILDREN:
            continue
        if name == "activation_post_process" and not isinstance(m, tq.FakeQuantizeBase):
            continue
        parts.append(one_line(child))
    return f"{m._get_name()}({', '.join(parts)})"


def lenet5(torch):
    nn = torch.nn
    tq = torch.ao.quantization

    class LeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant = tq.QuantStub()
            self.conv1 = nn.Conv2d(1, 6, 5)
            self.relu1 = nn.ReLU()
            self.pool1 = nn.MaxPool2d(2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.relu2 = nn.ReLU()
            self.pool2 = nn.MaxPool2d(2)
            self.flatten = nn.Flatten()
            self.fc1 = nn.Linear(400, 120)
            self.relu3 = nn.ReLU()
            self.fc2 = nn.Linear(120, 84)
            self.relu4 = nn.ReLU()
            self.fc3 = nn.Linear(84, 10)
            self.dequant = tq.DeQuantStub()

        def forward(self, x):
            x = self.quant(x)
            x = self.pool1(self.relu1(self.conv1(x)))
            x = self.pool2(self.relu2(self.conv2(x)))
            x = self.flatten(x)
            x = self.relu3(self.fc1(x))
            x = self.relu4(self.fc2(x))
            return self.dequant(self.fc3(x))

    return LeNet5()


FUSE_GROUPS = [["conv1", "relu1"], ["conv2", "relu2"], ["fc1", "relu3"], ["fc2", "relu4"]]


def record(gf, stage, model, with_stubs):
    for name, m in model.named_modules():
        if not name:
            continue
        top = "." not in name
        observer = name.endswith(".activation_post_process") and name.count(".") == 1
        if not (top or observer):
            continue
        if name in ("quant", "dequant") and not with_stubs:
            continue
        text = one_line(m)
        gf.case(f"{stage}.{name}", {"repr": u8(np.frombuffer(text.encode("utf-8"), dtype=np.uint8))})


def nested_model(torch):
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)

        def forward(self, x):
            h = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(h)) + x)

    class Nested(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(2, 4, 3, stride=2), nn.BatchNorm2d(4), nn.ReLU())
            self.layer1 = nn.Sequential(Block(4))
            self.pool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            x = self.layer1(self.features(x))
            return self.fc(torch.flatten(self.pool(x), 1))

    return Nested()


def generate(out_dir: str) -> list[tuple[str, int]]:
    """Write the print golden files into out_dir; returns [(path, case_count)]."""
    from safetensors.torch import save_file

    torch = setup_torch()
    tq = torch.ao.quantization
    warnings.filterwarnings("ignore")
    os.makedirs(out_dir, exist_ok=True)
    written = []

    # --- LeNet5 printouts -------------------------------------------------------------
    torch.manual_seed(707)
    rng = np.random.default_rng(707)
    model = lenet5(torch).eval()
    path = os.path.join(out_dir, "lenet5_print.safetensors")
    state = model.state_dict()
    save_file(state, path)
    written.append((path, len(state)))

    gf = GoldenFile(TOPIC, "lenet5_repr", "one-line PyTorch reprs of a LeNet5 at each stage of the eager flow")
    calib = rng.normal(0, 1, (2, 4, 1, 32, 32)).astype(np.float32)
    gf.case("calib", {"shape": i64(list(calib.shape[1:])), "x": f32(calib)})
    record(gf, "float", model, False)
    fused = tq.fuse_modules(copy.deepcopy(model), FUSE_GROUPS)
    record(gf, "fused", fused, False)
    fused.qconfig = tq.get_default_qconfig("fbgemm")
    prepared = tq.prepare(copy.deepcopy(fused))
    with torch.no_grad():
        for batch in calib:
            prepared(torch.from_numpy(batch))
    record(gf, "prepared", prepared, False)
    converted = tq.convert(copy.deepcopy(prepared))
    record(gf, "converted", converted, True)
    dynamic = tq.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)
    record(gf, "dynamic", dynamic, False)
    dynamic16 = tq.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.float16)
    record(gf, "dynamic_fp16", dynamic16, False)
    qat = copy.deepcopy(fused).train()
    qat.qconfig = tq.get_default_qat_qconfig("fbgemm")
    qat = tq.prepare_qat(qat)
    record(gf, "qat", qat, False)
    written.append((gf.write(out_dir), gf.case_count))

    # --- nested names state dict --------------------------------------------------------
    torch.manual_seed(708)
    rng = np.random.default_rng(708)
    net = nested_model(torch)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    for _ in range(3):
        x = torch.from_numpy(rng.normal(0, 1, (4, 2, 9, 9)).astype(np.float32))
        target = torch.from_numpy(rng.integers(0, 3, 4))
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), target).backward()
        opt.step()
    net.eval()
    path = os.path.join(out_dir, "nested_torch.safetensors")
    state = net.state_dict()
    save_file(state, path)
    written.append((path, len(state)))
    x = torch.from_numpy(rng.normal(0, 1, (3, 2, 9, 9)).astype(np.float32))
    with torch.no_grad():
        y = net(x)
    gf = GoldenFile(TOPIC, "nested_load", "eval outputs of the nested-name model saved in nested_torch.safetensors")
    gf.case("nested", {"shape": i64(list(x.shape)), "x": f32(x.numpy()), "y_shape": i64(list(y.shape)), "y": f32(y.numpy())})
    written.append((gf.write(out_dir), gf.case_count))
    return written
