"""Golden vectors for crates/qtensor (issue 2 section 3).

Each family below writes one `<family>.golden` file into the topic's output directory
(crates/qtensor/tests/data). The Rust side is crates/qtensor/tests/golden.rs; the field names
written here are the contract with that test.
"""

from __future__ import annotations

import math

import numpy as np

from golden_io import GoldenFile, f32, f64, i32, i64, u8, u16
from torch_env import setup_torch

TOPIC = "qtensor"
OUT_DIR = "crates/qtensor/tests/data"

torch = None  # set by generate()

F32_MAX = float(np.finfo(np.float32).max)

# Scales for the per-tensor sweep: exact reciprocals, inexact reciprocals, the FBGEMM example,
# tiny (down to subnormal f32) and huge.
PER_TENSOR_SCALES = [
    1.0,
    0.5,
    0.25,
    0.1,
    1.0 / 3.0,
    0.00214854861,
    0.003,
    7.0,
    1e-10,
    1e-38,
    1.2e-38,
    1e-40,
    1e10,
    1e30,
]

SPECIALS = [
    math.nan,
    math.inf,
    -math.inf,
    0.0,
    -0.0,
    1.401298464324817e-45,
    -1.401298464324817e-45,
    1.1754943508222875e-38,
    F32_MAX,
    -F32_MAX,
    1e30,
    -1e30,
    2147483520.0,
    2147483648.0,
    -2147483648.0,
    -2147483904.0,
    16777217.0,
]


def _dtype(name: str):
    return {
        "quint8": torch.quint8,
        "qint8": torch.qint8,
        "qint32": torch.qint32,
        "quint4x2": torch.quint4x2,
    }[name]


QRANGE = {
    "quint8": (0, 255),
    "qint8": (-128, 127),
    "qint32": (-(2**31), 2**31 - 1),
    "quint4x2": (0, 15),
}


def _f32(v) -> np.float32:
    with np.errstate(over="ignore"):
        return np.float32(v)


def _halfway_values(scale: float, ks) -> list[float]:
    """x values near (k + 0.5) * scale, including ones where f32(x * inv) == k + 0.5 exactly."""
    s = _f32(scale)
    with np.errstate(over="ignore", divide="ignore"):
        inv = np.float32(1.0) / s
    out: list[float] = []
    for k in ks:
        target = np.float32(k + 0.5)
        x0 = _f32((k + 0.5) * float(s))
        if not np.isfinite(x0) or x0 == 0:
            continue
        out.append(float(x0))
        # search a few ulps around x0 for an exact f32 halfway product
        found = None
        x = x0
        down = x0
        for _ in range(64):
            with np.errstate(over="ignore", under="ignore"):
                if x * inv == target:
                    found = x
                    break
                if down * inv == target:
                    found = down
                    break
            x = np.nextafter(x, np.float32(np.inf), dtype=np.float32)
            down = np.nextafter(down, np.float32(-np.inf), dtype=np.float32)
        if found is not None and found != x0:
            out.append(float(found))
        if found is not None:
            out.append(float(np.nextafter(found, np.float32(np.inf), dtype=np.float32)))
            out.append(float(np.nextafter(found, np.float32(-np.inf), dtype=np.float32)))
    return out


def _qint_ks(dtype: str, zp: int, rng) -> list[int]:
    qmin, qmax = QRANGE[dtype]
    lo, hi = qmin - zp, qmax - zp
    if dtype == "qint32":
        ks = [-3, -2, -1, 0, 1, 2, 100, -100, 2**20 + 3, -(2**20) - 3]
        return [k for k in ks if lo - 2 <= k <= hi + 1]
    ks = {lo - 2, lo - 1, lo, hi - 1, hi, hi + 1, 0, -1, 1, 2}
    ks.update(int(k) for k in rng.integers(lo - 2, hi + 2, size=8))
    return sorted(ks)


def _per_tensor_x(dtype: str, scale: float, zp: int, rng) -> np.ndarray:
    qmin, qmax = QRANGE[dtype]
    vals = list(SPECIALS)
    vals += _halfway_values(scale, _qint_ks(dtype, zp, rng))
    # values just outside and far outside the range
    for k in (qmin - zp - 3, qmax - zp + 3, (qmin - zp) * 4 - 7, (qmax - zp) * 4 + 7):
        vals.append(float(_f32(k * scale)))
    if dtype == "qint32":
        rand = rng.uniform(-3e9, 3e9, size=24) * scale
        rand = np.concatenate([rand, rng.uniform(-1000, 1000, size=16) * scale])
    else:
        rand = rng.uniform(qmin - zp - 10, qmax - zp + 10, size=32) * scale
    with np.errstate(over="ignore"):
        arr = np.concatenate([np.array(vals, dtype=np.float64), rand]).astype(np.float32)
    return arr


def _unpack4(packed: np.ndarray, numel: int) -> np.ndarray:
    low = packed & 0x0F
    high = packed >> 4
    both = np.stack([low, high], axis=1).reshape(-1)
    return both[:numel].astype(np.int64)


def _int_values(q) -> np.ndarray:
    """Logical integer per element (4-bit values unpacked low nibble first)."""
    rep = q.int_repr()
    if q.dtype == torch.quint4x2:
        return _unpack4(rep.numpy().reshape(-1), q.numel())
    return rep.numpy().reshape(-1).astype(np.int64)


def _packed(q) -> np.ndarray:
    return q.int_repr().numpy().reshape(-1)


def _fmt(v) -> str:
    """Compact token for case names."""
    if isinstance(v, (int, np.integer)):
        return str(int(v)).replace("-", "m")
    return f"{v:g}".replace("+", "").replace("-", "m")


# --------------------------------------------------------------------------------------
# quantize_per_tensor / int_repr / dequantize
# --------------------------------------------------------------------------------------
def gen_quantize_per_tensor(out_dir: str) -> GoldenFile:
    gf = GoldenFile(TOPIC, "quantize_per_tensor",
                    "torch.quantize_per_tensor(x, scale, zp, dtype): int_values, int_repr, dequantize, accessors")
    rng = np.random.default_rng(1001)
    for dtype in ("quint8", "qint8", "qint32", "quint4x2"):
        qmin, qmax = QRANGE[dtype]
        zps = sorted({qmin, qmax, (qmin + qmax) // 2 + 1 if dtype != "qint32" else 0})
        if dtype == "qint32":
            zps = [qmin, -7, 0, qmax]
        for scale in PER_TENSOR_SCALES:
            for zp in zps:
                x = _per_tensor_x(dtype, scale, zp, rng)
                if dtype == "quint4x2" and x.size % 2 == 0:
                    x = x[:-1]  # odd numel exercises the half-filled last byte
                xt = torch.from_numpy(x.copy())
                q = torch.quantize_per_tensor(xt, scale, zp, _dtype(dtype))
                fields = {
                    "dtype": dtype,
                    "shape": i64([x.size]),
                    "x": f32(x),
                    "scale": f64([scale]),
                    "zero_point": i64([zp]),
                    "int_values": i64(_int_values(q)),
                    "dequant": f32(q.dequantize()),
                    "q_scale": f64([q.q_scale()]),
                    "q_zero_point": i64([q.q_zero_point()]),
                }
                if dtype == "quint4x2":
                    fields["packed"] = u8(_packed(q))
                gf.case(f"{dtype}_s{_fmt(scale)}_zp{_fmt(zp)}", fields)
    # a multi-dimensional case per dtype
    for dtype in ("quint8", "qint8", "qint32", "quint4x2"):
        qmin, qmax = QRANGE[dtype]
        shape = [2, 3, 5]
        lo, hi = (-300.0, 300.0) if dtype != "qint32" else (-1e4, 1e4)
        x = rng.uniform(lo, hi, size=shape).astype(np.float32)
        x.reshape(-1)[[0, 7, 11]] = [np.nan, np.inf, -np.inf]
        scale, zp = 0.7, (qmin + qmax) // 2 if dtype != "qint32" else 3
        q = torch.quantize_per_tensor(torch.from_numpy(x.copy()), scale, zp, _dtype(dtype))
        fields = {
            "dtype": dtype,
            "shape": i64(shape),
            "x": f32(x),
            "scale": f64([scale]),
            "zero_point": i64([zp]),
            "int_values": i64(_int_values(q)),
            "dequant": f32(q.dequantize()),
            "q_scale": f64([q.q_scale()]),
            "q_zero_point": i64([q.q_zero_point()]),
        }
        if dtype == "quint4x2":
            fields["packed"] = u8(_packed(q))
        gf.case(f"{dtype}_3d", fields)
    return gf


# --------------------------------------------------------------------------------------
# quantize_per_channel (int zero points) and the float_qparams path
# --------------------------------------------------------------------------------------
PC_SCALE_POOL = [0.1, 0.02, 1.0 / 3.0, 0.00214854861, 1e-10, 1e10, 0.5, 1.0, 0.3, 1e-38, 2.0 / 7.0, 1e30]
PC_SHAPES = [([4, 6], [0, 1]), ([2, 3, 5], [0, 1, 2]), ([2, 3, 2, 4], [1, 3]), ([7], [0])]


def _pc_x(shape, axis, scales, zps, dtype, rng) -> np.ndarray:
    qmin, qmax = QRANGE[dtype]
    x = np.empty(shape, dtype=np.float32)
    xm = np.moveaxis(x, axis, 0)
    for c in range(shape[axis]):
        s, zp = scales[c], zps[c]
        if dtype == "qint32":
            v = rng.uniform(-3e9, 3e9, size=xm[c].shape) * s
            small = rng.uniform(-500, 500, size=xm[c].shape) * s
            v = np.where(rng.random(size=xm[c].shape) < 0.5, v, small)
        else:
            v = rng.uniform(qmin - zp - 8, qmax - zp + 8, size=xm[c].shape) * s
            # make some exact halfway products k + 0.5 in real arithmetic
            half = (np.round(v / s) + 0.5) * s
            v = np.where(rng.random(size=xm[c].shape) < 0.3, half, v)
        with np.errstate(over="ignore"):
            xm[c] = v.astype(np.float32)
    flat = x.reshape(-1)
    n = flat.size
    specials = [np.nan, np.inf, -np.inf, -0.0]
    pos = rng.choice(n, size=min(len(specials), max(1, n // 6)), replace=False)
    for p, v in zip(pos, specials):
        flat[p] = v
    return x


def gen_quantize_per_channel(out_dir: str) -> GoldenFile:
    gf = GoldenFile(TOPIC, "quantize_per_channel",
                    "torch.quantize_per_channel with f64 scales and int zero points; dequantize uses the double scale")
    rng = np.random.default_rng(1002)
    for dtype in ("quint8", "qint8", "qint32"):
        qmin, qmax = QRANGE[dtype]
        for shape, axes in PC_SHAPES:
            for axis in axes:
                c = shape[axis]
                scales = [PC_SCALE_POOL[int(i)] for i in rng.integers(0, len(PC_SCALE_POOL), size=c)]
                if dtype == "qint32":
                    zp_pool = [qmin, qmax, 0, -5, 12345]
                else:
                    zp_pool = [qmin, qmax, (qmin + qmax) // 2, qmin + 3, qmax - 17]
                zps = [zp_pool[int(i)] for i in rng.integers(0, len(zp_pool), size=c)]
                x = _pc_x(shape, axis, scales, zps, dtype, rng)
                q = torch.quantize_per_channel(
                    torch.from_numpy(x.copy()),
                    torch.tensor(scales, dtype=torch.float64),
                    torch.tensor(zps, dtype=torch.int64),
                    axis,
                    _dtype(dtype),
                )
                gf.case(f"{dtype}_{'x'.join(map(str, shape))}_axis{axis}", {
                    "dtype": dtype,
                    "shape": i64(shape),
                    "axis": i64([axis]),
                    "x": f32(x),
                    "scales": f64(scales),
                    "zero_points": i64(zps),
                    "int_values": i64(_int_values(q)),
                    "dequant": f32(q.dequantize()),
                    "q_scales": f64(q.q_per_channel_scales()),
                    "q_zero_points": i64(q.q_per_channel_zero_points()),
                    "q_axis": i64([q.q_per_channel_axis()]),
                })
    return gf


def gen_quantize_float_qparams(out_dir: str) -> GoldenFile:
    gf = GoldenFile(TOPIC, "quantize_float_qparams",
                    "torch.quantize_per_channel with f32 scales and FLOAT zero points (per_channel_affine_float_qparams)")
    rng = np.random.default_rng(1003)
    shapes = [([4, 6], [0, 1]), ([3, 5], [0, 1]), ([5, 3], [0]), ([2, 3, 5], [0, 2]), ([1, 9], [0])]
    for dtype in ("quint8", "quint4x2"):
        qmin, qmax = QRANGE[dtype]
        for shape, axes in shapes:
            for axis in axes:
                c = shape[axis]
                x = rng.normal(0.0, 2.0, size=shape).astype(np.float32)
                xm = np.moveaxis(x, axis, 0).reshape(c, -1)
                mins, maxs = xm.min(axis=1), xm.max(axis=1)
                # observer-style float qparams, then perturb some channels
                scales = ((maxs - mins) / np.float32(qmax - qmin)).astype(np.float32)
                zps = (-mins / scales).astype(np.float32)
                for ch in range(c):
                    r = rng.random()
                    if r < 0.15:
                        scales[ch] = 0.0  # inv_scale = 1 path
                    elif r < 0.3:
                        zps[ch] = np.float32(rng.uniform(-20, 300))
                    elif r < 0.4:
                        scales[ch] = np.float32(1e-10)
                    elif r < 0.5:
                        zps[ch] = np.float32(round(float(zps[ch])) + 0.5)
                flat = x.reshape(-1)
                flat[rng.choice(flat.size, size=3, replace=False)] = [np.nan, np.inf, -np.inf]
                q = torch.quantize_per_channel(
                    torch.from_numpy(x.copy()),
                    torch.from_numpy(scales.copy()),
                    torch.from_numpy(zps.copy()),
                    axis,
                    _dtype(dtype),
                )
                assert q.qscheme() == torch.per_channel_affine_float_qparams
                gf.case(f"{dtype}_{'x'.join(map(str, shape))}_axis{axis}", {
                    "dtype": dtype,
                    "shape": i64(shape),
                    "axis": i64([axis]),
                    "x": f32(x),
                    "scales": f32(scales),
                    "zero_points": f32(zps),
                    "int_values": i64(_int_values(q)),
                    "packed": u8(_packed(q)),
                    "dequant": f32(q.dequantize()),
                    "q_scales": f64(q.q_per_channel_scales().double()),
                    "q_zero_points": f64(q.q_per_channel_zero_points().double()),
                })
    return gf


# --------------------------------------------------------------------------------------
# dequantize of wrapped raw ints, and requantize
# --------------------------------------------------------------------------------------
DEQ_SCALES = [0.1, 1.0 / 3.0, 0.2, 1e-5 + 1e-13, 0.00214854861, 1e-10, 1e30, 3.0, 1e-38, 2.5]


def gen_dequantize(out_dir: str) -> GoldenFile:
    gf = GoldenFile(TOPIC, "dequantize",
                    "dequantize of torch._make_per_tensor/_make_per_channel_quantized_tensor (raw ints)")
    rng = np.random.default_rng(1004)
    storage = {"quint8": torch.uint8, "qint8": torch.int8, "qint32": torch.int32}
    for dtype in ("quint8", "qint8", "qint32"):
        qmin, qmax = QRANGE[dtype]
        for scale in DEQ_SCALES:
            zp = int(rng.integers(qmin, qmax, endpoint=True)) if dtype != "qint32" else int(rng.integers(-1000, 1000))
            n = 37
            vals = rng.integers(qmin, qmax, size=n, endpoint=True)
            vals[:2] = [qmin, qmax]
            ints = torch.from_numpy(vals).to(storage[dtype])
            q = torch._make_per_tensor_quantized_tensor(ints, scale, zp)
            gf.case(f"pt_{dtype}_s{_fmt(scale)}", {
                "kind": "per_tensor",
                "dtype": dtype,
                "shape": i64([n]),
                "values": i64(vals),
                "scale": f64([scale]),
                "zero_point": i64([zp]),
                "dequant": f32(q.dequantize()),
            })
        for shape, axes in PC_SHAPES:
            for axis in axes:
                c = shape[axis]
                scales = [DEQ_SCALES[int(i)] for i in rng.integers(0, len(DEQ_SCALES), size=c)]
                if dtype == "qint32":
                    zps = [int(v) for v in rng.integers(-1000, 1000, size=c)]
                else:
                    zps = [int(v) for v in rng.integers(qmin, qmax, size=c, endpoint=True)]
                vals = rng.integers(qmin, qmax, size=shape, endpoint=True)
                ints = torch.from_numpy(vals).to(storage[dtype])
                q = torch._make_per_channel_quantized_tensor(
                    ints, torch.tensor(scales, dtype=torch.float64), torch.tensor(zps), axis)
                gf.case(f"pc_{dtype}_{'x'.join(map(str, shape))}_axis{axis}", {
                    "kind": "per_channel",
                    "dtype": dtype,
                    "shape": i64(shape),
                    "axis": i64([axis]),
                    "values": i64(vals.reshape(-1)),
                    "scales": f64(scales),
                    "zero_points": i64(zps),
                    "dequant": f32(q.dequantize()),
                })
    return gf


def gen_requantize(out_dir: str) -> GoldenFile:
    gf = GoldenFile(TOPIC, "requantize",
                    "torch.quantize_per_tensor(q.dequantize(), scale2, zp2, dtype2) for per-tensor and per-channel q")
    rng = np.random.default_rng(1005)
    combos = [
        ("quint8", 0.05, 128, "quint8", 0.1, 100),
        ("quint8", 0.05, 128, "qint8", 0.02, 0),
        ("qint8", 0.1, 0, "quint8", 1.0 / 3.0, 10),
        ("qint8", 0.00214854861, -5, "qint8", 0.003, 3),
        ("quint8", 1.0, 0, "qint32", 0.001, 0),
        ("qint32", 0.001, 0, "quint8", 0.25, 255),
        ("qint8", 0.5, 127, "quint8", 0.5, 0),
        ("quint8", 0.1, 0, "quint8", 0.1, 0),
    ]
    for i, (d1, s1, z1, d2, s2, z2) in enumerate(combos):
        q1min, q1max = QRANGE[d1]
        lo = (max(q1min, -5000) - z1 - 5) * s1
        hi = (min(q1max, 5000) - z1 + 5) * s1
        x = rng.uniform(lo, hi, size=41).astype(np.float32)
        x[:3] = [np.nan, np.inf, -np.inf]
        q1 = torch.quantize_per_tensor(torch.from_numpy(x.copy()), s1, z1, _dtype(d1))
        q2 = torch.quantize_per_tensor(q1.dequantize(), s2, z2, _dtype(d2))
        gf.case(f"pt{i}_{d1}_to_{d2}", {
            "kind": "per_tensor",
            "shape": i64([x.size]),
            "x": f32(x),
            "dtype": d1,
            "scale": f64([s1]),
            "zero_point": i64([z1]),
            "dtype2": d2,
            "scale2": f64([s2]),
            "zero_point2": i64([z2]),
            "int_values": i64(_int_values(q2)),
        })
    for i, (d1, d2, s2, z2) in enumerate([("qint8", "quint8", 0.07, 128), ("quint8", "qint8", 0.01, -3)]):
        shape, axis = [3, 8], 0
        scales = [0.1, 1.0 / 3.0, 0.02]
        zps = [0, 5, -7] if d1 == "qint8" else [128, 0, 255]
        x = rng.uniform(-30, 30, size=shape).astype(np.float32)
        q1 = torch.quantize_per_channel(torch.from_numpy(x.copy()), torch.tensor(scales, dtype=torch.float64),
                                        torch.tensor(zps), axis, _dtype(d1))
        q2 = torch.quantize_per_tensor(q1.dequantize(), s2, z2, _dtype(d2))
        gf.case(f"pc{i}_{d1}_to_{d2}", {
            "kind": "per_channel",
            "shape": i64(shape),
            "x": f32(x),
            "dtype": d1,
            "axis": i64([axis]),
            "scales": f64(scales),
            "zero_points": i64(zps),
            "dtype2": d2,
            "scale2": f64([s2]),
            "zero_point2": i64([z2]),
            "int_values": i64(_int_values(q2)),
        })
    return gf


# --------------------------------------------------------------------------------------
# choose_qparams: quant_utils (dynamic) and fbgemm (fused fake-quant)
# --------------------------------------------------------------------------------------
def _minmax_pairs(rng) -> list[tuple[float, float]]:
    pairs = [
        (0.0, 0.0), (-1e-7, 1e-7), (0.0, 1e-6), (-1e-6, 0.0), (-1.0, 1.0), (-7.10, 5.61),
        (1.0, 5.0), (-5.0, -1.0), (-1e30, 1e30), (-F32_MAX, F32_MAX), (0.0, F32_MAX), (-3.0, 0.0),
        (0.0, 255.0), (-128.0, 127.0), (-1e-38, 1e-38), (-1.0, 1e-3), (-1e-3, 1.0), (-2.5, 2.5),
        (-0.5, 254.5), (-6.1e-5, 6.1e-5 * 254), (-0.0, 0.0), (1e-10, 2e-10), (-12.75, 0.25),
        (-2.0, 2.0 * 127.0 / 128.0), (-1.0, 1.0 / 255.0),
    ]
    for _ in range(80):
        lo = -abs(float(rng.normal(0, 1))) * 10 ** float(rng.uniform(-6, 4))
        hi = abs(float(rng.normal(0, 1))) * 10 ** float(rng.uniform(-6, 4))
        pairs.append((lo, hi))
    for _ in range(20):
        a, b = sorted(float(v) for v in rng.uniform(-100, 100, size=2))
        pairs.append((a, b))
    return [(float(_f32(a)), float(_f32(b))) for a, b in pairs]


def gen_choose_qparams_quant_utils(out_dir: str) -> GoldenFile:
    gf = GoldenFile(TOPIC, "choose_qparams_quant_utils",
                    "quant_utils::ChooseQuantizationParams via torch._choose_qparams_per_tensor (quint8) "
                    "and torch.quantize_per_tensor_dynamic (qint8) on x=[min,max]")
    rng = np.random.default_rng(1006)
    pairs = _minmax_pairs(rng)
    mins = np.array([p[0] for p in pairs], dtype=np.float32)
    maxs = np.array([p[1] for p in pairs], dtype=np.float32)
    for dtype in ("quint8", "qint8"):
        qmin, qmax = QRANGE[dtype]
        for reduce_range in (False, True):
            scales, zps = [], []
            for lo, hi in zip(mins, maxs):
                x = torch.tensor([lo, hi], dtype=torch.float32)
                if dtype == "quint8":
                    s, z = torch._choose_qparams_per_tensor(x, reduce_range)
                else:
                    q = torch.quantize_per_tensor_dynamic(x, torch.qint8, reduce_range)
                    s, z = q.q_scale(), q.q_zero_point()
                scales.append(s)
                zps.append(z)
            gf.case(f"{dtype}_reduce{int(reduce_range)}", {
                "qmin": i64([qmin]),
                "qmax": i64([qmax]),
                "reduce_range": i64([int(reduce_range)]),
                "mins": f32(mins),
                "maxs": f32(maxs),
                "scales": f64(scales),
                "zero_points": i64(zps),
            })
    return gf


def _dynamic_inputs(rng) -> list[tuple[str, np.ndarray]]:
    return [
        ("normal", rng.normal(0, 3, size=53)),
        ("all_zero", np.zeros(17)),
        ("constant", np.full(9, 2.5)),
        ("positive", rng.uniform(1.0, 5.0, size=31)),
        ("negative", rng.uniform(-5.0, -1.0, size=31)),
        ("tiny_range", rng.uniform(-1e-6, 1e-6, size=29)),
        ("huge", rng.normal(0, 1e30, size=23)),
        ("single", np.array([-0.75])),
        ("wide_skewed", np.concatenate([rng.uniform(-0.1, 100.0, size=40), [-0.1, 100.0]])),
        ("subnormal", np.array([1e-40, -3e-41, 0.0, 1e-45])),
    ]


def gen_quantize_dynamic(out_dir: str) -> GoldenFile:
    gf = GoldenFile(TOPIC, "quantize_dynamic",
                    "torch.quantize_per_tensor_dynamic and torch._choose_qparams_per_tensor on whole tensors")
    rng = np.random.default_rng(1007)
    for name, xs in _dynamic_inputs(rng):
        x = np.asarray(xs, dtype=np.float32)
        xt = torch.from_numpy(x.copy())
        for reduce_range in (False, True):
            s, z = torch._choose_qparams_per_tensor(xt, reduce_range)
            for dtype in ("quint8", "qint8"):
                q = torch.quantize_per_tensor_dynamic(xt, _dtype(dtype), reduce_range)
                gf.case(f"{name}_{dtype}_reduce{int(reduce_range)}", {
                    "dtype": dtype,
                    "reduce_range": i64([int(reduce_range)]),
                    "shape": i64([x.size]),
                    "x": f32(x),
                    "q_scale": f64([q.q_scale()]),
                    "q_zero_point": i64([q.q_zero_point()]),
                    "int_values": i64(_int_values(q)),
                    "choose_scale": f64([s]),
                    "choose_zero_point": i64([z]),
                })
    return gf


FBGEMM_RANGES = [(0, 255), (0, 127), (-128, 127), (-64, 63), (-127, 127), (0, 15)]


def _fused(x: np.ndarray, rmin, rmax, qmin, qmax, symmetric: bool, per_channel: bool):
    """Run torch.fused_moving_avg_obs_fake_quant with the observer OFF, fake quant ON."""
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    c = len(rmin)
    running_min = torch.tensor(rmin, dtype=torch.float32)
    running_max = torch.tensor(rmax, dtype=torch.float32)
    scale = torch.ones(c, dtype=torch.float32)
    zero_point = torch.zeros(c, dtype=torch.int32)
    y = torch.fused_moving_avg_obs_fake_quant(
        xt, torch.tensor([0]), torch.tensor([1]), running_min, running_max, scale, zero_point,
        0.01, qmin, qmax, 0, per_channel, symmetric)
    y.backward(torch.ones_like(y))
    mask = xt.grad.numpy().reshape(-1)
    assert np.all((mask == 0) | (mask == 1))
    return scale.numpy(), zero_point.numpy().astype(np.int64), y.detach().numpy(), mask.astype(np.uint8)


def gen_choose_qparams_fbgemm(out_dir: str) -> GoldenFile:
    gf = GoldenFile(TOPIC, "choose_qparams_fbgemm",
                    "fbgemm::ChooseQuantizationParams observed through the scale/zero_point buffers of "
                    "torch.fused_moving_avg_obs_fake_quant (observer off), plus its fake-quant output and mask")
    rng = np.random.default_rng(1008)
    pairs = _minmax_pairs(rng)
    # table cases: one fused call per (min, max)
    for qmin, qmax in FBGEMM_RANGES:
        for symmetric in (False, True):
            scales, zps = [], []
            for lo, hi in pairs:
                s, z, _, _ = _fused(np.zeros(1, dtype=np.float32), [lo], [hi], qmin, qmax, symmetric, False)
                scales.append(float(s[0]))
                zps.append(int(z[0]))
            gf.case(f"table_q{_fmt(qmin)}_{qmax}_sym{int(symmetric)}", {
                "kind": "table",
                "qmin": i64([qmin]),
                "qmax": i64([qmax]),
                "symmetric": i64([int(symmetric)]),
                "mins": f32([p[0] for p in pairs]),
                "maxs": f32([p[1] for p in pairs]),
                "scales": f32(scales),
                "zero_points": i64(zps),
            })
    # per-tensor fake quant through the fused op
    for qmin, qmax in FBGEMM_RANGES:
        for symmetric in (False, True):
            x = rng.normal(0, 2, size=47).astype(np.float32)
            lo, hi = float(_f32(float(x.min()) * 0.8)), float(_f32(float(x.max()) * 0.8))
            x[:3] = [np.nan, np.inf, -np.inf]
            s, z, y, mask = _fused(x, [lo], [hi], qmin, qmax, symmetric, False)
            gf.case(f"pt_q{_fmt(qmin)}_{qmax}_sym{int(symmetric)}", {
                "kind": "per_tensor",
                "qmin": i64([qmin]),
                "qmax": i64([qmax]),
                "symmetric": i64([int(symmetric)]),
                "shape": i64([x.size]),
                "x": f32(x),
                "mins": f32([lo]),
                "maxs": f32([hi]),
                "scales": f32(s),
                "zero_points": i64(z),
                "y": f32(y),
                "mask": u8(mask),
            })
    # per-channel (axis 0 only, as torch supports)
    for qmin, qmax in ((0, 255), (-128, 127), (-127, 127)):
        for symmetric in (False, True):
            shape = [5, 9]
            x = rng.normal(0, 2, size=shape).astype(np.float32)
            x *= np.array([1e-3, 0.5, 1.0, 10.0, 100.0], dtype=np.float32)[:, None]
            lo = (x.min(axis=1) * 0.9).astype(np.float32)
            hi = (x.max(axis=1) * 0.9).astype(np.float32)
            lo[1], hi[1] = 0.0, 0.0
            lo[2] = 0.5  # min > 0
            x.reshape(-1)[[4, 20, 33]] = [np.nan, np.inf, -np.inf]
            s, z, y, mask = _fused(x, lo, hi, qmin, qmax, symmetric, True)
            gf.case(f"pc_q{_fmt(qmin)}_{qmax}_sym{int(symmetric)}", {
                "kind": "per_channel",
                "qmin": i64([qmin]),
                "qmax": i64([qmax]),
                "symmetric": i64([int(symmetric)]),
                "shape": i64(shape),
                "x": f32(x),
                "mins": f32(lo),
                "maxs": f32(hi),
                "scales": f32(s),
                "zero_points": i64(z),
                "y": f32(y),
                "mask": u8(mask),
            })
    return gf


# --------------------------------------------------------------------------------------
# Python observer formula and calculate_qmin_qmax
# --------------------------------------------------------------------------------------
def _observer_inputs(rng, per_channel: bool):
    shape = [4, 7]
    base = rng.normal(0, 3, size=shape)
    inputs = [
        ("normal", base),
        ("all_zero", np.zeros(shape)),
        ("min_pos", rng.uniform(1.0, 5.0, size=shape)),
        ("max_neg", rng.uniform(-5.0, -1.0, size=shape)),
        ("tiny", rng.normal(0, 1e-9, size=shape)),
        ("wide", rng.normal(0, 1e20, size=shape)),
        ("skewed", rng.uniform(-0.5, 30.0, size=shape)),
    ]
    if per_channel:
        mixed = base.copy()
        mixed[0] = 0.0
        mixed[1] = np.abs(mixed[1]) + 1.0
        mixed[2] = -np.abs(mixed[2]) - 1.0
        mixed[3] *= 1e-9
        inputs.append(("mixed_channels", mixed))
    return [(n, np.asarray(v, dtype=np.float32)) for n, v in inputs]


def _custom_ranges(dtype: str):
    return {
        "quint8": [None, (0, 255), (0, 127), (0, 15)],
        "qint8": [None, (-128, 127), (-127, 127), (-8, 7)],
        "qint32": [None, (-(2**31), 2**31 - 1)],
        "quint4x2": [None, (0, 15)],
    }[dtype]


def gen_observer_qparams(out_dir: str) -> GoldenFile:
    import warnings

    from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

    gf = GoldenFile(TOPIC, "observer_qparams",
                    "MinMaxObserver / PerChannelMinMaxObserver calculate_qparams (the Python formula, per min/max pair)")
    rng = np.random.default_rng(1009)
    schemes = {
        False: [torch.per_tensor_affine, torch.per_tensor_symmetric],
        True: [torch.per_channel_affine, torch.per_channel_symmetric, torch.per_channel_affine_float_qparams],
    }
    scheme_names = {
        torch.per_tensor_affine: "per_tensor_affine",
        torch.per_tensor_symmetric: "per_tensor_symmetric",
        torch.per_channel_affine: "per_channel_affine",
        torch.per_channel_symmetric: "per_channel_symmetric",
        torch.per_channel_affine_float_qparams: "per_channel_affine_float_qparams",
    }
    eps_values = [float(torch.finfo(torch.float32).eps), 2.0**-12]
    for per_channel in (False, True):
        inputs = _observer_inputs(rng, per_channel)
        for dtype in ("quint8", "qint8", "qint32", "quint4x2"):
            for qscheme in schemes[per_channel]:
                if qscheme == torch.per_channel_affine_float_qparams and dtype not in ("quint8", "quint4x2"):
                    continue
                for reduce_range in (False, True):
                    for custom in _custom_ranges(dtype):
                        # eps 2**-12 is what the *_neg_127_to_127 (qint8) observers use
                        for eps in (eps_values if dtype == "qint8" else eps_values[:1]):
                            kwargs = dict(dtype=_dtype(dtype), qscheme=qscheme, reduce_range=reduce_range, eps=eps)
                            if custom is not None:
                                kwargs["quant_min"], kwargs["quant_max"] = custom
                            for in_name, x in inputs + [("unobserved", None)]:
                                if per_channel and in_name == "unobserved":
                                    continue  # empty per-channel buffers have no (min, max) pair
                                try:
                                    with warnings.catch_warnings():
                                        warnings.simplefilter("ignore")
                                        if per_channel:
                                            obs = PerChannelMinMaxObserver(ch_axis=0, **kwargs)
                                        else:
                                            obs = MinMaxObserver(**kwargs)
                                        if x is not None:
                                            obs(torch.from_numpy(x.copy()))
                                        scale, zp = obs.calculate_qparams()
                                except NotImplementedError:
                                    continue
                                mins = obs.min_val.reshape(-1).numpy()
                                maxs = obs.max_val.reshape(-1).numpy()
                                custom_tok = "none" if custom is None else f"{_fmt(custom[0])}_{_fmt(custom[1])}"
                                name = (f"{scheme_names[qscheme]}_{dtype}_r{int(reduce_range)}_c{custom_tok}"
                                        f"_eps{'default' if eps == eps_values[0] else '2m12'}_{in_name}")
                                fields = {
                                    "qscheme": scheme_names[qscheme],
                                    "dtype": dtype,
                                    "reduce_range": i64([int(reduce_range)]),
                                    "has_custom_range": i64([int(custom is not None)]),
                                    "eps": f32([eps]),
                                    "quant_min": i64([obs.quant_min]),
                                    "quant_max": i64([obs.quant_max]),
                                    "min_vals": f32(mins),
                                    "max_vals": f32(maxs),
                                    "scales": f32(scale.reshape(-1)),
                                    "zero_points": f64(zp.reshape(-1).double()),
                                }
                                if custom is not None:
                                    fields["custom_range"] = i64(list(custom))
                                gf.case(name, fields)
    return gf


def gen_qmin_qmax(out_dir: str) -> GoldenFile:
    from torch.ao.quantization.utils import calculate_qmin_qmax, validate_qmin_qmax

    gf = GoldenFile(TOPIC, "qmin_qmax",
                    "torch.ao.quantization.utils.calculate_qmin_qmax; err=1 when torch raises. "
                    "validate_ok mirrors validate_qmin_qmax (observer constructors)")
    customs = [None, (0, 255), (0, 127), (-128, 127), (-127, 127), (-64, 63), (0, 15), (-7, 7),
               (-8, 7), (-3, 0), (0, 1), (0, 1000), (-200, 200), (-(2**31), 2**31 - 1), (0, 2**32 - 1),
               (-1, 2**32 - 1), (1, 255), (-10, -1), (5, 5), (3, 2)]
    for dtype in ("quint8", "qint8", "qint32", "quint4x2"):
        for reduce_range in (False, True):
            for custom in customs:
                has = custom is not None
                qmin_in, qmax_in = custom if has else (None, None)
                try:
                    qmin, qmax = calculate_qmin_qmax(qmin_in, qmax_in, has, _dtype(dtype), reduce_range)
                    err = 0
                except AssertionError:
                    qmin, qmax, err = 0, 0, 1
                validate_ok = 1
                if has:
                    try:
                        validate_qmin_qmax(qmin_in, qmax_in)
                    except AssertionError:
                        validate_ok = 0
                tok = "none" if not has else f"{_fmt(custom[0])}_{_fmt(custom[1])}"
                fields = {
                    "dtype": dtype,
                    "reduce_range": i64([int(reduce_range)]),
                    "has_custom_range": i64([int(has)]),
                    "err": i64([err]),
                    "validate_ok": i64([validate_ok]),
                    "qmin": i64([qmin]),
                    "qmax": i64([qmax]),
                }
                if has:
                    fields["custom_range"] = i64(list(custom))
                gf.case(f"{dtype}_r{int(reduce_range)}_c{tok}", fields)
    return gf


# --------------------------------------------------------------------------------------
# fake quant (outputs and straight-through masks)
# --------------------------------------------------------------------------------------
FQ_RANGES = [(0, 255), (-128, 127), (0, 127), (-127, 127), (0, 15), (-(2**31), 2**31 - 1)]


def _mask_from_grad(x: np.ndarray, fn) -> tuple[np.ndarray, np.ndarray]:
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    y = fn(xt)
    y.backward(torch.ones_like(y))
    grad = xt.grad.numpy().reshape(-1)
    assert np.all((grad == 0) | (grad == 1)), grad
    return y.detach().numpy(), grad.astype(np.uint8)


def gen_fake_quant_per_tensor(out_dir: str) -> GoldenFile:
    gf = GoldenFile(TOPIC, "fake_quant_per_tensor",
                    "torch.fake_quantize_per_tensor_affine output and gradient mask (backward of ones)")
    rng = np.random.default_rng(1010)
    # the numerics doc example
    x = np.array([1.554, 1.555, 1.545, -1.0, -1.005, 0.0], dtype=np.float32)
    y, mask = _mask_from_grad(x, lambda t: torch.fake_quantize_per_tensor_affine(t, 0.01, 100, 0, 255))
    gf.case("doc_example", {
        "shape": i64([x.size]), "x": f32(x), "scale": f64([0.01]), "zero_point": i64([100]),
        "qmin": i64([0]), "qmax": i64([255]), "y": f32(y), "mask": u8(mask),
    })
    for qmin, qmax in FQ_RANGES:
        zps = sorted({qmin, qmax, (qmin + qmax) // 2}) if qmax - qmin < 2**32 - 1 else [qmin, 0, 5, qmax]
        for scale in (1.0, 0.1, 1.0 / 3.0, 0.00214854861, 1e-10, 1e-38, 1e10, 1e30):
            for zp in zps:
                dt = "qint32" if qmax == 2**31 - 1 else ("quint8" if qmin >= 0 else "qint8")
                vals = list(SPECIALS)
                if dt == "qint32":
                    ks = [-3, -1, 0, 2, 100, -(2**20) - 3]
                    rand = rng.uniform(-3e9, 3e9, size=16) * scale
                else:
                    ks = sorted({qmin - zp - 2, qmin - zp - 1, qmin - zp, qmax - zp - 1, qmax - zp, qmax - zp + 1, 0,
                                 int(rng.integers(qmin - zp, qmax - zp + 1))})
                    rand = rng.uniform(qmin - zp - 10, qmax - zp + 10, size=24) * scale
                vals += _halfway_values(scale, ks)
                with np.errstate(over="ignore"):
                    x = np.concatenate([np.array(vals), rand]).astype(np.float32)
                y, mask = _mask_from_grad(
                    x, lambda t: torch.fake_quantize_per_tensor_affine(t, scale, zp, qmin, qmax))
                gf.case(f"q{_fmt(qmin)}_{qmax}_s{_fmt(scale)}_zp{_fmt(zp)}", {
                    "shape": i64([x.size]), "x": f32(x), "scale": f64([scale]), "zero_point": i64([zp]),
                    "qmin": i64([qmin]), "qmax": i64([qmax]), "y": f32(y), "mask": u8(mask),
                })
    return gf


def gen_fake_quant_per_channel(out_dir: str) -> GoldenFile:
    gf = GoldenFile(TOPIC, "fake_quant_per_channel",
                    "torch.fake_quantize_per_channel_affine with int32 and float zero points: output and mask")
    rng = np.random.default_rng(1011)
    shapes = [([4, 6], [0, 1]), ([2, 3, 5], [0, 1, 2]), ([2, 3, 2, 4], [1])]
    scale_pool = [0.1, 1.0 / 3.0, 0.02, 0.00214854861, 1e-10, 1e10, 0.5, 1e-38]
    for zp_kind in ("int", "float"):
        for qmin, qmax in ((0, 255), (-128, 127), (0, 15), (-127, 127)):
            for shape, axes in shapes:
                for axis in axes:
                    c = shape[axis]
                    scales = np.array([scale_pool[int(i)] for i in rng.integers(0, len(scale_pool), size=c)],
                                      dtype=np.float32)
                    if zp_kind == "int":
                        zps = rng.integers(qmin, qmax, size=c, endpoint=True).astype(np.int32)
                        zps[0] = qmin
                        zps_t = torch.from_numpy(zps.copy())
                    else:
                        zps = rng.uniform(qmin - 3, qmax + 3, size=c).astype(np.float32)
                        zps[0] = np.float32(round(float(zps[0])) + 0.5)
                        zps_t = torch.from_numpy(zps.copy())
                    x = np.empty(shape, dtype=np.float32)
                    xm = np.moveaxis(x, axis, 0)
                    for ch in range(c):
                        s = float(scales[ch])
                        z = float(zps[ch])
                        v = rng.uniform(qmin - z - 6, qmax - z + 6, size=xm[ch].shape) * s
                        half = (np.round(v / s) + 0.5) * s
                        v = np.where(rng.random(size=xm[ch].shape) < 0.3, half, v)
                        xm[ch] = v.astype(np.float32)
                    flat = x.reshape(-1)
                    flat[rng.choice(flat.size, size=3, replace=False)] = [np.nan, np.inf, -np.inf]
                    y, mask = _mask_from_grad(x, lambda t: torch.fake_quantize_per_channel_affine(
                        t, torch.from_numpy(scales.copy()), zps_t, axis, qmin, qmax))
                    fields = {
                        "zp_kind": zp_kind,
                        "shape": i64(shape),
                        "axis": i64([axis]),
                        "x": f32(x),
                        "scales": f32(scales),
                        "qmin": i64([qmin]),
                        "qmax": i64([qmax]),
                        "y": f32(y),
                        "mask": u8(mask),
                    }
                    fields["zero_points"] = i32(zps) if zp_kind == "int" else f32(zps)
                    gf.case(f"{zp_kind}zp_q{_fmt(qmin)}_{qmax}_{'x'.join(map(str, shape))}_axis{axis}", fields)
    return gf


# --------------------------------------------------------------------------------------
# f32 <-> f16 (HandleWeightsSaturation: clamp to +-65504, then round to half)
# --------------------------------------------------------------------------------------
def gen_f16(out_dir: str) -> GoldenFile:
    gf = GoldenFile(TOPIC, "f16_conversion",
                    "f32 -> f16 as torch.clamp(x, -65504, 65504).half() (HandleWeightsSaturation), and f16 -> f32")
    rng = np.random.default_rng(1012)
    special = [0.0, -0.0, 65504.0, -65504.0, 65505.0, 65519.0, 65520.0, 65536.0, -65520.0, 1e10, -1e10,
               F32_MAX, -F32_MAX, math.inf, -math.inf, math.nan, 6.103515625e-05, 6.0975551605224609e-05,
               5.960464477539063e-08, 2.9802322387695312e-08, 2.98023259e-08, 1e-8, -1e-8, 1e-45,
               1.0009765625, 1.00048828125, 1.00146484375, 2049.0, 2051.0, 4097.0, 0.1, 1.0 / 3.0]
    halfs = []
    for _ in range(200):  # exact f16 midpoints (ties to even) and their neighbours
        h = np.float16(rng.uniform(-60000, 60000) * 10 ** float(rng.uniform(-9, 0)))
        nxt = np.nextafter(h, np.float16(np.inf), dtype=np.float16)
        mid = (np.float32(h) + np.float32(nxt)) / np.float32(2)
        halfs += [mid, np.nextafter(mid, np.float32(np.inf)), np.nextafter(mid, np.float32(-np.inf))]
    rand = np.concatenate([rng.normal(0, 1, 300), rng.normal(0, 1e5, 100), rng.normal(0, 1e-5, 100)])
    with np.errstate(over="ignore"):
        x = np.concatenate([np.array(special), np.array(halfs, dtype=np.float64), rand]).astype(np.float32)
    h = torch.clamp(torch.from_numpy(x.copy()), -65504.0, 65504.0).half()
    gf.case("f32_to_f16", {
        "x": f32(x),
        "f16_bits": u16(h.view(torch.int16).numpy().view(np.uint16)),
    })
    bits = np.concatenate([np.arange(0, 65536, 7), [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF,
                                                    0x7C00, 0xFC00, 0x7C01, 0x7E00, 0xFE00, 0x7FFF, 0xFFFF]])
    bits = bits.astype(np.uint16)
    back = torch.from_numpy(bits.view(np.int16).copy()).view(torch.float16).float()
    gf.case("f16_to_f32", {"f16_bits": u16(bits), "y": f32(back)})
    return gf


# --------------------------------------------------------------------------------------
# large tiled inputs: exercise the vectorized and multi-threaded paths
# --------------------------------------------------------------------------------------
TILE = 997  # prime: misaligned with any SIMD block or thread chunk
TILED_N = (1 << 18) + 12345  # above a 2**18 parallel threshold, not a multiple of TILE


def _tiled(pattern: np.ndarray) -> tuple[np.ndarray, int, int]:
    reps, tail = divmod(TILED_N, pattern.size)
    return np.concatenate([np.tile(pattern, reps), pattern[:tail]]), reps, tail


def _untile(full: np.ndarray, size: int) -> np.ndarray:
    """The output for the first tile, after checking torch's output really is periodic."""
    head = full[:size]
    reps = full.size // size
    body = full[: reps * size].reshape(reps, size)
    assert np.array_equal(body.view(np.uint8).reshape(reps, -1), np.tile(head.view(np.uint8), (reps, 1))), \
        "torch output is not periodic"
    return head


def gen_quantize_tiled(out_dir: str) -> GoldenFile:
    gf = GoldenFile(TOPIC, "quantize_tiled",
                    f"per-tensor quantize/dequantize/fake-quant over {TILED_N} elements built by repeating a "
                    f"{TILE}-element pattern; expected values are given for one period")
    rng = np.random.default_rng(1013)
    for dtype, scale, zp in (("quint8", 0.05, 128), ("quint8", 0.00214854861, 3), ("qint8", 1.0 / 3.0, -5),
                             ("qint8", 0.5, 127), ("qint32", 0.001, 7)):
        qmin, qmax = QRANGE[dtype]
        lo, hi = (max(qmin, -2**24) - zp - 20) * scale, (min(qmax, 2**24) - zp + 20) * scale
        pattern = rng.uniform(lo, hi, size=TILE)
        half = (np.round(pattern / scale) + 0.5) * scale
        pattern = np.where(rng.random(TILE) < 0.2, half, pattern)
        pattern[rng.choice(TILE, size=40, replace=False)] = rng.choice(
            [np.nan, np.inf, -np.inf, -0.0, 1e30, -1e30, 3e9, -3e9, 2**22, 2**23 + 1], size=40)
        pattern = pattern.astype(np.float32)
        full, reps, tail = _tiled(pattern)
        q = torch.quantize_per_tensor(torch.from_numpy(full), scale, zp, _dtype(dtype))
        ints = _untile(q.int_repr().numpy().reshape(-1), TILE)
        deq = _untile(q.dequantize().numpy(), TILE)
        fq = torch.fake_quantize_per_tensor_affine(torch.from_numpy(full), scale, zp,
                                                   max(qmin, -2**31), min(qmax, 2**31 - 1))
        gf.case(f"{dtype}_s{_fmt(scale)}_zp{_fmt(zp)}", {
            "dtype": dtype,
            "n": i64([full.size]),
            "pattern": f32(pattern),
            "scale": f64([scale]),
            "zero_point": i64([zp]),
            "int_values": i64(ints.astype(np.int64)),
            "dequant": f32(deq),
            "fake_quant": f32(_untile(fq.numpy(), TILE)),
        })
    return gf


FAMILIES = [
    gen_quantize_per_tensor,
    gen_quantize_per_channel,
    gen_quantize_float_qparams,
    gen_dequantize,
    gen_requantize,
    gen_choose_qparams_quant_utils,
    gen_quantize_dynamic,
    gen_choose_qparams_fbgemm,
    gen_observer_qparams,
    gen_qmin_qmax,
    gen_fake_quant_per_tensor,
    gen_fake_quant_per_channel,
    gen_f16,
    gen_quantize_tiled,
]


def generate(out_dir: str) -> list[tuple[str, int]]:
    """Write every qtensor golden file into out_dir; returns [(path, case_count)]."""
    global torch
    torch = setup_torch()
    written = []
    for family in FAMILIES:
        gf = family(out_dir)
        written.append((gf.write(out_dir), gf.case_count))
    return written
