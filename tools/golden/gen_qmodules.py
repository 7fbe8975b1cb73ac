"""Golden vectors for qnn's static quantized modules (issue 6), torch.ao.nn.quantized with fbgemm.

Each torch module is built the way `from_float` builds it: float weights drawn from a seeded
numpy RNG, weight qparams from the default weight observers (per-tensor symmetric
MinMaxObserver or per-channel symmetric PerChannelMinMaxObserver, qint8; some cases affine),
the weight quantized with torch.quantize_per_tensor / quantize_per_channel, bias kept float,
output qparams from a MinMaxObserver (quint8, reduce_range like fbgemm's default qconfig)
on the float module's output. Full-range activations would make torch's AVX2 kernels
saturate int16 pair sums, which no qconfig produces.

Families (crates/qnn/tests/data/qmodules/<family>.golden):

* `linear` -- nnq.Linear / nniq.LinearReLU.
* `conv` -- nnq.Conv1d/2d/3d and nniq.ConvReLU1d/2d/3d.
* `quant` -- nnq.Quantize (quint8 / qint8) and the dequantized values.
* `activation` -- relu, nnq.ReLU6, nnq.Hardswish, nnq.LeakyReLU, nnq.ELU, sigmoid, tanh.
* `pool` -- max_pool2d, avg_pool2d, adaptive_avg_pool2d on channels-last quint8 inputs.
* `batchnorm` -- nnq.BatchNorm2d / nniq.BNReLU2d (C below, at and above torch's 64 lanes).
* `functional` -- nnq.QFunctional's ops (matmul is torch's float reference: one-quantum tolerance).
* `lenet` -- a LeNet5 (32x32) prepared and converted with torch.ao.quantization's eager flow
  (fbgemm qconfig, conv+relu and linear+relu fused), every layer's float weights and
  observed qparams, and the quantized output.

Fields (common): w f32 + w_shape i64 (PyTorch weight layout); has_bias str yes|no; bias f32;
per_channel str yes|no; w_scales f64; w_zps i64; relu str yes|no; x f32 + x_shape i64;
x_scale f64; x_zp i64; x_q u8 (logical NCHW order); out_scale f64; out_zp i64; y u8 (logical
order) + y_shape i64. Convs add dims i64[1], stride/padding/dilation i64[dims], groups i64[1].
"""

from __future__ import annotations

import numpy as np

from golden_io import GoldenFile, f32, f64, i32, i64, u8
from torch_env import setup_torch

TOPIC = "qmodules"
OUT_DIR = "crates/qnn/tests/data/qmodules"

torch = None  # set by generate()


def _t(arr):
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def _flag(b):
    return "yes" if b else "no"


def _act_qparams(t):
    from torch.ao.quantization.observer import MinMaxObserver

    # reduce_range as fbgemm's default qconfig: 7-bit activations keep fbgemm's u8*i8 pair
    # sums (vpmaddubsw) inside int16, which torch relies on.
    obs = MinMaxObserver(dtype=torch.quint8, reduce_range=True)
    obs(t)
    s, z = obs.calculate_qparams()
    return float(s), int(z)


def _weight_qparams(w, per_channel, symmetric=True):
    from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

    if per_channel:
        qs = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
        obs = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=qs)
    else:
        qs = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
        obs = MinMaxObserver(dtype=torch.qint8, qscheme=qs)
    obs(w)
    s, z = obs.calculate_qparams()
    if per_channel:
        s, z = s.to(torch.double), z.to(torch.int64)
        qw = torch.quantize_per_channel(w, s, z, 0, torch.qint8)
        return qw, s.numpy().astype(np.float64), z.numpy().astype(np.int64)
    qw = torch.quantize_per_tensor(w, float(s), int(z), torch.qint8)
    return qw, np.array([float(s)]), np.array([int(z)])


def _q_in(x):
    s, z = _act_qparams(x)
    return torch.quantize_per_tensor(x, s, z, torch.quint8), s, z


def _io(xq, x, y, out_scale, out_zp):
    return {
        "x": f32(x),
        "x_shape": i64(list(x.shape)),
        "x_scale": f64([xq.q_scale()]),
        "x_zp": i64([xq.q_zero_point()]),
        "x_q": u8(xq.int_repr()),
        "out_scale": f64([out_scale]),
        "out_zp": i64([out_zp]),
        "y": u8(y.int_repr()),
        "y_shape": i64(list(y.shape)),
        "y_scale": f64([y.q_scale()]),
        "y_zp": i64([y.q_zero_point()]),
    }


LINEAR_CASES = [
    # (name, batch shape, in, out, bias, per_channel, symmetric, relu)
    ("pt_bias", (4,), 16, 8, True, False, True, False),
    ("pc_bias", (3,), 33, 17, True, True, True, False),
    ("pt_nobias_relu", (5,), 20, 7, False, False, True, True),
    ("pc_relu", (2,), 64, 40, True, True, True, True),
    ("pt_affine_weight", (3,), 12, 9, True, False, False, False),
    ("pc_affine_weight_relu", (2,), 10, 6, True, True, False, True),
    ("rank3_input", (2, 3), 24, 10, True, True, True, False),
    ("odd_1x1", (1,), 1, 1, True, False, True, False),
    ("wide_k", (2,), 300, 5, False, True, True, False),
]


def linear_family():
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq

    rng = np.random.default_rng(601)
    gf = GoldenFile(TOPIC, "linear", "nnq.Linear / nniq.LinearReLU built as from_float builds them")
    for name, batch, k, n, has_bias, pc, sym, relu in LINEAR_CASES:
        w = _t(rng.normal(0, 0.3, (n, k)))
        b = _t(rng.normal(0, 0.5, (n,))) if has_bias else None
        x = _t(rng.normal(0.2, 1.0, batch + (k,)))
        yf = torch.nn.functional.linear(x, w, b)
        if relu:
            yf = torch.relu(yf)
        os_, oz = _act_qparams(yf)
        qw, ws, wz = _weight_qparams(w, pc, sym)
        m = (nniq.LinearReLU if relu else nnq.Linear)(k, n, has_bias)
        m.set_weight_bias(qw, b)
        m.scale, m.zero_point = os_, oz
        xq, _, _ = _q_in(x)
        y = m(xq)
        fields = {
            "w": f32(w), "w_shape": i64([n, k]), "has_bias": _flag(has_bias),
            "bias": f32(b if b is not None else np.zeros(0, np.float32)),
            "per_channel": _flag(pc), "w_scales": f64(ws), "w_zps": i64(wz), "relu": _flag(relu),
        }
        fields.update(_io(xq, x, y, os_, oz))
        gf.case(name, fields)
    return gf


CONV_CASES = [
    # (name, dims, N, C, O, groups, spatial, kernel, stride, padding, dilation, bias, pc, sym, relu)
    ("c2_lenet1", 2, 2, 1, 6, 1, (12, 12), (5, 5), (1, 1), (0, 0), (1, 1), True, True, True, False),
    ("c2_pad_stride", 2, 1, 8, 16, 1, (9, 10), (3, 3), (2, 2), (1, 1), (1, 1), True, False, True, True),
    ("c2_dilated_nobias", 2, 1, 12, 10, 1, (11, 9), (3, 3), (1, 1), (2, 2), (2, 2), False, True, True, False),
    ("c2_groups", 2, 2, 16, 12, 4, (8, 8), (3, 3), (1, 1), (1, 1), (1, 1), True, True, True, True),
    ("c2_depthwise", 2, 1, 24, 24, 24, (9, 9), (3, 3), (1, 1), (1, 1), (1, 1), True, True, True, False),
    ("c2_pointwise", 2, 2, 32, 20, 1, (5, 6), (1, 1), (1, 1), (0, 0), (1, 1), True, False, True, False),
    ("c2_odd_rect", 2, 1, 5, 7, 1, (13, 6), (5, 3), (3, 2), (2, 1), (1, 2), True, True, True, True),
    ("c2_affine_weight", 2, 1, 6, 16, 1, (8, 8), (5, 5), (1, 1), (0, 0), (1, 1), True, False, False, True),
    ("c1_basic", 1, 2, 4, 6, 1, (20,), (3,), (1,), (1,), (1,), True, True, True, False),
    ("c1_groups_relu", 1, 1, 6, 9, 3, (17,), (5,), (2,), (2,), (1,), False, False, True, True),
    ("c3_basic", 3, 1, 3, 5, 1, (5, 6, 6), (3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1), True, True, True, False),
    ("c3_groups_relu", 3, 1, 8, 8, 2, (4, 7, 5), (2, 3, 3), (1, 2, 2), (0, 1, 1), (1, 1, 1), True, False, True, True),
]


def conv_family():
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq

    F = torch.nn.functional
    rng = np.random.default_rng(602)
    gf = GoldenFile(TOPIC, "conv", "nnq.Conv1d/2d/3d and nniq.ConvReLU1d/2d/3d built as from_float builds them")
    for name, d, n, c, o, g, sp, k, st, pd, dl, has_bias, pc, sym, relu in CONV_CASES:
        w = _t(rng.normal(0, 0.3, (o, c // g) + k))
        b = _t(rng.normal(0, 0.5, (o,))) if has_bias else None
        x = _t(rng.normal(0.3, 1.0, (n, c) + sp))
        fconv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[d]
        yf = fconv(x, w, b, st, pd, dl, g)
        if relu:
            yf = torch.relu(yf)
        os_, oz = _act_qparams(yf)
        qw, ws, wz = _weight_qparams(w, pc, sym)
        cls = {
            (1, False): nnq.Conv1d, (2, False): nnq.Conv2d, (3, False): nnq.Conv3d,
            (1, True): nniq.ConvReLU1d, (2, True): nniq.ConvReLU2d, (3, True): nniq.ConvReLU3d,
        }[(d, relu)]
        m = cls(c, o, k, stride=st, padding=pd, dilation=dl, groups=g, bias=has_bias)
        m.set_weight_bias(qw, b)
        m.scale, m.zero_point = os_, oz
        xq, _, _ = _q_in(x)
        y = m(xq)
        fields = {
            "dims": i64([d]), "stride": i64(list(st)), "padding": i64(list(pd)),
            "dilation": i64(list(dl)), "groups": i64([g]),
            "w": f32(w), "w_shape": i64(list(w.shape)), "has_bias": _flag(has_bias),
            "bias": f32(b if b is not None else np.zeros(0, np.float32)),
            "per_channel": _flag(pc), "w_scales": f64(ws), "w_zps": i64(wz), "relu": _flag(relu),
        }
        fields.update(_io(xq, x, y, os_, oz))
        gf.case(name, fields)
    return gf


def quant_family():
    import torch.ao.nn.quantized as nnq

    rng = np.random.default_rng(603)
    gf = GoldenFile(TOPIC, "quant", "nnq.Quantize (quint8/qint8, 2-d and 4-d) and nnq.DeQuantize")
    cases = [
        ("u8_2d", (3, 7), 0.05, 120, torch.quint8),
        ("u8_4d", (2, 3, 5, 4), 0.02, 7, torch.quint8),
        ("u8_4d_saturating", (1, 4, 6, 6), 0.003, 250, torch.quint8),
        ("i8_2d", (4, 9), 0.04, -3, torch.qint8),
        ("i8_4d", (1, 5, 3, 3), 0.01, 0, torch.qint8),
    ]
    for name, shape, s, z, dt in cases:
        x = _t(rng.normal(0, 1.5, shape))
        x.view(-1)[0] = 0.0
        if x.numel() > 3:
            x.view(-1)[1] = s * 2.5  # a tie
        q = nnq.Quantize(s, z, dt)(x)
        deq = nnq.DeQuantize()(q)
        gf.case(name, {
            "x": f32(x), "x_shape": i64(list(shape)), "scale": f64([s]), "zp": i64([z]),
            "dtype": "quint8" if dt == torch.quint8 else "qint8",
            "y": i32(q.int_repr().to(torch.int32)), "deq": f32(deq),
        })
    return gf


def activation_family():
    import torch.ao.nn.quantized as nnq

    rng = np.random.default_rng(604)
    gf = GoldenFile(TOPIC, "activation", "quantized relu, ReLU6, Hardswish, LeakyReLU, ELU, sigmoid, tanh")
    specs = [
        ("relu", None, lambda s, z, p: torch.relu),
        ("relu6", None, lambda s, z, p: nnq.ReLU6()),
        ("hardswish", None, lambda s, z, p: nnq.Hardswish(s, z)),
        ("leaky_relu", 0.05, lambda s, z, p: nnq.LeakyReLU(s, z, p)),
        ("elu", 0.8, lambda s, z, p: nnq.ELU(s, z, p)),
        ("sigmoid", None, lambda s, z, p: torch.sigmoid),
        ("tanh", None, lambda s, z, p: torch.tanh),
    ]
    for op, param, make in specs:
        for variant, shape, mean in (("4d", (2, 3, 5, 4), 0.5), ("2d", (3, 11), -0.5)):
            x = _t(rng.normal(mean, 2.5, shape))
            xq, _, _ = _q_in(x)
            if variant == "4d":
                xq = xq.contiguous(memory_format=torch.channels_last)
            xf = xq.dequantize()
            ref = {
                "hardswish": torch.nn.functional.hardswish,
                "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, param),
                "elu": lambda t: torch.nn.functional.elu(t, param),
            }.get(op)
            os_, oz = _act_qparams(ref(xf)) if ref else (1.0, 0)
            y = make(os_, oz, param)(xq)
            fields = {"op": op, "param": f64([param if param is not None else 0.0])}
            fields.update(_io(xq, x, y, os_, oz))
            gf.case(f"{op}_{variant}", fields)
    return gf


def pool_family():
    F = torch.nn.functional
    rng = np.random.default_rng(605)
    gf = GoldenFile(TOPIC, "pool", "quantized max/avg/adaptive-avg pooling on channels-last quint8")
    cases = [
        # (name, op, shape, kernel, stride, padding, dilation, count_include_pad, divisor, out)
        ("max_2x2", "max", (2, 6, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), True, 0, None),
        ("max_3x3_pad", "max", (1, 5, 9, 7), (3, 3), (2, 2), (1, 1), (1, 1), True, 0, None),
        ("max_dilated", "max", (1, 4, 10, 10), (3, 2), (1, 2), (1, 0), (2, 1), True, 0, None),
        ("avg_2x2", "avg", (2, 17, 8, 6), (2, 2), (2, 2), (0, 0), (1, 1), True, 0, None),
        ("avg_3x3_pad_nocount", "avg", (1, 20, 7, 7), (3, 3), (2, 2), (1, 1), (1, 1), False, 0, None),
        ("avg_divisor", "avg", (1, 33, 6, 6), (3, 3), (1, 1), (1, 1), (1, 1), True, 5, None),
        ("adaptive_1x1", "adaptive", (2, 24, 5, 7), None, None, None, None, True, 0, (1, 1)),
        ("adaptive_3x2", "adaptive", (1, 18, 7, 5), None, None, None, None, True, 0, (3, 2)),
        # ceil_mode=True (op `*_ceil`): a partial last window per axis, one dropped because it
        # would start in the padding (avg_ceil_drop: 5 + 1 pad, k=2, s=2 -> 3 rows, not 4)
        ("max_ceil", "max_ceil", (1, 7, 8, 9), (3, 3), (2, 2), (1, 1), (1, 1), True, 0, None),
        ("max_ceil_nopad", "max_ceil", (2, 5, 7, 8), (2, 3), (2, 2), (0, 0), (1, 1), True, 0, None),
        ("avg_ceil", "avg_ceil", (1, 19, 8, 9), (3, 3), (2, 2), (1, 1), (1, 1), True, 0, None),
        ("avg_ceil_nocount", "avg_ceil", (2, 18, 7, 8), (2, 3), (2, 2), (0, 1), (1, 1), False, 0, None),
        ("avg_ceil_drop", "avg_ceil", (1, 17, 5, 5), (2, 2), (2, 2), (1, 1), (1, 1), False, 0, None),
        ("avg_ceil_divisor", "avg_ceil", (1, 16, 6, 7), (3, 3), (2, 2), (1, 1), (1, 1), True, 4, None),
    ]
    for name, op, shape, k, st, pd, dl, cip, div, out in cases:
        x = _t(rng.normal(0.1, 1.2, shape))
        xq, _, _ = _q_in(x)
        xq = xq.contiguous(memory_format=torch.channels_last)
        ceil = op.endswith("_ceil")
        if op.startswith("max"):
            y = F.max_pool2d(xq, k, st, pd, dl, ceil_mode=ceil)
        elif op.startswith("avg"):
            y = F.avg_pool2d(xq, k, st, pd, ceil, cip, div if div else None)
        else:
            y = F.adaptive_avg_pool2d(xq, out)
        fields = {
            "op": op,
            "kernel": i64(list(k or (0, 0))), "stride": i64(list(st or (0, 0))),
            "padding": i64(list(pd or (0, 0))), "dilation": i64(list(dl or (0, 0))),
            "count_include_pad": _flag(cip), "divisor": i64([div]),
            "out_size": i64(list(out or (0, 0))),
        }
        fields.update(_io(xq, x, y, xq.q_scale(), xq.q_zero_point()))
        gf.case(name, fields)
    return gf


def batchnorm_family():
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq

    rng = np.random.default_rng(607)
    gf = GoldenFile(TOPIC, "batchnorm", "nnq.BatchNorm2d / nniq.BNReLU2d from eval float BatchNorm2d")
    # channel counts below, at and above torch's 64-lane vector step, plus a mixed one
    for name, shape, relu in (("c8", (2, 8, 5, 4), False), ("c70_relu", (1, 70, 3, 3), True),
                              ("c130", (1, 130, 2, 3), False), ("c64_relu", (2, 64, 3, 2), True),
                              ("c3", (3, 3, 4, 4), False)):
        c = shape[1]
        bn = torch.nn.BatchNorm2d(c)
        with torch.no_grad():
            bn.weight.copy_(_t(rng.normal(1.0, 0.5, c)))
            bn.bias.copy_(_t(rng.normal(0.0, 0.5, c)))
            bn.running_mean.copy_(_t(rng.normal(0.0, 0.7, c)))
            bn.running_var.copy_(_t(rng.uniform(0.2, 3.0, c)))
        bn.eval()
        x = _t(rng.normal(0.3, 1.2, shape))
        yf = bn(x)
        if relu:
            yf = torch.relu(yf)
        os_, oz = _act_qparams(yf)
        m = (nniq.BNReLU2d if relu else nnq.BatchNorm2d)(c)
        with torch.no_grad():
            m.weight.copy_(bn.weight)
            m.bias.copy_(bn.bias)
            m.running_mean.copy_(bn.running_mean)
            m.running_var.copy_(bn.running_var)
        m.eps = bn.eps
        m.scale = torch.tensor(os_)
        m.zero_point = torch.tensor(oz)
        m.eval()
        xq, _, _ = _q_in(x)
        y = m(xq)
        fields = {
            "weight": f32(bn.weight), "bias": f32(bn.bias), "mean": f32(bn.running_mean),
            "var": f32(bn.running_var), "eps": f64([bn.eps]), "relu": _flag(relu),
        }
        fields.update(_io(xq, x, y, os_, oz))
        gf.case(name, fields)
    return gf


def functional_family():
    import torch.ao.nn.quantized as nnq

    rng = np.random.default_rng(608)
    gf = GoldenFile(TOPIC, "functional", "nnq.QFunctional add/add_relu/mul/cat/add_scalar/mul_scalar/matmul")

    def qin(shape, mean=0.0, cl=False):
        x = _t(rng.normal(mean, 1.3, shape))
        q, _, _ = _q_in(x)
        return q.contiguous(memory_format=torch.channels_last) if cl else q

    def store(name, op, inputs, y, param=0.0, dim=0):
        fields = {"op": op, "param": f64([param]), "dim": i64([dim]), "n_inputs": i64([len(inputs)])}
        for i, q in enumerate(inputs):
            fields[f"x{i}_q"] = u8(q.int_repr())
            fields[f"x{i}_shape"] = i64(list(q.shape))
            fields[f"x{i}_scale"] = f64([q.q_scale()])
            fields[f"x{i}_zp"] = i64([q.q_zero_point()])
            fields[f"x{i}_cl"] = _flag(q.dim() == 4 and q.is_contiguous(memory_format=torch.channels_last))
        fields.update({"y": u8(y.int_repr()), "y_shape": i64(list(y.shape)),
                       "y_scale": f64([y.q_scale()]), "y_zp": i64([y.q_zero_point()])})
        gf.case(name, fields)

    for op in ("add", "add_relu", "mul"):
        for variant, shape, cl in (("4d", (2, 3, 8, 8), True), ("2d", (4, 64), False)):
            a, b = qin(shape, 0.2, cl), qin(shape, -0.3, cl)
            fa, fb = a.dequantize(), b.dequantize()
            ref = {"add": fa + fb, "add_relu": torch.relu(fa + fb), "mul": fa * fb}[op]
            f = nnq.QFunctional()
            f.scale, f.zero_point = _act_qparams(ref)
            y = getattr(f, op)(a, b)
            store(f"{op}_{variant}", op, [a, b], y)
    for name, c in (("add_scalar_pos", 0.7), ("add_scalar_big", 40.0), ("add_scalar_neg", -0.45)):
        a = qin((2, 5, 7))
        store(name, "add_scalar", [a], nnq.QFunctional().add_scalar(a, c), param=c)
    for name, c in (("mul_scalar_pos", 1.7), ("mul_scalar_neg", -0.6), ("mul_scalar_zero", 0.0)):
        a = qin((3, 4, 2, 2), cl=True)
        store(name, "mul_scalar", [a], nnq.QFunctional().mul_scalar(a, c), param=c)
    cats = [
        ("cat_channels", [(1, 3, 4, 5), (1, 6, 4, 5), (1, 2, 4, 5)], 1, True),
        ("cat_rows", [(2, 7), (5, 7)], 0, False),
        ("cat_last", [(2, 3, 4), (2, 3, 1)], -1, False),
    ]
    for name, shapes, dim, cl in cats:
        xs = [qin(s, 0.1 * i, cl) for i, s in enumerate(shapes)]
        f = nnq.QFunctional()
        f.scale, f.zero_point = _act_qparams(torch.cat([x.dequantize() for x in xs], dim))
        if name == "cat_rows":  # one input already has the output qparams: copied as is
            xs[0] = torch.quantize_per_tensor(xs[0].dequantize(), f.scale, f.zero_point, torch.quint8)
        store(name, "cat", xs, f.cat(xs, dim), dim=dim)
    for name, sa, sb in (("matmul_2d", (5, 16), (16, 7)), ("matmul_3d", (2, 4, 9), (2, 9, 3))):
        a, b = qin(sa), qin(sb)
        f = nnq.QFunctional()
        f.scale, f.zero_point = _act_qparams(torch.matmul(a.dequantize(), b.dequantize()))
        store(name, "matmul", [a, b], f.matmul(a, b))
    return gf


def lenet_family():
    import torch.ao.quantization as tq

    nn = torch.nn
    rng = np.random.default_rng(606)
    model = nn.Sequential(
        tq.QuantStub(),
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
        tq.DeQuantStub(),
    )
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(_t(rng.normal(0, 0.15, tuple(p.shape))))
    model.eval()
    floats = {i: (model[i].weight.detach().clone(), model[i].bias.detach().clone()) for i in (1, 4, 8, 10, 12)}
    tq.fuse_modules(model, [["1", "2"], ["4", "5"], ["8", "9"], ["10", "11"]], inplace=True)
    model.qconfig = tq.get_default_qconfig("fbgemm")
    tq.prepare(model, inplace=True)
    calib = _t(rng.normal(0.2, 1.0, (8, 1, 32, 32)))
    model(calib)
    tq.convert(model, inplace=True)
    x = _t(rng.normal(0.2, 1.0, (3, 1, 32, 32)))
    xq = model[0](x)
    body = nn.Sequential(*[model[i] for i in range(1, 13)])
    yq = body(xq)
    fields = {
        "x": f32(x), "x_shape": i64(list(x.shape)),
        "quant_scale": f64([float(model[0].scale)]), "quant_zp": i64([int(model[0].zero_point)]),
        "x_q": u8(xq.int_repr()),
    }
    for i in (1, 4, 8, 10, 12):
        w, b = floats[i]
        qw = model[i].weight()
        fields[f"l{i}_w"] = f32(w)
        fields[f"l{i}_w_shape"] = i64(list(w.shape))
        fields[f"l{i}_b"] = f32(b)
        fields[f"l{i}_w_scales"] = f64(qw.q_per_channel_scales().to(torch.double))
        fields[f"l{i}_w_zps"] = i64(qw.q_per_channel_zero_points().to(torch.int64))
        fields[f"l{i}_out_scale"] = f64([float(model[i].scale)])
        fields[f"l{i}_out_zp"] = i64([int(model[i].zero_point)])
    fields["y"] = u8(yq.int_repr())
    fields["y_shape"] = i64(list(yq.shape))
    fields["y_deq"] = f32(yq.dequantize())
    gf = GoldenFile(TOPIC, "lenet", "LeNet5 (32x32) through torch.ao.quantization eager prepare/convert, fbgemm")
    gf.case("lenet5_batch3", fields)
    return gf


def generate(out_dir: str) -> list[tuple[str, int]]:
    """Write the qmodules golden files into out_dir; returns [(path, case_count)]."""
    global torch
    torch = setup_torch()
    written = []
    for family in (linear_family, conv_family, quant_family, activation_family, pool_family, batchnorm_family, functional_family, lenet_family):
        gf = family()
        written.append((gf.write(out_dir), gf.case_count))
    return written
