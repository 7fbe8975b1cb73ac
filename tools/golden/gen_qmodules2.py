"""Golden vectors for qnn's less common static quantized modules (issue 6, part 2).

Families (one `<family>.golden` each, in crates/qnn/tests/data/qmodules2):

* `norm` -- torch.ops.quantized.layer_norm / group_norm / instance_norm (quint8 in and out),
  with and without affine parameters, sizes with and without vector remainders.
  Fields: kind str ln|gn|in; shape i64; normalized_shape i64 (ln); num_groups i64 (gn);
  affine str yes|no; weight f32; bias f32 (empty without affine); eps f64;
  x_q u8 (NCHW row-major); x_scale f64[1]; x_zp i64[1]; out_scale f64[1]; out_zp i64[1]; y u8.
* `softmax` -- torch.ops.quantized.softmax(x, dim, out_scale, out_zp) (dequantize, float
  softmax, quantize). Fields: shape; dim i64[1]; x_q; x_scale; x_zp; out_scale; out_zp; y u8.
* `conv_transpose2d` -- nnq.ConvTranspose2d (quantized::conv_transpose2d, fbgemm) with a
  per-tensor qint8 weight quantized from a float weight. Fields: shape i64 (N, Cin, H, W);
  out_channels, kernel, stride, padding, output_padding, dilation (i64[2] each), groups i64[1];
  w_float f32 ([Cin, Cout/g, kh, kw]); w_scale f64[1]; w_zp i64[1]; w u8 (qint8 bits);
  has_bias str; bias f32; x_q u8 (NCHW, reduce-range values 0..127); x_scale; x_zp;
  out_scale; out_zp; out_shape i64; y u8 (NCHW).
* `embedding` -- nnq.Embedding / nnq.EmbeddingBag (embedding_byte / embedding_4bit,
  embedding_bag_byte / embedding_bag_4bit, which always sum) over weights quantized with
  float_qparams_weight_only_qconfig's observer (quint8 or quint4x2). Fields: op str emb|bag;
  bits i64[1] (8|4); num i64[1]; dim i64[1]; w_float f32; scales f32; zps f32; qw u8 (one
  value per element, row-major); indices i64; idx_shape i64; offsets i64 (bag);
  include_last_offset str; psw f32 (per_sample_weights, may be empty); out_shape i64; y f32.
"""

from __future__ import annotations

import numpy as np

from golden_io import GoldenFile, f32, f64, i64, u8
from torch_env import setup_torch

TOPIC = "qmodules2"
OUT_DIR = "crates/qnn/tests/data/qmodules2"

torch = None  # set by generate()


def _qx(rng, shape, spread=2.0):
    x = torch.from_numpy((rng.standard_normal(shape) * spread + rng.uniform(-1, 1)).astype(np.float32))
    x_scale = float(rng.uniform(0.01, 0.05))
    x_zp = int(rng.integers(30, 226))
    return torch.quantize_per_tensor(x, x_scale, x_zp, torch.quint8), x_scale, x_zp


def _io(qx, x_scale, x_zp, out_scale, out_zp, y):
    return {
        "x_q": u8(qx.int_repr().contiguous().reshape(-1)),
        "x_scale": f64([x_scale]),
        "x_zp": i64([x_zp]),
        "out_scale": f64([out_scale]),
        "out_zp": i64([out_zp]),
        "y": u8(y.int_repr().contiguous().reshape(-1)),
    }


NORM_CASES = [
    # kind, shape, extra (normalized_shape | num_groups), affine
    ("ln", (3, 37), (37,), True),
    ("ln", (2, 4, 64), (64,), True),
    ("ln", (2, 3, 5, 26), (5, 26), True),
    ("ln", (4, 150), (150,), False),
    ("ln", (1, 2, 200), (2, 200), True),
    ("gn", (2, 6, 5, 7), 3, True),
    ("gn", (3, 8, 9, 9), 2, True),
    ("gn", (2, 4, 16, 8), 4, False),
    ("gn", (1, 12, 3, 11), 1, True),
    ("gn", (2, 6, 10), 2, True),
    ("in", (2, 5, 6, 7), None, True),
    ("in", (3, 4, 10, 13), None, False),
    ("in", (1, 3, 16, 16), None, True),
]


def norm_family() -> GoldenFile:
    gf = GoldenFile(TOPIC, "norm", "torch.ops.quantized.layer_norm / group_norm / instance_norm, quint8")
    rng = np.random.default_rng(61)
    for ci, (kind, shape, extra, affine) in enumerate(NORM_CASES):
        qx, x_scale, x_zp = _qx(rng, shape)
        eps = [1e-5, 1e-3, 0.25][ci % 3]
        out_scale = float(rng.uniform(0.01, 0.03))
        out_zp = int(rng.integers(90, 166))
        if kind == "ln":
            pshape = extra
        else:
            pshape = (shape[1],)
        if affine:
            weight = torch.from_numpy(rng.uniform(0.5, 1.5, pshape).astype(np.float32))
            bias = torch.from_numpy((rng.standard_normal(pshape) * 0.3).astype(np.float32))
        else:
            weight = bias = None
        if kind == "ln":
            y = torch.ops.quantized.layer_norm(qx, list(extra), weight, bias, eps, out_scale, out_zp)
        elif kind == "gn":
            y = torch.ops.quantized.group_norm(qx, extra, weight, bias, eps, out_scale, out_zp)
        else:
            y = torch.ops.quantized.instance_norm(qx, weight, bias, eps, out_scale, out_zp)
        empty = np.zeros(0, np.float32)
        fields = {
            "kind": kind,
            "shape": i64(list(shape)),
            "normalized_shape": i64(list(extra) if kind == "ln" else []),
            "num_groups": i64([extra] if kind == "gn" else []),
            "affine": "yes" if affine else "no",
            "weight": f32(weight.reshape(-1) if affine else empty),
            "bias": f32(bias.reshape(-1) if affine else empty),
            "eps": f64([eps]),
        }
        fields.update(_io(qx, x_scale, x_zp, out_scale, out_zp, y))
        gf.case(f"{kind}{ci}_{'x'.join(map(str, shape))}", fields)
    return gf


SOFTMAX_CASES = [
    ((4, 10), 1, None),
    ((3, 7), 0, None),
    ((2, 3, 33), -1, None),
    ((2, 5, 4, 6), 1, None),
    ((2, 3, 4, 70), 3, (1.0 / 256, 0)),
    ((5, 100), -1, (1.0 / 256, 0)),
    ((2, 4, 3), -2, None),
]


def softmax_family() -> GoldenFile:
    gf = GoldenFile(TOPIC, "softmax", "torch.ops.quantized.softmax(x, dim, scale, zero_point), quint8")
    rng = np.random.default_rng(67)
    for ci, (shape, dim, qp) in enumerate(SOFTMAX_CASES):
        qx, x_scale, x_zp = _qx(rng, shape, spread=3.0)
        if qp is None:
            out_scale, out_zp = float(rng.uniform(0.002, 0.006)), int(rng.integers(0, 20))
        else:
            out_scale, out_zp = qp
        y = torch.ops.quantized.softmax(qx, dim, out_scale, out_zp)
        fields = {"shape": i64(list(shape)), "dim": i64([dim])}
        fields.update(_io(qx, x_scale, x_zp, out_scale, out_zp, y))
        gf.case(f"sm{ci}_{'x'.join(map(str, shape))}_d{dim}", fields)
    return gf


CT_CASES = [
    # (N, Cin, H, W), Cout, kernel, stride, padding, output_padding, dilation, groups, bias, asym
    ((1, 3, 5, 5), 4, (3, 3), (1, 1), (0, 0), (0, 0), (1, 1), 1, True, False),
    ((2, 4, 4, 6), 6, (3, 3), (2, 2), (1, 1), (1, 1), (1, 1), 1, True, True),
    ((1, 8, 3, 4), 4, (2, 2), (2, 2), (0, 0), (0, 0), (1, 1), 2, False, False),
    ((2, 6, 5, 4), 9, (3, 2), (2, 1), (1, 0), (1, 0), (1, 1), 3, True, True),
    ((1, 5, 4, 4), 3, (3, 3), (1, 1), (2, 1), (0, 0), (2, 2), 1, True, False),
    ((1, 16, 6, 6), 8, (4, 4), (2, 2), (1, 1), (0, 0), (1, 1), 1, True, True),
    ((2, 4, 3, 3), 4, (5, 3), (3, 2), (2, 1), (2, 1), (1, 2), 4, True, False),
    ((1, 2, 7, 1), 2, (1, 1), (1, 1), (0, 0), (0, 0), (1, 1), 1, True, True),
]


def conv_transpose_family() -> GoldenFile:
    gf = GoldenFile(TOPIC, "conv_transpose2d", "nnq.ConvTranspose2d (quantized::conv_transpose2d, fbgemm), per-tensor qint8")
    import torch.ao.nn.quantized as nnq

    rng = np.random.default_rng(71)
    for ci, (shape, cout, k, s, p, op, d, g, has_bias, asym) in enumerate(CT_CASES):
        cin = shape[1]
        wshape = (cin, cout // g, k[0], k[1])
        w = torch.from_numpy((rng.standard_normal(wshape) * 0.3).astype(np.float32))
        w_scale = float(w.abs().max()) / float(rng.uniform(100, 127))
        w_zp = int(rng.integers(-10, 11)) if asym else 0
        qw = torch.quantize_per_tensor(w, w_scale, w_zp, torch.qint8)
        bias = torch.from_numpy(rng.standard_normal(cout).astype(np.float32)) if has_bias else None
        # reduce-range activations (0..127), as fbgemm's default qconfig: on CPUs without
        # AVX512-VNNI fbgemm's u8s8 kernel saturates int16 pair sums of full-range inputs
        x_scale = float(rng.uniform(0.01, 0.05))
        x_zp = int(rng.integers(20, 108))
        x_int = torch.from_numpy(rng.integers(0, 128, shape).astype(np.uint8))
        qx = torch._make_per_tensor_quantized_tensor(x_int, x_scale, x_zp)
        m = nnq.ConvTranspose2d(cin, cout, k, s, p, op, g, has_bias, d)
        m.set_weight_bias(qw, bias)
        ref = torch.nn.functional.conv_transpose2d(qx.dequantize(), qw.dequantize(), bias, s, p, op, g, d)
        span = float(ref.max() - ref.min()) + 1e-3
        m.scale = span / 220.0
        m.zero_point = int(rng.integers(60, 196))
        y = m(qx)
        fields = {
            "shape": i64(list(shape)),
            "out_channels": i64([cout]),
            "kernel": i64(list(k)),
            "stride": i64(list(s)),
            "padding": i64(list(p)),
            "output_padding": i64(list(op)),
            "dilation": i64(list(d)),
            "groups": i64([g]),
            "w_float": f32(w.reshape(-1)),
            "w_scale": f64([w_scale]),
            "w_zp": i64([w_zp]),
            "w": u8(qw.int_repr().reshape(-1).numpy().view(np.uint8)),
            "has_bias": "yes" if has_bias else "no",
            "bias": f32(bias if has_bias else np.zeros(0, np.float32)),
            "out_shape": i64(list(y.shape)),
        }
        fields.update(_io(qx, x_scale, x_zp, m.scale, m.zero_point, y))
        gf.case(f"ct{ci}_{'x'.join(map(str, shape))}_o{cout}_g{g}", fields)
    return gf


EMB_CASES = [
    # op, bits, num, dim, indices (shape), bag sizes or None, include_last_offset, per_sample_weights
    ("emb", 8, 12, 7, (3, 4), None, False, False),
    ("emb", 8, 20, 32, (9,), None, False, False),
    ("emb", 4, 10, 8, (2, 5), None, False, False),
    ("emb", 4, 16, 18, (7,), None, False, False),
    ("bag", 8, 15, 6, None, [2, 0, 3, 1], False, False),
    ("bag", 8, 30, 40, None, [5, 1, 7], True, False),
    ("bag", 8, 25, 13, None, [3, 4, 0, 2], False, True),
    ("bag", 4, 14, 10, None, [2, 3, 1], False, False),
    ("bag", 4, 20, 34, None, [4, 0, 5], True, True),
    ("bag", 4, 9, 4, None, [1, 6], False, True),
]


def embedding_family() -> GoldenFile:
    gf = GoldenFile(TOPIC, "embedding", "nnq.Embedding / nnq.EmbeddingBag (sum), 8-bit and 4-bit rowwise float qparams")
    import torch.ao.nn.quantized as nnq
    from torch.ao.quantization import float_qparams_weight_only_qconfig, float_qparams_weight_only_qconfig_4bit

    rng = np.random.default_rng(73)
    for ci, (op, bits, num, dim, ishape, bags, last, psw) in enumerate(EMB_CASES):
        w = torch.from_numpy((rng.standard_normal((num, dim)) * rng.uniform(0.3, 2.0)).astype(np.float32))
        w[num - 1] = 0.25  # a constant row: scale falls back to 1.0
        qconfig = float_qparams_weight_only_qconfig if bits == 8 else float_qparams_weight_only_qconfig_4bit
        obs = qconfig.weight()
        obs(w)
        scales, zps = obs.calculate_qparams()
        dtype = torch.quint8 if bits == 8 else torch.quint4x2
        qw = torch.quantize_per_channel(w, scales.to(torch.float), zps.to(torch.float), 0, dtype)
        qvals = torch.round((qw.dequantize() / scales[:, None]) + zps[:, None])  # only for a shape check
        ints = _int_values(qw, num, dim, bits)
        assert ints.shape == qvals.shape
        if op == "emb":
            indices = torch.from_numpy(rng.integers(0, num, ishape))
            m = nnq.Embedding(num, dim, dtype=dtype)
            m.set_weight(qw)
            y = m(indices)
            offsets = np.zeros(0, np.int64)
            pw = np.zeros(0, np.float32)
        else:
            total = sum(bags)
            indices = torch.from_numpy(rng.integers(0, num, total))
            starts = np.concatenate([[0], np.cumsum(bags)])
            offsets_t = torch.from_numpy(starts if last else starts[:-1])
            m = nnq.EmbeddingBag(num, dim, include_last_offset=last, dtype=dtype)
            m.set_weight(qw)
            pw_t = torch.from_numpy(rng.uniform(-1.0, 2.0, total).astype(np.float32)) if psw else None
            y = m(indices, offsets_t, pw_t)
            offsets = offsets_t.numpy()
            pw = pw_t.numpy() if psw else np.zeros(0, np.float32)
        gf.case(f"{op}{ci}_b{bits}_{num}x{dim}", {
            "op": op,
            "bits": i64([bits]),
            "num": i64([num]),
            "dim": i64([dim]),
            "w_float": f32(w.reshape(-1)),
            "scales": f32(scales.to(torch.float)),
            "zps": f32(zps.to(torch.float)),
            "qw": u8(ints.reshape(-1)),
            "indices": i64(indices.reshape(-1)),
            "idx_shape": i64(list(indices.shape)),
            "offsets": i64(offsets),
            "include_last_offset": "yes" if last else "no",
            "psw": f32(pw),
            "out_shape": i64(list(y.shape)),
            "y": f32(y.reshape(-1)),
        })
    return gf


def _int_values(qw, num, dim, bits):
    """One integer per element, row-major (quint4x2 unpacked, low nibble first)."""
    if bits == 8:
        return qw.int_repr().numpy().astype(np.uint8)
    packed = qw.int_repr().reshape(-1).numpy()
    vals = np.stack([packed & 0x0F, packed >> 4], axis=1).reshape(-1)[: num * dim]
    return vals.reshape(num, dim).astype(np.uint8)


def generate(out_dir: str) -> list[tuple[str, int]]:
    """Write the qmodules2 golden files into out_dir; returns [(path, case_count)]."""
    global torch
    torch = setup_torch()
    written = []
    for family in (norm_family, softmax_family, conv_transpose_family, embedding_family):
        gf = family()
        written.append((gf.write(out_dir), gf.case_count))
    return written
