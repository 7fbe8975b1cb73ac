"""Golden vectors for the int8 GEMM of crates/qkernels (issue 3): quantized Linear.

Families (one `<family>.golden` each, in crates/qkernels/tests/data/linear):

* `linear_static`  -- torch.ops.quantized.linear / linear_relu with prepacked fbgemm weights,
  per-tensor (affine, zero point may be nonzero) and per-channel qint8 weights, with and
  without a float bias, shapes with every kind of tail.
* `linear_dynamic` -- torch.ops.quantized.linear_dynamic / linear_relu_dynamic with
  reduce_range=True (what nnqd.Linear passes), f32 in and out.

Fields (the contract with crates/qkernels/tests/gemm_golden.rs):
  shape i64[3] = (M, K, N); w u8[N*K] (qint8 int repr as two's-complement bytes, N x K
  row-major);
  per_channel str yes|no; w_scales f64[C]; w_zps i64[C] (C = N or 1);
  has_bias str yes|no; bias f32[N or 0]; relu str yes|no;
  static:  x_q u8[M*K]; x_scale f64[1]; x_zp i64[1]; out_scale f64[1]; out_zp i64[1]; y u8[M*N]
  dynamic: x f32[M*K]; y f32[M*N]
"""

from __future__ import annotations

import numpy as np

from golden_io import GoldenFile, f32, f64, i64, u8
from torch_env import setup_torch

TOPIC = "linear"
OUT_DIR = "crates/qkernels/tests/data/linear"
# Generated on an AVX-512 VNNI CPU: without VNNI fbgemm saturates int16 pairs (full-range
# activations here) and float kernels sum in another order, so the files differ there.
CPU = "avx512-vnni"

torch = None  # set by generate()

# (M, K, N): single elements, tails of every register tile (1..8 rows, 8/16/48-column panels,
# K not a multiple of 2 or 4), and a few larger ones.
SHAPES = [
    (1, 1, 1),
    (1, 7, 3),
    (2, 5, 17),
    (3, 33, 19),
    (5, 64, 40),
    (8, 100, 48),
    (9, 129, 50),
    (13, 31, 97),
    (1, 300, 129),
    (17, 256, 65),
    (33, 77, 33),
]


def _weights(rng, n, k, per_channel, symmetric):
    w = torch.from_numpy(rng.standard_normal((n, k)).astype(np.float32) * 0.3)
    if per_channel:
        scales = torch.from_numpy((rng.uniform(0.3, 1.5, n) * float(w.abs().max()) / 127).astype(np.float64))
        zps = torch.zeros(n, dtype=torch.int64) if symmetric else torch.from_numpy(rng.integers(-20, 21, n))
        qw = torch.quantize_per_channel(w, scales, zps, 0, torch.qint8)
        return qw, scales.numpy(), zps.numpy()
    scale = float(w.abs().max()) / 110
    zp = 0 if symmetric else int(rng.integers(-15, 16))
    qw = torch.quantize_per_tensor(w, scale, zp, torch.qint8)
    return qw, np.array([scale]), np.array([zp])


def _common(qw, shape, per_channel, w_scales, w_zps, bias, relu):
    return {
        "shape": i64(list(shape)),
        "w": u8(qw.int_repr().reshape(-1).numpy().view(np.uint8)),
        "per_channel": "yes" if per_channel else "no",
        "w_scales": f64(w_scales),
        "w_zps": i64(w_zps),
        "has_bias": "yes" if bias is not None else "no",
        "bias": f32(bias.numpy() if bias is not None else np.zeros(0, np.float32)),
        "relu": "yes" if relu else "no",
    }


def _variants():
    for si, shape in enumerate(SHAPES):
        for per_channel in (False, True):
            for has_bias in (False, True):
                relu = (si + per_channel + has_bias) % 2 == 1
                symmetric = si % 3 == 0
                yield si, shape, per_channel, has_bias, relu, symmetric


def static_family() -> GoldenFile:
    gf = GoldenFile(TOPIC, "linear_static", "torch.ops.quantized.linear(_relu), fbgemm prepacked qint8 weights")
    rng = np.random.default_rng(31)
    for si, (m, k, n), per_channel, has_bias, relu, symmetric in _variants():
        qw, w_scales, w_zps = _weights(rng, n, k, per_channel, symmetric)
        bias = torch.from_numpy(rng.standard_normal(n).astype(np.float32) * 2.0) if has_bias else None
        x = torch.from_numpy(rng.standard_normal((m, k)).astype(np.float32) * 1.5 + 0.3)
        x_scale = float(rng.uniform(0.01, 0.05))
        x_zp = int(rng.integers(0, 256))
        qx = torch.quantize_per_tensor(x, x_scale, x_zp, torch.quint8)
        packed = torch.ops.quantized.linear_prepack(qw, bias)
        # output range roughly matching the float result, so outputs are not all clamped
        ref = torch.nn.functional.linear(qx.dequantize(), qw.dequantize(), bias)
        span = float(ref.max() - ref.min()) + 1e-3
        out_scale = span / 200.0 * float(rng.uniform(0.5, 1.2))
        out_zp = int(rng.integers(20, 236))
        op = torch.ops.quantized.linear_relu if relu else torch.ops.quantized.linear
        y = op(qx, packed, out_scale, out_zp)
        fields = _common(qw, (m, k, n), per_channel, w_scales, w_zps, bias, relu)
        fields.update({
            "x_q": u8(qx.int_repr().reshape(-1)),
            "x_scale": f64([x_scale]),
            "x_zp": i64([x_zp]),
            "out_scale": f64([out_scale]),
            "out_zp": i64([out_zp]),
            "y": u8(y.int_repr().reshape(-1)),
        })
        name = f"s{si}_{m}x{k}x{n}_{'pc' if per_channel else 'pt'}_{'b' if has_bias else 'nb'}{'_relu' if relu else ''}"
        gf.case(name, fields)
    return gf


def dynamic_family() -> GoldenFile:
    gf = GoldenFile(TOPIC, "linear_dynamic", "torch.ops.quantized.linear(_relu)_dynamic, reduce_range=True, fbgemm")
    rng = np.random.default_rng(47)
    for si, (m, k, n), per_channel, has_bias, relu, symmetric in _variants():
        qw, w_scales, w_zps = _weights(rng, n, k, per_channel, symmetric)
        bias = torch.from_numpy(rng.standard_normal(n).astype(np.float32)) if has_bias else None
        x = torch.from_numpy(rng.standard_normal((m, k)).astype(np.float32) * float(rng.uniform(0.2, 3.0)) + 0.1)
        packed = torch.ops.quantized.linear_prepack(qw, bias)
        op = torch.ops.quantized.linear_relu_dynamic if relu else torch.ops.quantized.linear_dynamic
        y = op(x, packed, True)
        fields = _common(qw, (m, k, n), per_channel, w_scales, w_zps, bias, relu)
        fields.update({"x": f32(x.reshape(-1)), "y": f32(y.reshape(-1))})
        name = f"d{si}_{m}x{k}x{n}_{'pc' if per_channel else 'pt'}_{'b' if has_bias else 'nb'}{'_relu' if relu else ''}"
        gf.case(name, fields)
    return gf


def generate(out_dir: str) -> list[tuple[str, int]]:
    """Write the linear golden files into out_dir; returns [(path, case_count)]."""
    global torch
    torch = setup_torch()
    written = []
    for family in (static_family, dynamic_family):
        gf = family()
        written.append((gf.write(out_dir), gf.case_count))
    return written
