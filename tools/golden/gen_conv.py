"""Golden vectors for the int8 convolution of crates/qkernels (issue 4).

Families (one `<family>.golden` each, in crates/qkernels/tests/data/conv):

* `conv2d` -- torch.ops.quantized.conv2d / conv2d_relu (fbgemm engine): dense, strided,
  padded, dilated, grouped, depthwise 3x3/5x5 stride 1/2, 1x1, tiny input channels.
* `conv1d` -- torch.ops.quantized.conv1d / conv1d_relu.
* `conv3d` -- torch.ops.quantized.conv3d / conv3d_relu.
* `eltwise` -- quantized add/add_relu/mul (lengths a multiple of 128, torch's vector path),
  add_scalar/mul_scalar, relu6, sigmoid/tanh/hardsigmoid/hardswish/leaky_relu/elu over all
  256 input values, cat, nearest upsampling.
* `pool` -- max_pool2d, avg_pool2d, adaptive_avg_pool2d on channels-last quint8 tensors.

PyTorch takes NCHW quint8 tensors (and computes channels-last); the generator stores
activations and outputs in channels-last order (N, D, H, W, C) so the Rust test feeds them
directly.

eltwise/pool fields: op str; x/a/b u8 (channels-last where 4-d); *_scale f64[1]; *_zp i64[1];
shape i64 (NHWC or other op-specific sizes); params f64 (op-specific); y u8.

Conv fields (the contract with crates/qkernels/tests/conv_golden.rs):
  geom i64[19] = (N, C, O, groups, D, H, W, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw)
    with leading spatial dims 1 (padding 0) for conv1d/conv2d;
  w u8[O*C/g*kd*kh*kw] (qint8 two's complement, PyTorch layout O, C/g, kd, kh, kw);
  per_channel str yes|no; w_scales f64[O or 1]; w_zps i64[O or 1];
  has_bias str yes|no; bias f32[O or 0]; relu str yes|no;
  x_q u8 (NDHWC); x_scale f64[1]; x_zp i64[1]; out_scale f64[1]; out_zp i64[1]; y u8 (NDHWC)
"""

from __future__ import annotations

import numpy as np

from golden_io import GoldenFile, f32, f64, i64, u8
from torch_env import setup_torch

TOPIC = "conv"
OUT_DIR = "crates/qkernels/tests/data/conv"
# Generated on an AVX-512 VNNI CPU: without VNNI fbgemm saturates int16 pairs (full-range
# activations here) and float kernels sum in another order, so the files differ there.
CPU = "avx512-vnni"

torch = None  # set by generate()

# (N, C, O, groups, spatial, kernel, stride, padding, dilation) with 2-d spatial values
SHAPES_2D = [
    (1, 3, 6, 1, (12, 12), (5, 5), (1, 1), (0, 0), (1, 1)),  # LeNet conv1 style, tiny C
    (2, 1, 4, 1, (9, 8), (3, 3), (1, 1), (1, 1), (1, 1)),
    (1, 8, 16, 1, (10, 9), (3, 3), (1, 1), (1, 1), (1, 1)),
    (1, 16, 17, 1, (7, 7), (3, 3), (2, 2), (1, 1), (1, 1)),
    (1, 12, 20, 1, (9, 11), (3, 3), (1, 1), (2, 2), (2, 2)),  # dilated
    (2, 32, 24, 1, (6, 6), (1, 1), (1, 1), (0, 0), (1, 1)),  # 1x1
    (1, 40, 33, 1, (5, 5), (1, 1), (2, 2), (0, 0), (1, 1)),  # strided 1x1
    (1, 16, 12, 4, (8, 8), (3, 3), (1, 1), (1, 1), (1, 1)),  # groups
    (1, 24, 24, 24, (9, 9), (3, 3), (1, 1), (1, 1), (1, 1)),  # depthwise 3x3 s1
    (1, 20, 20, 20, (10, 10), (3, 3), (2, 2), (1, 1), (1, 1)),  # depthwise 3x3 s2
    (1, 17, 17, 17, (11, 11), (5, 5), (1, 1), (2, 2), (1, 1)),  # depthwise 5x5 s1
    (2, 33, 33, 33, (12, 12), (5, 5), (2, 2), (2, 2), (1, 1)),  # depthwise 5x5 s2
    (1, 8, 16, 8, (6, 6), (3, 3), (1, 1), (1, 1), (1, 1)),  # channel multiplier 2
    (1, 64, 70, 1, (6, 6), (3, 3), (1, 1), (1, 1), (1, 1)),
    (1, 5, 7, 1, (13, 6), (5, 3), (3, 2), (2, 1), (1, 2)),  # mixed
    # fbgemm's depthwise fast path (C % 8 == 0, "same" padding): tap pairs saturate to i16
    (1, 16, 16, 16, (9, 9), (5, 5), (1, 1), (2, 2), (1, 1)),
    (1, 24, 24, 24, (11, 11), (5, 5), (2, 2), (2, 2), (1, 1)),
    (1, 16, 16, 16, (10, 10), (3, 3), (2, 2), (1, 1), (1, 1)),
    (1, 8, 16, 8, (7, 7), (5, 5), (2, 2), (2, 2), (1, 1)),
]

SHAPES_1D = [
    (1, 4, 6, 1, (20,), (3,), (1,), (1,), (1,)),
    (2, 6, 9, 3, (17,), (5,), (2,), (2,), (1,)),
    (1, 16, 16, 16, (15,), (3,), (1,), (1,), (2,)),
    (1, 32, 20, 1, (9,), (1,), (1,), (0,), (1,)),
]

SHAPES_3D = [
    (1, 3, 5, 1, (5, 6, 6), (3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1)),
    (1, 8, 8, 2, (4, 7, 5), (2, 3, 3), (1, 2, 2), (0, 1, 1), (1, 1, 1)),
    (2, 16, 12, 1, (3, 4, 4), (1, 1, 1), (1, 1, 1), (0, 0, 0), (1, 1, 1)),
    (1, 8, 8, 8, (4, 5, 5), (3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1)),  # depthwise fast path
    (1, 8, 8, 8, (4, 5, 5), (3, 3, 3), (2, 1, 2), (1, 1, 1), (1, 1, 1)),
]


def _weights(rng, wshape, per_channel, symmetric):
    o = wshape[0]
    w = torch.from_numpy(rng.standard_normal(wshape).astype(np.float32) * 0.3)
    if per_channel:
        scales = torch.from_numpy((rng.uniform(0.3, 1.5, o) * float(w.abs().max()) / 127).astype(np.float64))
        zps = torch.zeros(o, dtype=torch.int64) if symmetric else torch.from_numpy(rng.integers(-20, 21, o))
        qw = torch.quantize_per_channel(w, scales, zps, 0, torch.qint8)
        return qw, scales.numpy(), zps.numpy()
    scale = float(w.abs().max()) / 110
    zp = 0 if symmetric else int(rng.integers(-15, 16))
    return torch.quantize_per_tensor(w, scale, zp, torch.qint8), np.array([scale]), np.array([zp])


def _channels_last(t):
    """(N, C, *spatial) -> flat N, *spatial, C order."""
    dims = t.dim()
    return t.permute(0, *range(2, dims), 1).contiguous().reshape(-1)


def _pad3(v, fill):
    return [fill] * (3 - len(v)) + list(v)


def _family(name, shapes, dims, seed, topic=TOPIC, op_name=None):
    ops = {
        1: (torch.ops.quantized.conv1d_prepack, torch.ops.quantized.conv1d, torch.ops.quantized.conv1d_relu,
            torch.nn.functional.conv1d),
        2: (torch.ops.quantized.conv2d_prepack, torch.ops.quantized.conv2d, torch.ops.quantized.conv2d_relu,
            torch.nn.functional.conv2d),
        3: (torch.ops.quantized.conv3d_prepack, torch.ops.quantized.conv3d, torch.ops.quantized.conv3d_relu,
            torch.nn.functional.conv3d),
    }[dims]
    prepack, conv, conv_relu, fconv = ops
    gf = GoldenFile(topic, name, f"torch.ops.quantized.{op_name or name}(_relu), fbgemm, channels-last data")
    rng = np.random.default_rng(seed)
    for si, (n, c, o, groups, spatial, kernel, stride, padding, dilation) in enumerate(shapes):
        for variant in range(3):
            per_channel = variant != 0
            has_bias = variant != 1
            relu = (si + variant) % 2 == 1
            symmetric = variant == 2 or (per_channel and si % 2 == 0)
            qw, w_scales, w_zps = _weights(rng, (o, c // groups, *kernel), per_channel, symmetric)
            bias = torch.from_numpy(rng.standard_normal(o).astype(np.float32) * 2.0) if has_bias else None
            x = torch.from_numpy(rng.standard_normal((n, c, *spatial)).astype(np.float32) * 1.5 + 0.3)
            x_scale = float(rng.uniform(0.01, 0.05))
            x_zp = int(rng.integers(0, 256))
            qx = torch.quantize_per_tensor(x, x_scale, x_zp, torch.quint8)
            packed = prepack(qw, bias, list(stride), list(padding), list(dilation), groups)
            ref = fconv(qx.dequantize(), qw.dequantize(), bias, stride, padding, dilation, groups)
            span = float(ref.max() - ref.min()) + 1e-3
            out_scale = span / 200.0 * float(rng.uniform(0.5, 1.2))
            out_zp = int(rng.integers(20, 236))
            y = (conv_relu if relu else conv)(qx, packed, out_scale, out_zp)
            geom = [n, c, o, groups, *_pad3(spatial, 1), *_pad3(kernel, 1), *_pad3(stride, 1),
                    *_pad3(padding, 0), *_pad3(dilation, 1)]
            fields = {
                "geom": i64(geom),
                "w": u8(qw.int_repr().reshape(-1).numpy().view(np.uint8)),
                "per_channel": "yes" if per_channel else "no",
                "w_scales": f64(w_scales),
                "w_zps": i64(w_zps),
                "has_bias": "yes" if has_bias else "no",
                "bias": f32(bias.numpy() if bias is not None else np.zeros(0, np.float32)),
                "relu": "yes" if relu else "no",
                "x_q": u8(_channels_last(qx.int_repr())),
                "x_scale": f64([x_scale]),
                "x_zp": i64([x_zp]),
                "out_scale": f64([out_scale]),
                "out_zp": i64([out_zp]),
                "y": u8(_channels_last(y.int_repr())),
            }
            gf.case(f"s{si}_v{variant}_n{n}c{c}o{o}g{groups}_k{'x'.join(map(str, kernel))}", fields)
    return gf


def _q(rng, shape, scale, zp):
    x = torch.from_numpy(rng.standard_normal(shape).astype(np.float32) * 40 * scale + (128 - zp) * scale)
    return torch.quantize_per_tensor(x, scale, zp, torch.quint8)


def _eltwise_family():
    gf = GoldenFile(TOPIC, "eltwise", "quantized elementwise ops (fbgemm engine, channels-last where 4-d)")
    rng = np.random.default_rng(53)
    qf = torch.ao.nn.quantized.functional
    for i, n in enumerate((128, 1024, 4096)):
        qa = _q(rng, (n,), float(rng.uniform(0.01, 0.1)), int(rng.integers(0, 256)))
        qb = _q(rng, (n,), float(rng.uniform(0.01, 0.1)), int(rng.integers(0, 256)))
        so, zo = float(rng.uniform(0.02, 0.2)), int(rng.integers(0, 256))
        for op, fn in (("add", torch.ops.quantized.add), ("add_relu", torch.ops.quantized.add_relu),
                       ("mul", torch.ops.quantized.mul)):
            y = fn(qa, qb, so, zo)
            gf.case(f"{op}_{i}", {"op": op, "a": u8(qa.int_repr()), "a_scale": f64([qa.q_scale()]),
                                  "a_zp": i64([qa.q_zero_point()]), "b": u8(qb.int_repr()),
                                  "b_scale": f64([qb.q_scale()]), "b_zp": i64([qb.q_zero_point()]),
                                  "y_scale": f64([y.q_scale()]), "y_zp": i64([y.q_zero_point()]),
                                  "y": u8(y.int_repr())})
    for i, (c, zp) in enumerate(((0.5, 100), (-3.0, 10), (40.0, 200), (-1e3, 128), (1e3, 3))):
        qx = _q(rng, (300,), 0.05, zp)
        for op, fn in (("add_scalar", torch.ops.quantized.add_scalar),
                       ("add_scalar_relu", torch.ops.quantized.add_scalar_relu),
                       ("mul_scalar", torch.ops.quantized.mul_scalar)):
            if op == "mul_scalar" and i > 2:
                continue
            y = fn(qx, c)
            gf.case(f"{op}_{i}", {"op": op, "x": u8(qx.int_repr()), "x_scale": f64([qx.q_scale()]),
                                  "x_zp": i64([qx.q_zero_point()]), "params": f64([c]),
                                  "y_scale": f64([y.q_scale()]), "y_zp": i64([y.q_zero_point()]),
                                  "y": u8(y.int_repr())})
    allq = torch.arange(256, dtype=torch.uint8)
    for i, (s_in, z_in) in enumerate(((0.05, 128), (0.02, 30), (0.1, 200))):
        def fresh():
            # each op gets its own input: some quantized functionals write into their input
            return torch._make_per_tensor_quantized_tensor(allq.clone(), s_in, z_in)
        qx = fresh()
        so, zo = float(np.float32(0.03)), 100  # f32-representable (qstack's QParams scale is f32)
        ops = [
            ("sigmoid", torch.sigmoid(fresh()), []),
            ("tanh", torch.tanh(fresh()), []),
            ("hardsigmoid", torch.nn.functional.hardsigmoid(fresh()), []),
            ("relu6", torch.nn.functional.relu6(fresh()), []),
            ("hardswish", qf.hardswish(fresh(), so, zo), []),
            ("leaky_relu", qf.leaky_relu(fresh(), 0.1, so, zo), [0.1]),
            ("elu", qf.elu(fresh(), so, zo, 1.5), [1.5]),
        ]
        assert torch.equal(qx.int_repr(), allq)
        for op, y, params in ops:
            gf.case(f"{op}_{i}", {"op": op, "x": u8(qx.int_repr()), "x_scale": f64([s_in]),
                                  "x_zp": i64([z_in]), "params": f64(params),
                                  "y_scale": f64([y.q_scale()]), "y_zp": i64([y.q_zero_point()]),
                                  "y": u8(y.int_repr())})
    for i, (outer, c1, c2, same) in enumerate(((6, 5, 3, False), (4, 16, 8, True))):
        qa = _q(rng, (outer, c1), 0.05, 120)
        qb = _q(rng, (outer, c2), 0.05 if same else 0.08, 120 if same else 90)
        so, zo = (0.05, 120) if same else (0.07, 110)
        y = torch.ops.quantized.cat([qa, qb], 1, so, zo)
        gf.case(f"cat_{i}", {"op": "cat", "a": u8(qa.int_repr()), "a_scale": f64([qa.q_scale()]),
                             "a_zp": i64([qa.q_zero_point()]), "b": u8(qb.int_repr()),
                             "b_scale": f64([qb.q_scale()]), "b_zp": i64([qb.q_zero_point()]),
                             "shape": i64([outer, c1, c2]), "y_scale": f64([so]), "y_zp": i64([zo]),
                             "y": u8(y.int_repr())})
    for i, ((n, c, h, w), (oh, ow)) in enumerate((((1, 3, 4, 5), (8, 10)), ((2, 4, 6, 6), (9, 4)))):
        qx = _q(rng, (n, c, h, w), 0.05, 100).contiguous(memory_format=torch.channels_last)
        y = torch.nn.functional.interpolate(qx, size=(oh, ow), mode="nearest")
        gf.case(f"upsample_nearest_{i}", {"op": "upsample_nearest", "x": u8(_channels_last(qx.int_repr())),
                                          "shape": i64([n, h, w, c, oh, ow]), "y": u8(_channels_last(y.int_repr()))})
    return gf


def _pool_family():
    gf = GoldenFile(TOPIC, "pool", "quantized max/avg/adaptive-avg pooling on channels-last quint8")
    rng = np.random.default_rng(59)
    cases = [
        # (N, C, H, W, k, s, p, d, count_include_pad, divisor_override)
        (1, 19, 8, 9, 3, 2, 1, 1, True, None),
        (2, 32, 7, 7, 2, 2, 0, 1, True, None),
        (1, 40, 9, 6, 3, 1, 1, 1, False, None),
        (1, 17, 6, 6, 3, 3, 1, 1, True, 5),
        (1, 8, 10, 10, 3, 2, 1, 2, True, None),
    ]
    for i, (n, c, h, w, k, s, p, d, cip, div) in enumerate(cases):
        qx = _q(rng, (n, c, h, w), float(rng.uniform(0.02, 0.1)), int(rng.integers(0, 256)))
        qx = qx.contiguous(memory_format=torch.channels_last)
        base = {"x": u8(_channels_last(qx.int_repr())), "x_scale": f64([qx.q_scale()]),
                "x_zp": i64([qx.q_zero_point()]), "shape": i64([n, h, w, c])}
        y = torch.nn.functional.max_pool2d(qx, k, s, p, d)
        gf.case(f"max_{i}", {"op": "max_pool2d", **base, "params": f64([k, s, p, d]),
                             "y": u8(_channels_last(y.int_repr()))})
        if d == 1:
            y = torch.nn.functional.avg_pool2d(qx, k, s, p, False, cip, div)
            gf.case(f"avg_{i}", {"op": "avg_pool2d", **base,
                                 "params": f64([k, s, p, 1.0 if cip else 0.0, div or 0]),
                                 "y_scale": f64([y.q_scale()]), "y_zp": i64([y.q_zero_point()]),
                                 "y": u8(_channels_last(y.int_repr()))})
        for j, (oh, ow) in enumerate(((1, 1), (3, 4), (h // 2 + 1, w - 1))):
            y = torch.nn.functional.adaptive_avg_pool2d(qx, (oh, ow))
            gf.case(f"adaptive_{i}_{j}", {"op": "adaptive_avg_pool2d", **base, "params": f64([oh, ow]),
                                          "y_scale": f64([y.q_scale()]), "y_zp": i64([y.q_zero_point()]),
                                          "y": u8(_channels_last(y.int_repr()))})
    # ceil_mode = True (issue 6): partial last windows, one that would start in the padding and is
    # dropped, count_include_pad off, divisor_override, dilation; `params` gains a trailing 1.
    rng = np.random.default_rng(61)
    ceil_cases = [
        (1, 19, 8, 9, 3, 2, 1, 1, True, None),
        (1, 24, 7, 8, 2, 2, 0, 1, True, None),
        (2, 33, 10, 11, 3, 3, 1, 1, False, None),
        (1, 17, 6, 7, 3, 2, 1, 1, True, 5),
        (1, 16, 5, 5, 2, 2, 1, 1, False, None),
        (1, 8, 10, 9, 3, 2, 1, 2, True, None),
    ]
    for i, (n, c, h, w, k, s, p, d, cip, div) in enumerate(ceil_cases):
        qx = _q(rng, (n, c, h, w), float(rng.uniform(0.02, 0.1)), int(rng.integers(0, 256)))
        qx = qx.contiguous(memory_format=torch.channels_last)
        base = {"x": u8(_channels_last(qx.int_repr())), "x_scale": f64([qx.q_scale()]),
                "x_zp": i64([qx.q_zero_point()]), "shape": i64([n, h, w, c])}
        y = torch.nn.functional.max_pool2d(qx, k, s, p, d, ceil_mode=True)
        gf.case(f"max_ceil_{i}", {"op": "max_pool2d", **base, "params": f64([k, s, p, d, 1]),
                                  "y": u8(_channels_last(y.int_repr()))})
        if d == 1:
            y = torch.nn.functional.avg_pool2d(qx, k, s, p, True, cip, div)
            gf.case(f"avg_ceil_{i}", {"op": "avg_pool2d", **base,
                                      "params": f64([k, s, p, 1.0 if cip else 0.0, div or 0, 1]),
                                      "y_scale": f64([y.q_scale()]), "y_zp": i64([y.q_zero_point()]),
                                      "y": u8(_channels_last(y.int_repr()))})
    return gf


def generate(out_dir: str) -> list[tuple[str, int]]:
    """Write the conv golden files into out_dir; returns [(path, case_count)]."""
    global torch
    torch = setup_torch()
    written = []
    for name, shapes, dims, seed in (("conv2d", SHAPES_2D, 2, 41), ("conv1d", SHAPES_1D, 1, 43),
                                     ("conv3d", SHAPES_3D, 3, 47)):
        gf = _family(name, shapes, dims, seed)
        written.append((gf.write(out_dir), gf.case_count))
    for gf in (_eltwise_family(), _pool_family()):
        written.append((gf.write(out_dir), gf.case_count))
    return written
