"""Golden data for qflow's `prepare_qat` on the fused modules PyTorch keeps as `nn.Sequential`s
(issue 7, QAT double observation): after `prepare_qat`, ConvReLU1d and BNReLU2d are not swapped
for QAT modules, so their `activation_post_process` fake-quant runs twice per forward (as the
last child, then from the forward hook on that output), moving its running range twice.

- `double_fake_quant.golden`: case `<model>_v<qconfig version>` for models `conv_relu1d`
  (Conv1d(2, 3, 3) + ReLU; weights and inputs are multiples of 1/4 so every float sum is exact
  in any order) and `bn_relu2d` (BatchNorm2d(3) + ReLU, default affine init), QAT qconfig
  versions 0 (FakeQuantize) and 1 (FusedMovingAvgObsFakeQuantize) of fbgemm. Fields: `weight`
  f32 / `bias` f32 (conv only), `x_shape` i64, `x` f32 (three training batches stacked),
  `in_scale` f32 / `in_zp` i64 (the input fake-quant, `quant.activation_post_process`),
  `scale` f32 / `zp` i64 / `min_val` f32 / `max_val` f32 (the fused module's fake-quant after
  the three forwards), `y` f32 (the last forward's output).
- `bn_flow.golden`: the QAT Conv1d/Linear+BatchNorm1d modules through the whole eager flow:
  `fuse_modules_qat` → `prepare_qat` (nniqat.ConvBnReLU1d, ConvBn1d, LinearBn1d) → three SGD
  steps (`p -= lr * grad` of `sum(y * gy)`) → `eval()` → `convert`. Cases `<model>_v<qconfig
  version>`: `conv1d` = Conv1d(3, 4, 3, padding=1) + BatchNorm1d(4) + ReLU → Conv1d(4, 3, 3) +
  BatchNorm1d(3); `linear` = Linear(6, 5) + BatchNorm1d(5) → ReLU → Linear(5, 4) +
  BatchNorm1d(4) (the ReLU stays a separate module: Linear+BN+ReLU is no fuser pattern).
  Fields: `w1 b1 w2 b2` f32 (the float layers), `bn1_w bn1_b bn1_mean bn1_var` and `bn2_*` f32,
  `lr` f64, `x_shape` i64, `x` f32 and `gy` f32 (three steps stacked), `y` f32 (the three
  training outputs), `final_w1 final_w2 final_bn1_mean final_bn2_var` f32 (after training),
  `xe` f32 (the eval input, shape `x_shape`), `yq` f32 (the converted model's output) and
  `out_scale` f64 / `out_zp` i64 (the quantized output's qparams).
"""

from __future__ import annotations

import warnings

import numpy as np

from golden_io import GoldenFile, f32, f64, i64
from torch_env import setup_torch

TOPIC = "qat_flow"
OUT_DIR = "crates/qflow/tests/data/qat_flow"


def generate(out_dir: str) -> list[tuple[str, int]]:
    """Write the golden file into out_dir; returns [(path, case_count)]."""
    import os

    torch = setup_torch()
    warnings.filterwarnings("ignore")
    nn = torch.nn
    tq = torch.ao.quantization
    import torch.ao.nn.intrinsic as nni

    os.makedirs(out_dir, exist_ok=True)
    gf = GoldenFile(TOPIC, "double_fake_quant", "fake-quant state after three QAT forwards of Sequential-based fused modules")
    rng = np.random.default_rng(71)
    quarter = lambda shape, lo, hi: (rng.integers(lo * 4, hi * 4 + 1, shape) / 4.0).astype(np.float32)
    conv_w = quarter((3, 2, 3), -1, 1)
    conv_b = quarter((3,), -1, 1)
    # batches with shrinking ranges: a fake-quant output inside the running range is not clamped,
    # so a second application moves the range again (a growing one would be clamped to it)
    conv_x = np.stack([quarter((4, 2, 8), -2, 2) * (3 - k) for k in range(3)])
    bn_x = np.stack([(rng.normal(0.2, 1.0, (2, 3, 4, 4)) * (3 - k)).astype(np.float32) for k in range(3)])
    for version in (0, 1):
        for name in ("conv_relu1d", "bn_relu2d"):
            if name == "conv_relu1d":
                conv = nn.Conv1d(2, 3, 3)
                with torch.no_grad():
                    conv.weight.copy_(torch.from_numpy(conv_w))
                    conv.bias.copy_(torch.from_numpy(conv_b))
                fused, xs = nni.ConvReLU1d(conv, nn.ReLU()), conv_x
            else:
                fused, xs = nni.BNReLU2d(nn.BatchNorm2d(3), nn.ReLU()), bn_x
            model = nn.Sequential(tq.QuantStub(), fused, tq.DeQuantStub()).train()
            model.qconfig = tq.get_default_qat_qconfig("fbgemm", version)
            model = tq.prepare_qat(model)
            for x in xs:
                y = model(torch.from_numpy(x))
            fq = model[1].activation_post_process
            fq_in = model[0].activation_post_process
            fields = {}
            if name == "conv_relu1d":
                fields.update({"weight": f32(conv_w), "bias": f32(conv_b)})
            fields.update({
                "x_shape": i64(list(xs.shape[1:])), "x": f32(xs),
                "in_scale": f32(fq_in.scale.detach().numpy()), "in_zp": i64(fq_in.zero_point.numpy()),
                "scale": f32(fq.scale.detach().numpy()), "zp": i64(fq.zero_point.numpy()),
                "min_val": f32(fq.activation_post_process.min_val.detach().numpy().reshape(-1)),
                "max_val": f32(fq.activation_post_process.max_val.detach().numpy().reshape(-1)),
                "y": f32(y.detach().numpy()),
            })
            gf.case(f"{name}_v{version}", fields)
    return [(gf.write(out_dir), gf.case_count), bn_flow(torch, out_dir)]


def bn_flow(torch, out_dir):
    """`bn_flow.golden` (see the module docs)."""
    nn = torch.nn
    tq = torch.ao.quantization
    gf = GoldenFile(TOPIC, "bn_flow", "QAT Conv1d/Linear+BN1d: fuse_modules_qat, prepare_qat, SGD, convert")
    rng = np.random.default_rng(72)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    lr = 0.05
    for name in ("conv1d", "linear"):
        if name == "conv1d":
            l1, l2 = nn.Conv1d(3, 4, 3, padding=1), nn.Conv1d(4, 3, 3)
            bn1, bn2 = nn.BatchNorm1d(4), nn.BatchNorm1d(3)
            x_shape = (4, 3, 8)
            groups = [["1", "2", "3"], ["4", "5"]]
        else:
            l1, l2 = nn.Linear(6, 5), nn.Linear(5, 4)
            bn1, bn2 = nn.BatchNorm1d(5), nn.BatchNorm1d(4)
            x_shape = (8, 6)
            groups = [["1", "2"], ["4", "5"]]
        init = {}
        with torch.no_grad():
            for key, m in (("1", l1), ("2", l2)):
                m.weight.copy_(t(rng.uniform(-0.6, 0.6, m.weight.shape)))
                m.bias.copy_(t(rng.uniform(-0.2, 0.2, m.bias.shape)))
                init[f"w{key}"] = f32(m.weight.detach().numpy().copy())
                init[f"b{key}"] = f32(m.bias.detach().numpy().copy())
            for key, bn in (("1", bn1), ("2", bn2)):
                c = bn.num_features
                bn.weight.copy_(t(rng.uniform(0.5, 1.5, c)))
                bn.bias.copy_(t(rng.uniform(-0.3, 0.3, c)))
                bn.running_mean.copy_(t(rng.uniform(-0.2, 0.2, c)))
                bn.running_var.copy_(t(rng.uniform(0.5, 2.0, c)))
                for field, v in (("w", bn.weight), ("b", bn.bias), ("mean", bn.running_mean), ("var", bn.running_var)):
                    init[f"bn{key}_{field}"] = f32(v.detach().numpy().copy())
        xs = [rng.uniform(-2, 2, x_shape).astype(np.float32) for _ in range(3)]
        xe = rng.uniform(-2, 2, x_shape).astype(np.float32)
        for version in (0, 1):
            model = nn.Sequential(tq.QuantStub(), l1, bn1, nn.ReLU(), l2, bn2, tq.DeQuantStub())
            model = __import__("copy").deepcopy(model).train()
            model = tq.fuse_modules_qat(model, groups)
            model.qconfig = tq.get_default_qat_qconfig("fbgemm", version)
            model = tq.prepare_qat(model)
            ys, gys = [], []
            for x in xs:
                y = model(t(x))
                gy = t(rng.uniform(-1, 1, y.shape))
                model.zero_grad()
                (y * gy).sum().backward()
                with torch.no_grad():
                    for p in model.parameters():
                        if p.grad is not None:
                            p.add_(p.grad, alpha=-lr)
                ys.append(y.detach().numpy().reshape(-1).copy())
                gys.append(gy.numpy().reshape(-1).copy())
            final = {
                "final_w1": f32(model[1].weight.detach().numpy().copy()),
                "final_w2": f32(model[4].weight.detach().numpy().copy()),
                "final_bn1_mean": f32(model[1].bn.running_mean.detach().numpy().copy()),
                "final_bn2_var": f32(model[4].bn.running_var.detach().numpy().copy()),
            }
            model.eval()
            q = tq.convert(model)
            out_q = q[:-1](t(xe))
            fields = dict(init)
            fields.update({
                "lr": f64([lr]),
                "x_shape": i64(list(x_shape)),
                "x": f32(np.stack(xs)),
                "gy": f32(np.concatenate(gys)),
                "y": f32(np.concatenate(ys)),
            })
            fields.update(final)
            fields.update({
                "xe": f32(xe),
                "yq": f32(out_q.dequantize().numpy()),
                "out_scale": f64([out_q.q_scale()]),
                "out_zp": i64([out_q.q_zero_point()]),
            })
            gf.case(f"{name}_v{version}", fields)
    return (gf.write(out_dir), gf.case_count)
