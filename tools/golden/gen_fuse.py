"""Golden vectors for the eval-mode BatchNorm folding of crates/qnn/src/fused (issue 7).

One family, `fold` (crates/qnn/tests/data/fuse/fold.golden): torch.nn.utils.fusion's
fuse_conv_bn_eval (Conv1d+BatchNorm1d, Conv2d+BatchNorm2d) and fuse_linear_bn_eval
(Linear+BatchNorm1d, including bn.num_features == 1), with and without conv/linear bias and
with non-affine batch norms (conv only: PyTorch's linear path needs an affine bn).

Fields (the contract with crates/qnn/tests/fused_fold.rs):
  layer str conv1d|conv2d|linear; w_shape i64[*]; w f32; has_bias str yes|no; b f32;
  num_features i64[1]; affine str yes|no; gamma f32; beta f32; running_mean f32;
  running_var f32; eps f32[1];
  fused_w f32 (shape w_shape); fused_b f32[out]
The running statistics come from a few training batches, so they are not round numbers.
"""

from __future__ import annotations

import numpy as np

from golden_io import GoldenFile, f32, i64

TOPIC = "fuse"
OUT_DIR = "crates/qnn/tests/data/fuse"

torch = None  # set by generate()

# (layer, w_shape, has_bias, affine, num_features or None for "out channels", eps)
CASES = [
    ("conv2d", (4, 3, 3, 3), True, True, None, 1e-5),
    ("conv2d", (6, 2, 1, 1), False, True, None, 1e-5),
    ("conv2d", (5, 1, 3, 2), True, False, None, 1e-3),
    ("conv2d", (8, 4, 5, 5), True, True, None, 0.1),
    ("conv1d", (4, 3, 3), True, True, None, 1e-5),
    ("conv1d", (3, 5, 1), False, False, None, 1e-5),
    ("linear", (7, 5), True, True, None, 1e-5),
    ("linear", (4, 9), False, True, None, 1e-4),
    ("linear", (3, 6), True, True, 1, 1e-5),
]


def _modules(layer, w_shape, has_bias, affine, nf, eps):
    out = w_shape[0]
    nf = out if nf is None else nf
    if layer == "conv2d":
        m = torch.nn.Conv2d(w_shape[1], out, tuple(w_shape[2:]), bias=has_bias)
        bn = torch.nn.BatchNorm2d(nf, eps=eps, affine=affine)
        batch = (6, w_shape[1], 7, 6)
    elif layer == "conv1d":
        m = torch.nn.Conv1d(w_shape[1], out, w_shape[2], bias=has_bias)
        bn = torch.nn.BatchNorm1d(nf, eps=eps, affine=affine)
        batch = (6, w_shape[1], 9)
    else:
        m = torch.nn.Linear(w_shape[1], out, bias=has_bias)
        bn = torch.nn.BatchNorm1d(nf, eps=eps, affine=affine)
        batch = (10, w_shape[1])
    return m, bn, batch


def fold_family():
    gf = GoldenFile(TOPIC, "fold", "torch.nn.utils.fusion fuse_conv_bn_eval / fuse_linear_bn_eval")
    rng = np.random.default_rng(7)
    for idx, (layer, w_shape, has_bias, affine, nf, eps) in enumerate(CASES):
        m, bn, batch = _modules(layer, w_shape, has_bias, affine, nf, eps)
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(rng.standard_normal(w_shape).astype(np.float32) * 0.4))
            if has_bias:
                m.bias.copy_(torch.from_numpy(rng.standard_normal(w_shape[0]).astype(np.float32) * 0.2))
            if affine:
                c = bn.num_features
                bn.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, c).astype(np.float32)))
                bn.bias.copy_(torch.from_numpy(rng.standard_normal(c).astype(np.float32) * 0.3))
            # Running statistics from real batches (train mode), then eval.
            for _ in range(3):
                x = torch.from_numpy(rng.standard_normal(batch).astype(np.float32) * 1.7 + 0.4)
                y = m(x)
                if layer == "linear" and bn.num_features == 1:
                    y = y.reshape(-1, 1)
                bn(y)
        m.eval()
        bn.eval()
        if layer == "linear":
            fused = torch.nn.utils.fusion.fuse_linear_bn_eval(m, bn)
        else:
            fused = torch.nn.utils.fusion.fuse_conv_bn_eval(m, bn)
        c = bn.num_features
        gf.case(
            f"{layer}_{idx}",
            {
                "layer": layer,
                "w_shape": i64(list(w_shape)),
                "w": f32(m.weight.detach().numpy()),
                "has_bias": "yes" if has_bias else "no",
                "b": f32(m.bias.detach().numpy() if has_bias else np.zeros(0, np.float32)),
                "num_features": i64([c]),
                "affine": "yes" if affine else "no",
                "gamma": f32(bn.weight.detach().numpy() if affine else np.zeros(0, np.float32)),
                "beta": f32(bn.bias.detach().numpy() if affine else np.zeros(0, np.float32)),
                "running_mean": f32(bn.running_mean.numpy()),
                "running_var": f32(bn.running_var.numpy()),
                "eps": f32([np.float32(eps)]),
                "fused_w": f32(fused.weight.detach().numpy()),
                "fused_b": f32(fused.bias.detach().numpy()),
            },
        )
    return gf


def generate(out_dir: str) -> list[tuple[str, int]]:
    """Write the fuse golden files into out_dir; returns [(path, case_count)]."""
    global torch
    from torch_env import setup_torch

    torch = setup_torch()
    gf = fold_family()
    return [(gf.write(out_dir), gf.case_count)]
