"""Golden vectors for qnn's dynamic quantized modules (issue 6, torch.ao.nn.quantized.dynamic).

Families (one `<family>.golden` each, in crates/qnn/tests/data/dynamic):

* `linear` -- nnqd.Linear (qint8 weights, per-tensor symmetric / affine or per-channel
  symmetric, observed by torch's weight observers; and float16 weights) and nniqd.LinearReLU,
  built with `from_float` from a seeded nn.Linear, with and without bias, batch 1/7/64, odd K/N,
  2-d and 3-d inputs. Bit-exact contract.
  Fields: mode str qint8|fp16; relu str yes|no; w f32[N*K] (the float weight); has_bias str;
  bias f32[N or 0]; qscheme str per_tensor|per_channel (qint8 only); w_scales f64[C];
  w_zps i64[C]; x_shape i64[r]; x f32; y f32.
* `rnn` -- nnqd.LSTM / nnqd.GRU (multi-layer, bidirectional, batch_first), and nnqd.LSTMCell,
  GRUCell, RNNCell (tanh/relu), qint8 (per-tensor or per-channel weights) and float16, from
  float modules with seeded weights. Fields: module str; mode str; qscheme str; config i64[6]
  = (input, hidden, layers, bias, batch_first, bidirectional); x_shape i64[3 or 2]; x f32;
  has_state str; h0/c0 f32; for every parameter `p_<name>` f32 (float value) and, for qint8
  weights, `s_<name>` f64 / `z_<name>` i64 (the observer's qparams); outputs `out` f32,
  `h_n` f32, `c_n` f32 (LSTM / LSTMCell).
"""

from __future__ import annotations

import numpy as np

from golden_io import GoldenFile, f32, f64, i64
from torch_env import setup_torch

TOPIC = "dynamic"
OUT_DIR = "crates/qnn/tests/data/dynamic"

torch = None  # set by generate()


def _t(arr):
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def _observer(qscheme):
    from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

    if qscheme == "per_channel":
        return PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    if qscheme == "per_tensor_affine":
        return MinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_tensor_affine)
    return MinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)


def _qconfig(mode, qscheme):
    from torch.ao.quantization import QConfig, PlaceholderObserver, float16_dynamic_qconfig

    if mode == "fp16":
        return float16_dynamic_qconfig
    return QConfig(activation=PlaceholderObserver.with_args(dtype=torch.quint8, is_dynamic=True), weight=_observer(qscheme))


def _qparams(w, qscheme):
    obs = _observer(qscheme)()
    obs(w)
    s, z = obs.calculate_qparams()
    return s.reshape(-1).to(torch.float64).numpy(), z.reshape(-1).to(torch.int64).numpy()


def linear_family():
    import torch.ao.nn.intrinsic as nni
    import torch.ao.nn.intrinsic.quantized.dynamic as nniqd
    import torch.ao.nn.quantized.dynamic as nnqd

    rng = np.random.default_rng(6001)
    gf = GoldenFile(TOPIC, "linear", "nnqd.Linear (qint8 / fp16) and nniqd.LinearReLU from_float, f32 in and out")
    # (K, N, x_shape prefix)
    shapes = [(13, 7, (1,)), (33, 17, (7,)), (24, 16, (64,)), (31, 9, (2, 3)), (600, 5, (2,)), (1100, 3, (2,))]
    idx = 0
    for k, n, prefix in shapes:
        for mode, qscheme in [("qint8", "per_tensor"), ("qint8", "per_channel"), ("qint8", "per_tensor_affine"), ("fp16", "none")]:
            if qscheme == "per_tensor_affine" and k not in (13, 24):
                continue
            if k > 512 and qscheme not in ("per_tensor", "none"):
                continue
            for has_bias in (True, False) if k < 512 else (True,):
                relu = idx % 3 == 1
                idx += 1
                lin = torch.nn.Linear(k, n, bias=has_bias)
                with torch.no_grad():
                    lin.weight.copy_(_t(rng.standard_normal((n, k)) * (0.8 / np.sqrt(k))))
                    if has_bias:
                        lin.bias.copy_(_t(rng.standard_normal(n) * 0.3))
                float_mod = nni.LinearReLU(lin, torch.nn.ReLU()) if relu else lin
                float_mod.qconfig = _qconfig(mode, qscheme)
                if relu:
                    lin.qconfig = float_mod.qconfig
                    q = nniqd.LinearReLU.from_float(float_mod)
                else:
                    q = nnqd.Linear.from_float(float_mod)
                x = _t(rng.standard_normal(prefix + (k,)) * rng.uniform(0.2, 3.0) + rng.uniform(-0.5, 0.5))
                y = q(x)
                fields = {
                    "mode": mode,
                    "relu": "yes" if relu else "no",
                    "w": f32(lin.weight.detach()),
                    "has_bias": "yes" if has_bias else "no",
                    "bias": f32(lin.bias.detach() if has_bias else np.zeros(0, np.float32)),
                }
                if mode == "qint8":
                    s, z = _qparams(lin.weight.detach(), qscheme)
                    qw = q.weight()
                    if qscheme == "per_channel":
                        assert np.array_equal(qw.q_per_channel_scales().numpy(), s)
                    else:
                        assert qw.q_scale() == float(s[0]) and qw.q_zero_point() == int(z[0])
                    fields.update({
                        "qscheme": "per_channel" if qscheme == "per_channel" else "per_tensor",
                        "w_scales": f64(s),
                        "w_zps": i64(z),
                    })
                fields.update({"x_shape": i64(np.array(x.shape)), "x": f32(x), "y": f32(y.detach())})
                gf.case(f"{mode}_{qscheme}_k{k}_n{n}_m{int(np.prod(prefix))}_{'bias' if has_bias else 'nobias'}{'_relu' if relu else ''}", fields)
    return gf


def _rnn_case(gf, rng, name, module, mode, qscheme, cfg, x_shape, with_state, relu=False):
    import torch.ao.nn.quantized.dynamic as nnqd

    i, h, layers, bias, batch_first, bidir = cfg
    if module in ("LSTM", "GRU"):
        f = getattr(torch.nn, module)(i, h, num_layers=layers, bias=bool(bias), batch_first=bool(batch_first), bidirectional=bool(bidir))
    elif module == "RNNCell":
        f = torch.nn.RNNCell(i, h, bias=bool(bias), nonlinearity="relu" if relu else "tanh")
    else:
        f = getattr(torch.nn, module)(i, h, bias=bool(bias))
    fields = {"module": module, "mode": mode, "qscheme": qscheme, "relu": "yes" if relu else "no", "config": i64(np.array(cfg))}
    with torch.no_grad():
        for pname, p in f.named_parameters():
            p.copy_(_t(rng.standard_normal(tuple(p.shape)) * (1.2 / np.sqrt(h))))
    for pname, p in f.named_parameters():
        fields[f"p_{pname}"] = f32(p.detach())
        if mode == "qint8" and pname.startswith("weight"):
            sc, zp = _qparams(p.detach(), qscheme)
            fields[f"s_{pname}"] = f64(sc)
            fields[f"z_{pname}"] = i64(zp)
    f.qconfig = _qconfig(mode, qscheme)
    q = getattr(nnqd, module).from_float(f)
    x = _t(rng.standard_normal(x_shape) * 1.5)
    fields["x_shape"] = i64(np.array(x_shape))
    fields["x"] = f32(x)
    fields["has_state"] = "yes" if with_state else "no"
    is_lstm = module in ("LSTM", "LSTMCell")
    if module in ("LSTM", "GRU"):
        b = x_shape[0] if batch_first else x_shape[1]
        sshape = (layers * (2 if bidir else 1), b, h)
    else:
        sshape = (x_shape[0], h)
    h0 = _t(rng.standard_normal(sshape) * 0.5)
    c0 = _t(rng.standard_normal(sshape) * 0.5)
    if with_state:
        fields["h0"] = f32(h0)
        if is_lstm:
            fields["c0"] = f32(c0)
    state = ((h0, c0) if is_lstm else h0) if with_state else None
    if module in ("LSTM", "GRU"):
        out, hn = q(x, state) if with_state else q(x)
        fields["out"] = f32(out.detach())
        if is_lstm:
            fields["h_n"] = f32(hn[0].detach())
            fields["c_n"] = f32(hn[1].detach())
        else:
            fields["h_n"] = f32(hn.detach())
    else:
        res = q(x, state) if with_state else q(x)
        if is_lstm:
            fields["h_n"] = f32(res[0].detach())
            fields["c_n"] = f32(res[1].detach())
        else:
            fields["h_n"] = f32(res.detach())
    gf.case(name, fields)


def rnn_family():
    rng = np.random.default_rng(6002)
    gf = GoldenFile(TOPIC, "rnn", "nnqd.LSTM / GRU / LSTMCell / GRUCell / RNNCell (qint8 and fp16) from_float, f32 in and out")
    # config = (input, hidden, layers, bias, batch_first, bidirectional)
    seq = [
        ("uni", (5, 6, 1, 1, 0, 0), (4, 3, 5), False),
        ("deep_bidir_bf_state", (7, 5, 2, 1, 1, 1), (2, 5, 7), True),
        ("deep", (6, 8, 2, 1, 0, 0), (6, 2, 6), True),
    ]
    for module in ("LSTM", "GRU"):
        for mode, qscheme in (("qint8", "per_tensor"), ("qint8", "per_channel"), ("fp16", "none")):
            for tag, cfg, xs, st in seq:
                _rnn_case(gf, rng, f"{module}_{mode}_{qscheme}_{tag}", module, mode, qscheme, cfg, xs, st)
    for module in ("LSTMCell", "GRUCell", "RNNCell"):
        for mode, qscheme in (("qint8", "per_tensor"), ("qint8", "per_channel"), ("fp16", "none")):
            for bias in (1,):
                for st in (False, True):
                    relus = (False, True) if module == "RNNCell" else (False,)
                    for relu in relus:
                        name = f"{module}_{mode}_{qscheme}_{'bias' if bias else 'nobias'}_{'state' if st else 'nostate'}{'_relu' if relu else ''}"
                        _rnn_case(gf, rng, name, module, mode, qscheme, (6, 7, 1, bias, 0, 0), (3, 6), st, relu)
    return gf


def generate(out_dir):
    global torch
    torch = setup_torch()
    written = []
    for family in (linear_family, rnn_family):
        gf = family()
        written.append((gf.write(out_dir), gf.case_count))
    return written
