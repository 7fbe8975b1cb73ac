"""Golden vectors for qnn::qat (fake-quant modules and QAT layers).

Families (one `<family>.golden` each, in crates/qnn/tests/data/qat):

* `fake_quant` -- FakeQuantize (MinMax / MovingAverage / per-channel observers, float qparams),
  FusedMovingAvgObsFakeQuantize (per tensor and per channel) and FixedQParamsFakeQuantize:
  a sequence of forward calls with observer / fake-quant toggles, recording after every call
  the output, the input gradient for a random upstream gradient (= gy * mask), the `scale`
  and `zero_point` buffers; at the end calculate_qparams() and the observer's min_val/max_val.
* `qat_layers` -- nnqat.Linear, nniqat.LinearReLU, nnqat.Conv1d, nnqat.Conv2d, nniqat.ConvReLU2d,
  nniqat.ConvBn2d, nniqat.ConvBnReLU2d, nniqat.ConvBn1d, nniqat.ConvBnReLU1d, nniqat.LinearBn1d
  (new cases appended, so the earlier ones keep their random draws): three SGD training steps (forward, backward, p -= lr*g)
  recording outputs, input and parameter gradients, the weight fake-quant's scale, and at the end
  the parameters, BN running statistics, to_float()'s (BN-folded) weight and bias, and the
  weight qparams convert computes from them.

* `interop` -- a QAT ConvBnReLU2d and a QAT Linear trained two steps in torch, saved with
  `safetensors.torch.save_file` as `interop_qat.safetensors` (keys `conv.*`, `fc.*`; needs the
  `safetensors` Python package), and eval-mode outputs of one more forward.

Fields (the contract with crates/qnn/tests/qat_golden.rs):
  fake_quant: kind str fq|fused|fixed; observer str minmax|ma|pc_minmax|pc_ma|fixed;
    dtype str quint8|qint8; qscheme str; custom str yes|no; quant_min quant_max i64[1];
    reduce_range str; averaging_constant eps f64[1]; ch_axis i64[1]; fixed_scale f64[1];
    fixed_zp i64[1]; steps i64[1]; shape i64[..]; obs_on fq_on u8[steps]; x gy y dx f32[steps*numel];
    scale f32 / zero_point f32 (all steps concatenated) with qp_len i64[steps];
    cq_scale f32; cq_zero_point f32; min_val max_val f32 (0 values when not applicable)
  qat_layers: op str linear|linear_relu|conv|conv_relu|conv1d|convbn|convbn_relu|convbn1d|
    convbn1d_relu|linearbn; wfq str (weight
    fake-quant: fq_tensor|fq_channel|fused_tensor|fused_channel); conv geometry as gen_qnn's conv2d;
    weight bias f32 (initial), bn_weight bn_bias bn_mean bn_var f32; lr f64[1]; steps i64[1];
    x gy f32 (all steps), y dx f32 (all steps), dweight dbias dbn_weight dbn_bias f32 (all steps),
    wfq_scale f32 (all steps, per-channel concatenated); final_weight final_bias final_bn_weight
    final_bn_bias final_bn_mean final_bn_var f32; float_weight float_bias f32 (to_float);
    cq_scale f32, cq_zero_point i64 (convert: weight_fake_quant(to_float().weight), calculate_qparams())
  interop: shape i64[..]; x f32; y_shape i64[..]; y f32; wfq_scale f32 (after the forward)
"""

from __future__ import annotations

import numpy as np

from golden_io import GoldenFile, f32, f64, i64, u8
from torch_env import setup_torch

TOPIC = "qat"
OUT_DIR = "crates/qnn/tests/data/qat"

torch = None  # set by generate()


def _t(arr):
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def _dtype(name):
    return {"quint8": torch.quint8, "qint8": torch.qint8}[name]


def _qscheme(name):
    return {
        "per_tensor_affine": torch.per_tensor_affine,
        "per_tensor_symmetric": torch.per_tensor_symmetric,
        "per_channel_affine": torch.per_channel_affine,
        "per_channel_symmetric": torch.per_channel_symmetric,
        "per_channel_affine_float_qparams": torch.per_channel_affine_float_qparams,
    }[name]


FQ = None  # torch.ao.quantization module, set by generate()

# (name, kind, observer, dtype, qscheme, custom (qmin, qmax) or None, reduce_range, c, eps,
#  ch_axis, shape, toggles [(obs, fq)], input scale per step)
FQ_CASES = [
    ("default_fake_quant", "fq", "ma", "quint8", "per_tensor_affine", (0, 255), True, 0.01, None, -1, (3, 5, 4),
     [(1, 1), (1, 1), (0, 1), (1, 0), (1, 1), (0, 0)], [1.0, 2.0, 3.0, 0.5, 1.5, 1.0]),
    ("default_weight_fake_quant", "fq", "ma", "qint8", "per_tensor_symmetric", (-128, 127), False, 0.01, None, -1, (6, 7),
     [(1, 1), (1, 1), (1, 1), (0, 1)], [0.3, 0.5, 0.2, 0.4]),
    ("minmax_quint8_affine", "fq", "minmax", "quint8", "per_tensor_affine", None, False, 0.0, None, -1, (40,),
     [(1, 1), (1, 1), (0, 1), (1, 1)], [1.0, 0.5, 4.0, 2.0]),
    ("minmax_qint8_affine_127", "fq", "minmax", "qint8", "per_tensor_affine", (-127, 127), False, 0.0, 2.0 ** -12, -1, (5, 9),
     [(1, 1), (1, 1), (1, 0), (1, 1)], [0.001, 1.0, 3.0, 2.0]),
    ("ma_quint8_symmetric", "fq", "ma", "quint8", "per_tensor_symmetric", None, False, 0.25, None, -1, (4, 6),
     [(1, 1), (1, 1), (1, 1)], [1.0, 2.0, 0.5]),
    ("default_per_channel_weight_fake_quant", "fq", "pc_ma", "qint8", "per_channel_symmetric", (-128, 127), False, 0.01, None, 0,
     (4, 3, 2, 2), [(1, 1), (1, 1), (0, 1), (1, 1)], [0.5, 0.7, 0.2, 0.6]),
    ("pc_minmax_quint8_affine_axis1", "fq", "pc_minmax", "quint8", "per_channel_affine", None, False, 0.0, None, 1, (3, 5, 4),
     [(1, 1), (1, 1), (0, 1), (1, 0), (1, 1)], [1.0, 2.0, 1.0, 3.0, 0.5]),
    ("pc_ma_qint8_affine_reduce", "fq", "pc_ma", "qint8", "per_channel_affine", None, True, 0.1, None, 0, (5, 8),
     [(1, 1), (1, 1), (1, 1)], [1.0, 2.0, 0.25]),
    ("default_embedding_fake_quant", "fq", "pc_ma", "quint8", "per_channel_affine_float_qparams", (0, 255), False, 1.0, None, 0, (6, 5),
     [(1, 1), (1, 1), (0, 1)], [1.0, 2.0, 1.5]),
    ("default_fused_act_fake_quant", "fused", "ma", "quint8", "per_tensor_affine", (0, 255), False, 0.01, None, -1, (3, 5, 4),
     [(1, 1), (1, 1), (0, 1), (1, 0), (1, 1), (0, 0)], [1.0, 2.0, 3.0, 0.5, 1.5, 1.0]),
    ("default_fused_wt_fake_quant", "fused", "ma", "qint8", "per_tensor_symmetric", (-128, 127), False, 0.01, None, -1, (6, 7),
     [(1, 1), (1, 1), (1, 1), (0, 1)], [0.3, 0.5, 0.2, 0.4]),
    ("fused_wt_range_neg_127_to_127", "fused", "ma", "qint8", "per_tensor_symmetric", (-127, 127), False, 0.01, 2.0 ** -12, -1, (6, 7),
     [(1, 1), (1, 1), (1, 1)], [0.3, 0.5, 0.2]),
    ("fused_quint8_reduce_range", "fused", "ma", "quint8", "per_tensor_affine", (0, 255), True, 0.5, None, -1, (30,),
     [(1, 1), (1, 1), (1, 1)], [1.0, 2.0, 0.1]),
    ("default_fused_per_channel_wt_fake_quant", "fused", "pc_ma", "qint8", "per_channel_symmetric", (-128, 127), False, 0.01, None, 0,
     (4, 3, 2, 2), [(1, 1), (1, 1), (0, 1), (1, 0), (1, 1)], [0.5, 0.7, 0.2, 0.6, 0.4]),
    ("fused_per_channel_affine_quint8", "fused", "pc_ma", "quint8", "per_channel_affine", (0, 255), False, 0.3, None, 0, (5, 6),
     [(1, 1), (1, 1), (1, 1)], [1.0, 2.0, 0.5]),
    ("fixed_0to1", "fixed", "fixed", "quint8", "per_tensor_affine", (0, 255), False, 0.0, None, -1, (3, 7),
     [(1, 1), (0, 1), (1, 0)], [1.0, 0.6, 1.0]),
    ("fixed_neg1to1", "fixed", "fixed", "quint8", "per_tensor_affine", (0, 255), False, 0.0, None, -1, (3, 7),
     [(1, 1), (1, 1)], [1.2, 0.8]),
]

FIXED = {"fixed_0to1": (1.0 / 256.0, 0), "fixed_neg1to1": (2.0 / 256.0, 128)}


def _build_fq(name, kind, observer, dtype, qscheme, custom, reduce_range, c, eps, ch_axis):
    obs = torch.ao.quantization.observer
    kwargs = {"dtype": _dtype(dtype), "qscheme": _qscheme(qscheme), "reduce_range": reduce_range}
    if eps is not None:
        kwargs["eps"] = eps
    if custom is not None:
        kwargs["quant_min"], kwargs["quant_max"] = custom
    if observer in ("pc_minmax", "pc_ma"):
        kwargs["ch_axis"] = ch_axis
    if observer in ("ma", "pc_ma"):
        kwargs["averaging_constant"] = c
    cls = {"minmax": obs.MinMaxObserver, "ma": obs.MovingAverageMinMaxObserver,
           "pc_minmax": obs.PerChannelMinMaxObserver, "pc_ma": obs.MovingAveragePerChannelMinMaxObserver}
    if kind == "fixed":
        scale, zp = FIXED[name]
        ob = obs.FixedQParamsObserver.with_args(scale=scale, zero_point=zp, dtype=torch.quint8,
                                                quant_min=custom[0], quant_max=custom[1])
        return FQ.FixedQParamsFakeQuantize(observer=ob)
    if kind == "fused":
        return FQ.FusedMovingAvgObsFakeQuantize(observer=cls[observer], **kwargs)
    return FQ.FakeQuantize(observer=cls[observer], **kwargs)


def _edge_input(rng, shape, scale):
    x = rng.uniform(-1.0, 1.0, shape) * scale
    x = x + rng.uniform(-0.3, 0.6) * scale  # shift the range so zero points move
    flat = x.reshape(-1)
    # a few exact round-half values relative to a step of 1/64 (ties in x / scale for power-of-two scales)
    flat[: min(3, flat.size)] = np.array([0.5, -0.5, 0.0])[: min(3, flat.size)] / 64.0 * scale
    return x.astype(np.float32)


def fake_quant_family():
    rng = np.random.default_rng(701)
    gf = GoldenFile(TOPIC, "fake_quant", "fake-quant modules: forward sequences with toggles")
    for (name, kind, observer, dtype, qscheme, custom, reduce_range, c, eps, ch_axis, shape, toggles, scales) in FQ_CASES:
        m = _build_fq(name, kind, observer, dtype, qscheme, custom, reduce_range, c, eps, ch_axis)
        xs, gys, ys, dxs, sc, zp, qp_len = [], [], [], [], [], [], []
        for (obs_on, fq_on), s in zip(toggles, scales):
            m.enable_observer(bool(obs_on))
            m.enable_fake_quant(bool(fq_on))
            x = _t(_edge_input(rng, shape, s)).requires_grad_(True)
            y = m(x)
            gy = _t(rng.uniform(-1, 1, shape))
            y.backward(gy)
            xs.append(x.detach().numpy().reshape(-1))
            gys.append(gy.numpy().reshape(-1))
            ys.append(y.detach().numpy().reshape(-1))
            dxs.append(x.grad.numpy().reshape(-1))
            sc.append(m.scale.detach().numpy().reshape(-1).astype(np.float32))
            zp.append(m.zero_point.detach().numpy().reshape(-1).astype(np.float32))
            qp_len.append(m.scale.numel())
        cq_s, cq_z = m.calculate_qparams()
        app = m.activation_post_process
        mn = getattr(app, "min_val", torch.zeros(0))
        mx = getattr(app, "max_val", torch.zeros(0))
        fixed_scale, fixed_zp = FIXED.get(name, (0.0, 0))
        qmin, qmax = custom if custom is not None else (0, 0)
        gf.case(name, {
            "kind": kind,
            "observer": observer,
            "dtype": dtype,
            "qscheme": qscheme,
            "custom": "yes" if custom is not None else "no",
            "quant_min": i64([qmin]),
            "quant_max": i64([qmax]),
            "reduce_range": "yes" if reduce_range else "no",
            "averaging_constant": f64([c]),
            "eps": f64([eps if eps is not None else float(np.finfo(np.float32).eps)]),
            "ch_axis": i64([ch_axis]),
            "fixed_scale": f64([fixed_scale]),
            "fixed_zp": i64([fixed_zp]),
            "steps": i64([len(toggles)]),
            "shape": i64(list(shape)),
            "obs_on": u8([t[0] for t in toggles]),
            "fq_on": u8([t[1] for t in toggles]),
            "x": f32(np.concatenate(xs)),
            "gy": f32(np.concatenate(gys)),
            "y": f32(np.concatenate(ys)),
            "dx": f32(np.concatenate(dxs)),
            "scale": f32(np.concatenate(sc)),
            "zero_point": f32(np.concatenate(zp)),
            "qp_len": i64(qp_len),
            "cq_scale": f32(cq_s.detach().numpy().reshape(-1).astype(np.float32)),
            "cq_zero_point": f32(cq_z.detach().numpy().reshape(-1).astype(np.float32)),
            "min_val": f32(mn.detach().numpy().reshape(-1)),
            "max_val": f32(mx.detach().numpy().reshape(-1)),
        })
    return gf


WFQ = {
    "fq_tensor": "default_weight_fake_quant",
    "fq_channel": "default_per_channel_weight_fake_quant",
    "fused_tensor": "default_fused_wt_fake_quant",
    "fused_channel": "default_fused_per_channel_wt_fake_quant",
}

# (name, op, wfq, x shape, out, kernel, stride, padding, groups, bias, freeze_bn)
LAYER_CASES = [
    ("linear_fq_tensor", "linear", "fq_tensor", (4, 8), 5, 0, 1, 0, 1, True, False),
    ("linear_relu_fused_channel", "linear_relu", "fused_channel", (2, 3, 6), 4, 0, 1, 0, 1, False, False),
    ("linear_fused_tensor", "linear", "fused_tensor", (5, 7), 3, 0, 1, 0, 1, True, False),
    ("conv_fq_channel", "conv", "fq_channel", (2, 3, 6, 6), 4, 3, 1, 1, 1, True, False),
    ("conv_relu_fused_tensor", "conv_relu", "fused_tensor", (1, 2, 7, 7), 3, 3, 2, 0, 1, True, False),
    ("convbn_fused_channel", "convbn", "fused_channel", (2, 3, 6, 6), 4, 3, 1, 1, 1, False, False),
    ("convbn_relu_fq_tensor_groups", "convbn_relu", "fq_tensor", (2, 4, 5, 5), 4, 3, 1, 1, 2, True, False),
    ("convbn_fused_tensor_frozen", "convbn", "fused_tensor", (3, 2, 5, 5), 3, 3, 1, 0, 1, True, True),
    ("conv1d_fq_channel", "conv1d", "fq_channel", (2, 4, 9), 6, 3, 2, 1, 2, True, False),
    ("convbn1d_fused_channel", "convbn1d", "fused_channel", (3, 4, 10), 5, 3, 1, 1, 1, False, False),
    ("convbn1d_relu_fq_channel_groups", "convbn1d_relu", "fq_channel", (2, 4, 9), 4, 3, 2, 1, 2, True, False),
    ("convbn1d_fq_tensor_frozen", "convbn1d", "fq_tensor", (3, 2, 8), 3, 3, 1, 0, 1, True, True),
    ("linearbn_fq_channel", "linearbn", "fq_channel", (6, 7), 5, 0, 1, 0, 1, True, False),
    ("linearbn_fused_tensor_nobias", "linearbn", "fused_tensor", (4, 6), 3, 0, 1, 0, 1, False, False),
    ("linearbn_fused_channel_frozen", "linearbn", "fused_channel", (5, 4), 3, 0, 1, 0, 1, True, True),
]


def _layer(op, wfq, shape, out, k, stride, padding, groups, bias, rng):
    nnqat = torch.ao.nn.qat
    nniqat = torch.ao.nn.intrinsic.qat
    qconfig = torch.ao.quantization.QConfig(activation=torch.nn.Identity, weight=getattr(FQ, WFQ[wfq]))
    cin = shape[1] if op.startswith("conv") else shape[-1]
    if op in ("linear", "linear_relu"):
        cls = nnqat.Linear if op == "linear" else nniqat.LinearReLU
        m = cls(cin, out, bias=bias, qconfig=qconfig)
    elif op == "linearbn":
        m = nniqat.LinearBn1d(cin, out, bias=bias, qconfig=qconfig)
    elif op in ("convbn1d", "convbn1d_relu"):
        cls = nniqat.ConvBn1d if op == "convbn1d" else nniqat.ConvBnReLU1d
        m = cls(cin, out, k, stride=stride, padding=padding, groups=groups, bias=bias, qconfig=qconfig)
    elif op == "conv1d":
        m = nnqat.Conv1d(cin, out, k, stride=stride, padding=padding, groups=groups, bias=bias, qconfig=qconfig)
    elif op in ("conv", "conv_relu"):
        cls = nnqat.Conv2d if op == "conv" else nniqat.ConvReLU2d
        m = cls(cin, out, k, stride=stride, padding=padding, groups=groups, bias=bias, qconfig=qconfig)
    else:
        cls = nniqat.ConvBn2d if op == "convbn" else nniqat.ConvBnReLU2d
        m = cls(cin, out, k, stride=stride, padding=padding, groups=groups, bias=bias, qconfig=qconfig)
    with torch.no_grad():
        m.weight.copy_(_t(rng.uniform(-0.5, 0.5, m.weight.shape)))
        if m.bias is not None:
            m.bias.copy_(_t(rng.uniform(-0.3, 0.3, m.bias.shape)))
        if hasattr(m, "bn"):
            m.bn.weight.copy_(_t(rng.uniform(0.5, 1.5, out)))
            m.bn.bias.copy_(_t(rng.uniform(-0.3, 0.3, out)))
            m.bn.running_mean.copy_(_t(rng.uniform(-0.2, 0.2, out)))
            m.bn.running_var.copy_(_t(rng.uniform(0.5, 2.0, out)))
    return m


def _grad_or_empty(p):
    if p is None or p.grad is None:
        return np.zeros(0, np.float32)
    return p.grad.detach().numpy().reshape(-1).copy()


def _flat(p):
    return np.zeros(0, np.float32) if p is None else p.detach().numpy().reshape(-1).copy()


def qat_layers_family():
    rng = np.random.default_rng(702)
    gf = GoldenFile(TOPIC, "qat_layers", "QAT layers: three SGD steps, to_float")
    lr = 0.1
    steps = 3
    for (name, op, wfq, shape, out, k, stride, padding, groups, bias, freeze) in LAYER_CASES:
        m = _layer(op, wfq, shape, out, k, stride, padding, groups, bias, rng)
        m.train()
        if freeze:
            m.freeze_bn_stats()
        bn = getattr(m, "bn", None)
        init = {
            "weight": f32(_flat(m.weight)),
            "bias": f32(_flat(m.bias)),
            "bn_weight": f32(_flat(bn.weight) if bn is not None else np.zeros(0, np.float32)),
            "bn_bias": f32(_flat(bn.bias) if bn is not None else np.zeros(0, np.float32)),
            "bn_mean": f32(_flat(bn.running_mean) if bn is not None else np.zeros(0, np.float32)),
            "bn_var": f32(_flat(bn.running_var) if bn is not None else np.zeros(0, np.float32)),
        }
        rec = {k2: [] for k2 in ("x", "gy", "y", "dx", "dweight", "dbias", "dbn_weight", "dbn_bias", "wfq_scale")}
        y_shape = None
        for _ in range(steps):
            x = _t(rng.uniform(-1.5, 1.5, shape)).requires_grad_(True)
            y = m(x)
            y_shape = list(y.shape)
            gy = _t(rng.uniform(-1, 1, y.shape))
            m.zero_grad()
            y.backward(gy)
            rec["x"].append(x.detach().numpy().reshape(-1))
            rec["gy"].append(gy.numpy().reshape(-1))
            rec["y"].append(y.detach().numpy().reshape(-1))
            rec["dx"].append(x.grad.numpy().reshape(-1))
            rec["dweight"].append(_grad_or_empty(m.weight))
            rec["dbias"].append(_grad_or_empty(m.bias))
            rec["dbn_weight"].append(_grad_or_empty(bn.weight) if bn is not None else np.zeros(0, np.float32))
            rec["dbn_bias"].append(_grad_or_empty(bn.bias) if bn is not None else np.zeros(0, np.float32))
            rec["wfq_scale"].append(m.weight_fake_quant.scale.detach().numpy().reshape(-1).copy())
            with torch.no_grad():
                for p in m.parameters():
                    if p.grad is not None:
                        p.add_(p.grad, alpha=-lr)
        fl = m.to_float()
        conv = fl[0] if isinstance(fl, torch.nn.Sequential) else fl
        # convert (quantized from_float): weight_post_process(folded weight), calculate_qparams()
        m.weight_fake_quant(conv.weight.detach())
        cq_scale, cq_zp = m.weight_fake_quant.calculate_qparams()
        fields = {
            "op": op,
            "wfq": wfq,
            "freeze_bn": "yes" if freeze else "no",
            "shape": i64(list(shape)),
            "y_shape": i64(y_shape),
            "out": i64([out]),
            "kernel": i64([k]),
            "stride": i64([stride]),
            "padding": i64([padding]),
            "groups": i64([groups]),
            "has_bias": "yes" if bias else "no",
            "lr": f64([lr]),
            "steps": i64([steps]),
        }
        fields.update(init)
        for k2, v in rec.items():
            fields[k2] = f32(np.concatenate(v))
        fields.update({
            "final_weight": f32(_flat(m.weight)),
            "final_bias": f32(_flat(m.bias)),
            "final_bn_weight": f32(_flat(bn.weight) if bn is not None else np.zeros(0, np.float32)),
            "final_bn_bias": f32(_flat(bn.bias) if bn is not None else np.zeros(0, np.float32)),
            "final_bn_mean": f32(_flat(bn.running_mean) if bn is not None else np.zeros(0, np.float32)),
            "final_bn_var": f32(_flat(bn.running_var) if bn is not None else np.zeros(0, np.float32)),
            "float_weight": f32(_flat(conv.weight)),
            "float_bias": f32(_flat(conv.bias)),
            "cq_scale": f32(cq_scale.detach().numpy().reshape(-1).astype(np.float32)),
            "cq_zero_point": i64(cq_zp.detach().numpy().reshape(-1).astype(np.int64)),
        })
        gf.case(name, fields)
    return gf


def interop_family(out_dir):
    """A QAT ConvBnReLU2d (per-channel FakeQuantize weights) and a QAT Linear (fused per-tensor
    weights) trained two SGD steps in torch, their state dicts saved with safetensors under the
    prefixes `conv.` and `fc.`, and the outputs of one more forward each (eval mode, BN frozen)."""
    import os

    from safetensors.torch import save_file

    rng = np.random.default_rng(703)
    conv = _layer("convbn_relu", "fq_channel", (2, 3, 6, 6), 4, 3, 1, 1, 1, True, rng)
    fc = _layer("linear", "fused_tensor", (3, 6), 5, 0, 1, 0, 1, True, rng)
    for m, shape in ((conv, (2, 3, 6, 6)), (fc, (3, 6))):
        m.train()
        for _ in range(2):
            y = m(_t(rng.uniform(-1, 1, shape)))
            m.zero_grad()
            y.square().sum().backward()
            with torch.no_grad():
                for p in m.parameters():
                    p.add_(p.grad, alpha=-0.05)
    state = {f"conv.{k}": v.detach().clone().contiguous() for k, v in conv.state_dict().items()}
    state.update({f"fc.{k}": v.detach().clone().contiguous() for k, v in fc.state_dict().items()})
    save_file(state, os.path.join(out_dir, "interop_qat.safetensors"))
    conv.freeze_bn_stats()
    conv.eval()
    fc.eval()
    gf = GoldenFile(TOPIC, "interop", "outputs of the QAT layers saved in interop_qat.safetensors")
    for name, m, shape in (("conv", conv, (2, 3, 6, 6)), ("fc", fc, (3, 6))):
        x = _t(rng.uniform(-1, 1, shape))
        y = m(x)
        gf.case(name, {
            "shape": i64(list(shape)),
            "x": f32(x),
            "y_shape": i64(list(y.shape)),
            "y": f32(y.detach()),
            "wfq_scale": f32(m.weight_fake_quant.scale.detach().numpy().reshape(-1).copy()),
        })
    return gf


def generate(out_dir):
    global torch, FQ
    torch = setup_torch()
    import torch.ao.nn.intrinsic.qat  # noqa: F401
    import torch.ao.nn.qat  # noqa: F401
    import torch.ao.quantization.fake_quantize as fq_mod

    FQ = fq_mod
    out = []
    for fam in (fake_quant_family, qat_layers_family):
        gf = fam()
        out.append((gf.write(out_dir), gf.case_count))
    gf = interop_family(out_dir)
    out.append((gf.write(out_dir), gf.case_count))
    return out
