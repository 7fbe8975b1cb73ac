"""Golden vectors for the numerical edge cases of issue 9 (topic `edge`).

Families (one `<family>.golden` each, in crates/qtensor/tests/data/edge):

* `quantize_extreme_scales` -- torch.quantize_per_tensor with scales at the f32 limits
  (f32::MIN_POSITIVE, the smallest subnormal, a mid subnormal, 1e-30, 3e38, f32::MAX) and zero
  points at both ends of each dtype's range, on special inputs (±0, subnormals, ±f32::MAX,
  ±inf, NaN, values near the rounding thresholds); then dequantize.
* `empty` -- zero-size tensors: quantize_per_tensor, quantize_per_channel, dequantize,
  fake_quantize_per_tensor_affine, quantize_per_tensor_dynamic (torch raises).
* `observers` -- per-tensor observers (MinMax affine quint8 / symmetric qint8, MovingAverage,
  Histogram) and PerChannelMinMax fed a single element, all zeros, -0.0, a subnormal,
  ±f32::MAX, a constant f32::MIN_POSITIVE tensor, or only an empty tensor.

Fields (the contract with crates/qtensor/tests/edge_golden.rs):
  quantize_extreme_scales: dtype str; x f32; scale f64[1]; zero_point i64[1];
      int_values i64; dequant f32
  empty: op str; dtype str; shape i64; raises u8[1]; out_shape i64 (empty when raises)
  observers: kind str; shape i64; x f32; scale f32 (one per channel); zero_point i64;
      min f32; max f32 (per-tensor kinds: the buffers after the call)
"""

from __future__ import annotations

import math

import numpy as np

from golden_io import GoldenFile, f32, f64, i64, u8
from torch_env import setup_torch

TOPIC = "edge"
OUT_DIR = "crates/qtensor/tests/data/edge"

torch = None  # set by generate()

F32_MAX = float(np.finfo(np.float32).max)
F32_MIN_POSITIVE = float(np.finfo(np.float32).tiny)
SMALLEST_SUBNORMAL = 1.401298464324817e-45

SCALES = [
    ("min_positive", F32_MIN_POSITIVE),
    ("smallest_subnormal", SMALLEST_SUBNORMAL),
    ("subnormal", float(np.float32(5e-39))),
    ("1e-30", 1e-30),
    ("3e38", 3e38),
    ("f32_max", F32_MAX),
]

SPECIALS = [
    0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, -2.5,
    SMALLEST_SUBNORMAL, -SMALLEST_SUBNORMAL, F32_MIN_POSITIVE, -F32_MIN_POSITIVE,
    float(np.float32(5e-39)), 1e-30, -1e-30, 1.5e-30, 1e30, -1e30,
    3e38, -3e38, F32_MAX, -F32_MAX, math.inf, -math.inf, math.nan,
]

ZERO_POINTS = {
    "quint8": [0, 255],
    "qint8": [-128, 127],
    "qint32": [-(2**31), 2**31 - 1],
}


def _dtype(name: str):
    return {"quint8": torch.quint8, "qint8": torch.qint8, "qint32": torch.qint32}[name]


def gen_quantize_extreme_scales(out_dir: str) -> GoldenFile:
    gf = GoldenFile(TOPIC, "quantize_extreme_scales",
                    "torch.quantize_per_tensor at scales near the f32 limits, zero points at the range ends")
    x = np.array(SPECIALS, dtype=np.float32)
    for dtype, zps in ZERO_POINTS.items():
        for sname, scale in SCALES:
            for zp in zps:
                q = torch.quantize_per_tensor(torch.from_numpy(x.copy()), scale, zp, _dtype(dtype))
                gf.case(f"{dtype}_s{sname}_zp{zp}", {
                    "dtype": dtype,
                    "x": f32(x),
                    "scale": f64([scale]),
                    "zero_point": i64([zp]),
                    "int_values": i64(q.int_repr().to(torch.int64)),
                    "dequant": f32(q.dequantize()),
                })
    return gf


def _raises(fn):
    try:
        return False, fn()
    except RuntimeError:
        return True, None


def gen_empty(out_dir: str) -> GoldenFile:
    gf = GoldenFile(TOPIC, "empty", "zero-size tensors through quantize / dequantize / fake quant")
    shapes = [[0], [2, 0, 3], [0, 4]]
    for dtype in ("quint8", "qint8", "qint32"):
        for shape in shapes:
            x = torch.zeros(shape, dtype=torch.float32)
            name = "x".join(str(d) for d in shape)
            ops = {
                "quantize_per_tensor": lambda: torch.quantize_per_tensor(x, 0.1, 0, _dtype(dtype)),
                "dequantize": lambda: torch.quantize_per_tensor(x, 0.1, 0, _dtype(dtype)).dequantize(),
            }
            if dtype != "qint32":
                ops["quantize_per_tensor_dynamic"] = lambda: torch.quantize_per_tensor_dynamic(
                    x, _dtype(dtype), False)
                # per channel along the last axis (its length may be 0)
                c = shape[-1]
                ops["quantize_per_channel"] = lambda: torch.quantize_per_channel(
                    x, torch.full([c], 0.1, dtype=torch.float64),
                    torch.zeros([c], dtype=torch.int64), len(shape) - 1, _dtype(dtype))
                lo, hi = (0, 255) if dtype == "quint8" else (-128, 127)
                ops["fake_quantize_per_tensor_affine"] = lambda: torch.fake_quantize_per_tensor_affine(
                    x, 0.1, 0, lo, hi)
            for op, fn in ops.items():
                raises, out = _raises(fn)
                gf.case(f"{op}_{dtype}_{name}", {
                    "op": op,
                    "dtype": dtype,
                    "shape": i64(shape),
                    "raises": u8([int(raises)]),
                    "out_shape": i64([] if raises else list(out.shape)),
                })
    return gf


OBSERVER_INPUTS = [
    ("single", [2.5]),
    ("single_negative", [-3.0]),
    ("zero", [0.0]),
    ("negative_zero", [-0.0]),
    ("all_zeros", [0.0] * 6),
    ("smallest_subnormal", [SMALLEST_SUBNORMAL]),
    ("f32_max", [F32_MAX]),
    ("minus_f32_max", [-F32_MAX]),
    ("constant_min_positive", [F32_MIN_POSITIVE] * 4),
    ("constant", [1.5] * 5),
    ("empty_only", []),
]


def _observer(kind: str):
    obs = torch.ao.quantization.observer
    if kind == "minmax":
        return obs.MinMaxObserver()
    if kind == "minmax_symmetric_qint8":
        return obs.MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    if kind == "moving_average":
        return obs.MovingAverageMinMaxObserver()
    if kind == "histogram":
        return obs.HistogramObserver()
    if kind == "per_channel":
        return obs.PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8,
                                            qscheme=torch.per_channel_symmetric)
    raise ValueError(kind)


def gen_observers(out_dir: str) -> GoldenFile:
    gf = GoldenFile(TOPIC, "observers",
                    "observers fed a single element, zeros, subnormals, +-f32::MAX, constants, empty")
    for kind in ("minmax", "minmax_symmetric_qint8", "moving_average", "histogram", "per_channel"):
        for name, values in OBSERVER_INPUTS:
            x = np.array(values, dtype=np.float32)
            if kind == "per_channel":
                if x.size == 0:
                    continue
                x = x.reshape(x.size, 1)  # one channel per element
            o = _observer(kind)
            o(torch.from_numpy(x.copy()))
            scale, zp = o.calculate_qparams()
            fields = {
                "kind": kind,
                "shape": i64(list(x.shape)),
                "x": f32(x),
                "scale": f32(scale.reshape(-1)),
                "zero_point": i64(zp.reshape(-1).to(torch.int64)),
            }
            if kind != "per_channel":
                fields["min"] = f32([float(o.min_val)])
                fields["max"] = f32([float(o.max_val)])
            gf.case(f"{kind}_{name}", fields)
    return gf


FAMILIES = [gen_quantize_extreme_scales, gen_empty, gen_observers]


def generate(out_dir: str) -> list[tuple[str, int]]:
    """Write every edge golden file into out_dir; returns [(path, case_count)]."""
    global torch
    torch = setup_torch()
    written = []
    for family in FAMILIES:
        gf = family(out_dir)
        written.append((gf.write(out_dir), gf.case_count))
    return written
