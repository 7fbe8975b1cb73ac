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
"""

from __future__ import annotations

import warnings

import numpy as np

from golden_io import GoldenFile, f32, i64
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
    return [(gf.write(out_dir), gf.case_count)]
