"""Golden vectors for fbgemm's int8 Linear on an x86 CPU **without VNNI** (AVX2 only).

There fbgemm multiplies u8 activations by s8 weights with `vpmaddubsw`, which adds the
products of each pair of depth indices `(2j, 2j+1)` with int16 saturation. qstack's opt-in
`KernelKind::Avx2Saturating` family and its oracle (`Accumulation::PairSaturating16`) claim
to reproduce that bit for bit; this topic checks the claim against the real library.
Activations use the full 0..255 range and weights near ±127 so that many pairs saturate.
Generated only on such a CPU (`CPU = "avx2"`; `generate.py` skips the topic elsewhere).

Family `linear_static_avx2` (crates/qkernels/tests/data/linear_avx2), the fields of
gen_linear.py's `linear_static`. The output scale comes from a float64 numpy product rounded
to six significant digits, so it does not depend on the CPU's float summation order.
"""

from __future__ import annotations

import numpy as np

from golden_io import GoldenFile, f32, f64, i64, u8
from torch_env import setup_torch

TOPIC = "linear_avx2"
OUT_DIR = "crates/qkernels/tests/data/linear_avx2"
CPU = "avx2"

torch = None  # set by generate()

# (M, K, N): odd depths (a pair with the zero padding), register-tile tails, a longer K.
SHAPES = [
    (1, 2, 1),
    (1, 7, 3),
    (2, 16, 17),
    (3, 33, 19),
    (5, 64, 40),
    (8, 101, 48),
    (9, 128, 50),
    (1, 300, 40),
    (17, 200, 33),
]


def _weights(rng, n, k, per_channel):
    # heavy-tailed so that many weights are near ±127 after quantization
    w = rng.standard_t(3, (n, k)).astype(np.float32)
    w = torch.from_numpy(w)
    if per_channel:
        amax = w.abs().amax(dim=1).double().numpy()
        scales = torch.from_numpy(amax / 127.0 + 1e-6)
        zps = torch.from_numpy(rng.integers(-3, 4, n))
        return torch.quantize_per_channel(w, scales, zps, 0, torch.qint8), scales.numpy(), zps.numpy()
    scale = float(w.abs().max()) / 127.0
    zp = int(rng.integers(-3, 4))
    return torch.quantize_per_tensor(w, scale, zp, torch.qint8), np.array([scale]), np.array([zp])


def _sig6(v: float) -> float:
    return float(f"{v:.6g}")


def static_family() -> GoldenFile:
    gf = GoldenFile(TOPIC, "linear_static_avx2",
                    "torch.ops.quantized.linear(_relu), fbgemm on x86 without VNNI (vpmaddubsw pairs saturate), full-range activations")
    rng = np.random.default_rng(2026)
    for si, (m, k, n) in enumerate(SHAPES):
        for per_channel in (False, True):
            has_bias = (si + per_channel) % 3 != 0
            relu = (si + per_channel) % 2 == 1
            qw, w_scales, w_zps = _weights(rng, n, k, per_channel)
            bias = torch.from_numpy(rng.standard_normal(n).astype(np.float32) * 2.0) if has_bias else None
            x_scale = _sig6(float(rng.uniform(0.01, 0.05)))
            x_zp = int(rng.integers(0, 40))
            # bytes spread over the whole 0..255 range, many of them high
            x_q = rng.integers(0, 256, (m, k)).astype(np.uint8)
            x_q[rng.random((m, k)) < 0.4] = 255
            x_deq = (x_q.astype(np.float64) - x_zp) * x_scale
            qx = torch._make_per_tensor_quantized_tensor(torch.from_numpy(x_q), x_scale, x_zp)
            packed = torch.ops.quantized.linear_prepack(qw, bias)
            w_deq = qw.dequantize().double().numpy()
            ref = x_deq @ w_deq.T + (bias.double().numpy() if bias is not None else 0.0)
            span = float(ref.max() - ref.min()) + 1e-3
            out_scale = _sig6(span / 200.0 * float(rng.uniform(0.5, 1.2)))
            out_zp = int(rng.integers(20, 236))
            op = torch.ops.quantized.linear_relu if relu else torch.ops.quantized.linear
            y = op(qx, packed, out_scale, out_zp)
            fields = {
                "shape": i64([m, k, n]),
                "w": u8(qw.int_repr().reshape(-1).numpy().view(np.uint8)),
                "per_channel": "yes" if per_channel else "no",
                "w_scales": f64(w_scales),
                "w_zps": i64(w_zps),
                "has_bias": "yes" if has_bias else "no",
                "bias": f32(bias.numpy() if bias is not None else np.zeros(0, np.float32)),
                "relu": "yes" if relu else "no",
                "x_q": u8(x_q.reshape(-1)),
                "x_scale": f64([x_scale]),
                "x_zp": i64([x_zp]),
                "out_scale": f64([out_scale]),
                "out_zp": i64([out_zp]),
                "y": u8(y.int_repr().reshape(-1)),
            }
            name = f"a{si}_{m}x{k}x{n}_{'pc' if per_channel else 'pt'}_{'b' if has_bias else 'nb'}{'_relu' if relu else ''}"
            gf.case(name, fields)
    return gf


def generate(out_dir: str) -> list[tuple[str, int]]:
    """Write the AVX2 (non-VNNI) linear golden file into out_dir; returns [(path, case_count)]."""
    global torch
    torch = setup_torch()
    gf = static_family()
    return [(gf.write(out_dir), gf.case_count)]
