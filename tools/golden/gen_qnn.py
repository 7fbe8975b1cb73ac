"""Golden vectors for the float modules of crates/qnn (issue 5): forward and backward.

Families (one `<family>.golden` each, in crates/qnn/tests/data):

* `linear`      -- nn.Linear: y, dx, dweight, dbias for inputs of rank 2 and 3, with/without bias.
* `conv2d`      -- nn.Conv2d over stride / padding / dilation / groups / bias combinations.
* `conv1d`      -- nn.Conv1d, same fields as conv2d with 1-element kernel/stride/padding/dilation.
* `conv_transpose2d` -- nn.ConvTranspose2d, conv2d fields plus output_padding.
* `batchnorm2d` -- nn.BatchNorm2d in train mode (batch stats; running stats after the step,
  momentum 0.1 and None) and eval mode (given running stats).
* `activation`  -- ReLU, ReLU6, LeakyReLU, ELU, Hardswish, Hardsigmoid, GELU, SiLU, Sigmoid,
  Tanh, Softmax, LogSoftmax: y and dx.
* `pool`        -- MaxPool2d, AvgPool2d, AdaptiveAvgPool2d: y and dx.
* `layernorm`   -- nn.LayerNorm: y, dx, dweight, dbias.
* `embedding`   -- nn.Embedding (with/without padding_idx) and nn.EmbeddingBag (sum, mean, max;
  2-d input or 1-d input with offsets, including an empty bag): y and dweight.
* `rnn`         -- nn.RNN / nn.LSTM / nn.GRU (layers, bidirectional, batch_first, bias): outputs,
  final states, and gradients of x, h0, c0 and every parameter (flattened in parameter order).
* `attention`   -- nn.MultiheadAttention (need_weights, averaged) and nn.TransformerEncoderLayer
  (dropout 0, post-/pre-norm, relu/gelu): outputs, input and parameter gradients.
* `loss`        -- nn.CrossEntropyLoss / nn.MSELoss (mean): loss and input gradient.
* `optim`       -- SGD / Adam / AdamW (foreach=False): the parameter after each of 3 steps.
* `interop`     -- a small conv net trained a few steps in torch, its state dict saved with
  `safetensors.torch.save_file` as `interop_small.safetensors`, and eval-mode outputs for a
  batch (needs the `safetensors` Python package).

Every case stores the input `x` with its `shape`, the upstream gradient `gy`, the module's
parameters and options, and torch's outputs. Float GEMMs sum in a different order than
torch's, so the Rust tests compare with a tolerance, not bit for bit.

Fields (the contract with crates/qnn/tests/golden.rs):
  all: shape i64[..]; x f32; gy f32; y f32; y_shape i64[..]; dx f32
  linear: weight f32[out*in]; w_shape i64[2]; has_bias str; bias f32; dweight f32; dbias f32
  conv2d: in_channels out_channels groups i64[1]; kernel stride padding dilation i64[2];
          has_bias str; weight f32; bias f32; dweight f32; dbias f32
  batchnorm2d: mode str train|eval; momentum f64[1] (-1 = None); eps f64[1]; weight bias f32[C];
          running_mean running_var f32[C] (before); new_running_mean new_running_var f32[C] (after);
          dweight dbias f32[C]
  activation: op str; param f64[1] (slope / alpha / dim)
  pool: op str max|avg|adaptive; kernel stride padding dilation i64[2]; ceil str;
        count_include_pad str; divisor i64[1] (0 = None); out_size i64[2]
  layernorm: norm_shape i64[..]; eps f64[1]; weight bias f32; dweight dbias f32
  embedding: op str embedding|bag; w_shape i64[2]; weight f32; idx i32; idx_shape i64[..];
             offsets i32 (empty = 2-d input); mode str sum|mean|max|none; padding_idx i64[1] (-1 = None);
             gy f32; y f32; y_shape i64[..]; dweight f32
  rnn: op str lstm|gru|rnn; input_size hidden_size num_layers i64[1]; bias batch_first
       bidirectional str; params f32 (all, in named_parameters order); shape state_shape y_shape
       i64; x h0 c0 f32; y h_n c_n f32; gy ghn gcn f32; dx dh0 dc0 dparams f32
  attention: op str mha|encoder; embed_dim num_heads dim_feedforward i64[1]; batch_first
       norm_first activation str; names str (comma-joined parameter names); sizes i64; params
       dparams f32; q k v f32 with q_shape kv_shape; y y_shape; w w_shape (mha); gy gw; dq dk dv
  loss: op str ce|mse; shape i64[2]; x f32; target i64[N] (ce) or f32 (mse); loss f32[1]; dx f32
  optim: op str sgd|adam|adamw; lr momentum dampening weight_decay beta1 beta2 eps f64[1];
         nesterov amsgrad str; p0 f32[n]; grads f32[3*n]; params f32[3*n] (after each step)
  interop: shape i64[4]; x f32; y_shape i64[2]; y f32 (model in eval mode)
"""

from __future__ import annotations

import os

import numpy as np

from golden_io import GoldenFile, f32, f64, i64
from torch_env import setup_torch

TOPIC = "qnn"
OUT_DIR = "crates/qnn/tests/data"
# Generated on an AVX-512 VNNI CPU: without VNNI fbgemm saturates int16 pairs (full-range
# activations here) and float kernels sum in another order, so the files differ there.
CPU = "avx512-vnni"

torch = None  # set by generate()


def _t(arr):
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def _run(module, x_np, rng):
    """Forward + backward with a random upstream gradient; returns (x, gy, y, dx) numpy arrays."""
    x = _t(x_np).requires_grad_(True)
    y = module(x)
    gy = _t(rng.uniform(-1, 1, y.shape))
    y.backward(gy)
    return x.detach().numpy(), gy.numpy(), y.detach().numpy(), x.grad.numpy()


def _common(x, gy, y, dx):
    return {
        "shape": i64(list(x.shape)),
        "x": f32(x),
        "gy": f32(gy),
        "y": f32(y),
        "y_shape": i64(list(y.shape)),
        "dx": f32(dx),
    }


def _grad(p):
    return p.grad.numpy() if p is not None and p.grad is not None else np.zeros(0, np.float32)


def linear_family():
    rng = np.random.default_rng(501)
    gf = GoldenFile(TOPIC, "linear", "nn.Linear forward and backward")
    for i, (lead, fin, fout, bias) in enumerate([((4,), 8, 5, True), ((2, 3), 7, 4, False), ((16,), 64, 30, True), ((1,), 1, 1, True)]):
        m = torch.nn.Linear(fin, fout, bias=bias)
        with torch.no_grad():
            m.weight.copy_(_t(rng.uniform(-0.5, 0.5, (fout, fin))))
            if bias:
                m.bias.copy_(_t(rng.uniform(-0.5, 0.5, fout)))
        x, gy, y, dx = _run(m, rng.uniform(-2, 2, lead + (fin,)), rng)
        fields = _common(x, gy, y, dx)
        fields.update({
            "weight": f32(m.weight.detach()),
            "w_shape": i64([fout, fin]),
            "has_bias": "yes" if bias else "no",
            "bias": f32(m.bias.detach() if bias else np.zeros(0, np.float32)),
            "dweight": f32(m.weight.grad),
            "dbias": f32(_grad(m.bias)),
        })
        gf.case(f"linear_{i}", fields)
    return gf


CONV_CASES = [
    # (N, Cin, H, W, Cout, kernel, stride, padding, dilation, groups, bias)
    (2, 3, 7, 6, 4, (3, 3), (1, 1), (0, 0), (1, 1), 1, True),
    (1, 2, 8, 8, 3, (3, 3), (2, 2), (1, 1), (1, 1), 1, True),
    (2, 4, 6, 7, 4, (2, 3), (1, 2), (1, 0), (2, 1), 2, False),
    (1, 6, 5, 5, 6, (3, 3), (1, 1), (1, 1), (1, 1), 6, True),
    (3, 1, 12, 12, 6, (5, 5), (1, 1), (0, 0), (1, 1), 1, True),
    (2, 6, 6, 6, 16, (5, 5), (1, 1), (2, 2), (1, 1), 2, True),
]


def conv2d_family():
    rng = np.random.default_rng(502)
    gf = GoldenFile(TOPIC, "conv2d", "nn.Conv2d forward and backward")
    for i, (n, cin, h, w, cout, k, s, p, d, g, bias) in enumerate(CONV_CASES):
        m = torch.nn.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, groups=g, bias=bias)
        with torch.no_grad():
            m.weight.copy_(_t(rng.uniform(-0.5, 0.5, tuple(m.weight.shape))))
            if bias:
                m.bias.copy_(_t(rng.uniform(-0.5, 0.5, cout)))
        x, gy, y, dx = _run(m, rng.uniform(-2, 2, (n, cin, h, w)), rng)
        fields = _common(x, gy, y, dx)
        fields.update({
            "in_channels": i64([cin]), "out_channels": i64([cout]), "groups": i64([g]),
            "kernel": i64(list(k)), "stride": i64(list(s)), "padding": i64(list(p)), "dilation": i64(list(d)),
            "has_bias": "yes" if bias else "no",
            "weight": f32(m.weight.detach()),
            "bias": f32(m.bias.detach() if bias else np.zeros(0, np.float32)),
            "dweight": f32(m.weight.grad),
            "dbias": f32(_grad(m.bias)),
        })
        gf.case(f"conv2d_{i}", fields)
    return gf


CONV1D_CASES = [
    # (N, Cin, L, Cout, k, stride, padding, dilation, groups, bias)
    (2, 3, 10, 4, 3, 1, 0, 1, 1, True),
    (1, 4, 11, 6, 3, 2, 1, 2, 2, False),
    (3, 2, 7, 2, 1, 1, 0, 1, 2, True),
]

CONVT_CASES = [
    # (N, Cin, H, W, Cout, kernel, stride, padding, output_padding, dilation, groups, bias)
    (2, 3, 4, 5, 2, (3, 3), (1, 1), (0, 0), (0, 0), (1, 1), 1, True),
    (1, 2, 3, 3, 4, (3, 3), (2, 2), (1, 1), (1, 1), (1, 1), 1, True),
    (2, 4, 3, 4, 6, (2, 3), (2, 1), (0, 1), (1, 0), (1, 2), 2, False),
    (1, 3, 4, 4, 3, (4, 4), (2, 2), (1, 1), (0, 0), (1, 1), 3, True),
]


def conv1d_family():
    rng = np.random.default_rng(510)
    gf = GoldenFile(TOPIC, "conv1d", "nn.Conv1d forward and backward")
    for i, (n, cin, length, cout, k, s, p, d, g, bias) in enumerate(CONV1D_CASES):
        m = torch.nn.Conv1d(cin, cout, k, stride=s, padding=p, dilation=d, groups=g, bias=bias)
        with torch.no_grad():
            m.weight.copy_(_t(rng.uniform(-0.5, 0.5, tuple(m.weight.shape))))
            if bias:
                m.bias.copy_(_t(rng.uniform(-0.5, 0.5, cout)))
        x, gy, y, dx = _run(m, rng.uniform(-2, 2, (n, cin, length)), rng)
        fields = _common(x, gy, y, dx)
        fields.update({
            "in_channels": i64([cin]), "out_channels": i64([cout]), "groups": i64([g]),
            "kernel": i64([k]), "stride": i64([s]), "padding": i64([p]), "dilation": i64([d]),
            "has_bias": "yes" if bias else "no", "weight": f32(m.weight.detach()),
            "bias": f32(m.bias.detach() if bias else np.zeros(0, np.float32)),
            "dweight": f32(m.weight.grad), "dbias": f32(_grad(m.bias)),
        })
        gf.case(f"conv1d_{i}", fields)
    return gf


def conv_transpose2d_family():
    rng = np.random.default_rng(511)
    gf = GoldenFile(TOPIC, "conv_transpose2d", "nn.ConvTranspose2d forward and backward")
    for i, (n, cin, h, w, cout, k, s, p, op, d, g, bias) in enumerate(CONVT_CASES):
        m = torch.nn.ConvTranspose2d(cin, cout, k, stride=s, padding=p, output_padding=op, dilation=d, groups=g, bias=bias)
        with torch.no_grad():
            m.weight.copy_(_t(rng.uniform(-0.5, 0.5, tuple(m.weight.shape))))
            if bias:
                m.bias.copy_(_t(rng.uniform(-0.5, 0.5, cout)))
        x, gy, y, dx = _run(m, rng.uniform(-2, 2, (n, cin, h, w)), rng)
        fields = _common(x, gy, y, dx)
        fields.update({
            "in_channels": i64([cin]), "out_channels": i64([cout]), "groups": i64([g]),
            "kernel": i64(list(k)), "stride": i64(list(s)), "padding": i64(list(p)),
            "output_padding": i64(list(op)), "dilation": i64(list(d)),
            "has_bias": "yes" if bias else "no", "weight": f32(m.weight.detach()),
            "bias": f32(m.bias.detach() if bias else np.zeros(0, np.float32)),
            "dweight": f32(m.weight.grad), "dbias": f32(_grad(m.bias)),
        })
        gf.case(f"conv_transpose2d_{i}", fields)
    return gf


def batchnorm2d_family():
    rng = np.random.default_rng(503)
    gf = GoldenFile(TOPIC, "batchnorm2d", "nn.BatchNorm2d train/eval forward and backward, running stats")
    for i, (mode, momentum, shape) in enumerate([("train", 0.1, (4, 3, 5, 5)), ("train", None, (2, 2, 3, 4)), ("eval", 0.1, (3, 4, 2, 3)), ("train", 0.3, (8, 6, 4, 4))]):
        c = shape[1]
        m = torch.nn.BatchNorm2d(c, momentum=momentum)
        with torch.no_grad():
            m.weight.copy_(_t(rng.uniform(0.5, 1.5, c)))
            m.bias.copy_(_t(rng.uniform(-0.5, 0.5, c)))
            m.running_mean.copy_(_t(rng.uniform(-0.5, 0.5, c)))
            m.running_var.copy_(_t(rng.uniform(0.5, 2.0, c)))
        rm0 = m.running_mean.clone().numpy()
        rv0 = m.running_var.clone().numpy()
        m.train(mode == "train")
        x, gy, y, dx = _run(m, rng.normal(0.3, 1.5, shape), rng)
        fields = _common(x, gy, y, dx)
        fields.update({
            "mode": mode,
            "momentum": f64([-1.0 if momentum is None else momentum]),
            "eps": f64([m.eps]),
            "weight": f32(m.weight.detach()), "bias": f32(m.bias.detach()),
            "running_mean": f32(rm0), "running_var": f32(rv0),
            "new_running_mean": f32(m.running_mean), "new_running_var": f32(m.running_var),
            "dweight": f32(m.weight.grad), "dbias": f32(m.bias.grad),
        })
        gf.case(f"batchnorm2d_{i}", fields)
    return gf


def activation_family():
    rng = np.random.default_rng(504)
    nn = torch.nn
    ops = [
        ("relu", 0.0, nn.ReLU()), ("relu6", 0.0, nn.ReLU6()), ("leaky_relu", 0.2, nn.LeakyReLU(0.2)),
        ("elu", 1.3, nn.ELU(1.3)), ("hardswish", 0.0, nn.Hardswish()), ("hardsigmoid", 0.0, nn.Hardsigmoid()),
        ("gelu", 0.0, nn.GELU()), ("silu", 0.0, nn.SiLU()), ("sigmoid", 0.0, nn.Sigmoid()), ("tanh", 0.0, nn.Tanh()),
        ("softmax", 1.0, nn.Softmax(dim=1)), ("softmax", -1.0, nn.Softmax(dim=-1)),
        ("log_softmax", 1.0, nn.LogSoftmax(dim=1)), ("log_softmax", -1.0, nn.LogSoftmax(dim=-1)),
    ]
    gf = GoldenFile(TOPIC, "activation", "element-wise activations, softmax and log-softmax: forward and backward")
    for i, (op, param, m) in enumerate(ops):
        x_np = rng.uniform(-7, 7, (3, 5, 4))
        # keep away from kinks (where PyTorch picks one one-sided derivative) by >= 1e-3
        for kink in (0.0, 6.0, -3.0, 3.0):
            near = np.abs(x_np - kink) < 1e-3
            x_np[near] = kink + 1e-2
        x, gy, y, dx = _run(m, x_np, rng)
        fields = _common(x, gy, y, dx)
        fields.update({"op": op, "param": f64([param])})
        gf.case(f"{op}_{i}", fields)
    return gf


POOL_CASES = [
    # (op, shape, kernel, stride, padding, dilation, ceil, count_include_pad, divisor, out_size)
    ("max", (2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), False, True, 0, (0, 0)),
    ("max", (1, 2, 7, 6), (3, 3), (2, 2), (1, 1), (1, 1), True, True, 0, (0, 0)),
    ("max", (1, 2, 9, 9), (3, 2), (1, 2), (1, 0), (2, 2), False, True, 0, (0, 0)),
    ("avg", (2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), False, True, 0, (0, 0)),
    ("avg", (1, 2, 7, 6), (3, 3), (2, 2), (1, 1), (1, 1), True, False, 0, (0, 0)),
    ("avg", (1, 2, 7, 7), (3, 2), (2, 1), (1, 1), (1, 1), True, True, 0, (0, 0)),
    ("avg", (1, 1, 6, 5), (2, 2), (1, 2), (1, 0), (1, 1), False, True, 3, (0, 0)),
    ("adaptive", (2, 2, 7, 5), (0, 0), (0, 0), (0, 0), (1, 1), False, True, 0, (3, 2)),
    ("adaptive", (1, 3, 5, 5), (0, 0), (0, 0), (0, 0), (1, 1), False, True, 0, (1, 1)),
    ("adaptive", (1, 1, 4, 6), (0, 0), (0, 0), (0, 0), (1, 1), False, True, 0, (5, 4)),
]


def pool_family():
    rng = np.random.default_rng(505)
    nn = torch.nn
    gf = GoldenFile(TOPIC, "pool", "MaxPool2d, AvgPool2d, AdaptiveAvgPool2d forward and backward")
    for i, (op, shape, k, s, p, d, ceil, cip, div, out) in enumerate(POOL_CASES):
        if op == "max":
            m = nn.MaxPool2d(k, s, p, d, ceil_mode=ceil)
        elif op == "avg":
            m = nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=cip, divisor_override=div or None)
        else:
            m = nn.AdaptiveAvgPool2d(out)
        n = int(np.prod(shape))
        # distinct values: no ties inside a max window
        x_np = (rng.permutation(n).astype(np.float32) * 0.01 - n * 0.005).reshape(shape)
        x, gy, y, dx = _run(m, x_np, rng)
        fields = _common(x, gy, y, dx)
        fields.update({
            "op": op, "kernel": i64(list(k)), "stride": i64(list(s)), "padding": i64(list(p)),
            "dilation": i64(list(d)), "ceil": "yes" if ceil else "no",
            "count_include_pad": "yes" if cip else "no", "divisor": i64([div]), "out_size": i64(list(out)),
        })
        gf.case(f"{op}_{i}", fields)
    return gf


def layernorm_family():
    rng = np.random.default_rng(506)
    gf = GoldenFile(TOPIC, "layernorm", "nn.LayerNorm forward and backward")
    for i, (shape, norm) in enumerate([((4, 6), (6,)), ((2, 3, 4, 5), (4, 5)), ((3, 16), (16,))]):
        m = torch.nn.LayerNorm(norm)
        with torch.no_grad():
            m.weight.copy_(_t(rng.uniform(0.5, 1.5, norm)))
            m.bias.copy_(_t(rng.uniform(-0.5, 0.5, norm)))
        x, gy, y, dx = _run(m, rng.normal(0.5, 2.0, shape), rng)
        fields = _common(x, gy, y, dx)
        fields.update({
            "norm_shape": i64(list(norm)), "eps": f64([m.eps]),
            "weight": f32(m.weight.detach()), "bias": f32(m.bias.detach()),
            "dweight": f32(m.weight.grad), "dbias": f32(m.bias.grad),
        })
        gf.case(f"layernorm_{i}", fields)
    return gf


def embedding_family():
    from golden_io import i32

    rng = np.random.default_rng(512)
    gf = GoldenFile(TOPIC, "embedding", "nn.Embedding and nn.EmbeddingBag forward and weight gradient")

    def emit(name, op, m, idx, offsets, mode, padding_idx):
        args = (torch.from_numpy(idx),) if offsets is None else (torch.from_numpy(idx), torch.from_numpy(offsets))
        y = m(*args)
        gy = _t(rng.uniform(-1, 1, y.shape))
        y.backward(gy)
        gf.case(name, {
            "op": op, "w_shape": i64(list(m.weight.shape)), "weight": f32(m.weight.detach()),
            "idx": i32(idx), "idx_shape": i64(list(idx.shape)),
            "offsets": i32(np.zeros(0, np.int64) if offsets is None else offsets), "mode": mode,
            "padding_idx": i64([-1 if padding_idx is None else padding_idx]),
            "gy": f32(gy), "y": f32(y.detach()), "y_shape": i64(list(y.shape)), "dweight": f32(m.weight.grad),
        })

    for i, pad in enumerate([None, 2]):
        m = torch.nn.Embedding(7, 4, padding_idx=pad)
        idx = rng.integers(0, 7, (3, 5))
        idx[0, 0] = 2
        emit(f"embedding_{i}", "embedding", m, idx, None, "none", pad)
    for i, mode in enumerate(["sum", "mean", "max"]):
        m = torch.nn.EmbeddingBag(9, 3, mode=mode)
        emit(f"bag2d_{mode}", "bag", m, rng.integers(0, 9, (4, 3)), None, mode, None)
        m = torch.nn.EmbeddingBag(9, 3, mode=mode)
        idx = rng.integers(0, 9, 10)
        offsets = np.array([0, 3, 3, 7])  # bag 1 is empty
        emit(f"bag_offsets_{mode}", "bag", m, idx, offsets, mode, None)
    return gf


RNN_CASES = [
    # (op, I, H, layers, bias, batch_first, bidirectional, T, B)
    ("lstm", 3, 4, 1, True, False, False, 5, 2),
    ("lstm", 4, 3, 2, True, True, True, 4, 3),
    ("gru", 3, 4, 2, True, False, True, 4, 2),
    ("gru", 2, 5, 1, False, True, False, 3, 2),
    ("rnn", 3, 4, 2, True, False, False, 4, 2),
]


def rnn_family():
    rng = np.random.default_rng(513)
    gf = GoldenFile(TOPIC, "rnn", "nn.RNN / nn.LSTM / nn.GRU forward and backward through time")
    for i, (op, isz, hsz, layers, bias, bf, bi, t, b) in enumerate(RNN_CASES):
        cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[op]
        m = cls(isz, hsz, num_layers=layers, bias=bias, batch_first=bf, bidirectional=bi)
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(_t(rng.uniform(-0.6, 0.6, tuple(p.shape))))
        d = 2 if bi else 1
        x = _t(rng.uniform(-1, 1, (b, t, isz) if bf else (t, b, isz))).requires_grad_(True)
        h0 = _t(rng.uniform(-1, 1, (layers * d, b, hsz))).requires_grad_(True)
        c0 = _t(rng.uniform(-1, 1, (layers * d, b, hsz))).requires_grad_(True)
        if op == "lstm":
            y, (hn, cn) = m(x, (h0, c0))
        else:
            y, hn = m(x, h0)
            cn = None
        gy = _t(rng.uniform(-1, 1, tuple(y.shape)))
        ghn = _t(rng.uniform(-1, 1, tuple(hn.shape)))
        gcn = _t(rng.uniform(-1, 1, tuple(hn.shape)))
        outs, grads = [y, hn], [gy, ghn]
        if cn is not None:
            outs.append(cn)
            grads.append(gcn)
        torch.autograd.backward(outs, grads)
        empty = np.zeros(0, np.float32)
        gf.case(f"{op}_{i}", {
            "op": op, "input_size": i64([isz]), "hidden_size": i64([hsz]), "num_layers": i64([layers]),
            "bias": "yes" if bias else "no", "batch_first": "yes" if bf else "no", "bidirectional": "yes" if bi else "no",
            "params": f32(np.concatenate([p.detach().numpy().reshape(-1) for p in m.parameters()])),
            "shape": i64(list(x.shape)), "state_shape": i64(list(h0.shape)), "y_shape": i64(list(y.shape)),
            "x": f32(x.detach()), "h0": f32(h0.detach()), "c0": f32(c0.detach()),
            "y": f32(y.detach()), "h_n": f32(hn.detach()), "c_n": f32(cn.detach() if cn is not None else empty),
            "gy": f32(gy), "ghn": f32(ghn), "gcn": f32(gcn),
            "dx": f32(x.grad), "dh0": f32(h0.grad), "dc0": f32(c0.grad if c0.grad is not None else empty),
            "dparams": f32(np.concatenate([p.grad.numpy().reshape(-1) for p in m.parameters()])),
        })
    return gf


def attention_family():
    rng = np.random.default_rng(514)
    gf = GoldenFile(TOPIC, "attention", "nn.MultiheadAttention and nn.TransformerEncoderLayer forward and backward")

    def set_params(m):
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(_t(rng.uniform(-0.5, 0.5, tuple(p.shape))))

    def params_fields(m):
        named = list(m.named_parameters())
        return {
            "names": ",".join(n for n, _ in named),
            "sizes": i64([p.numel() for _, p in named]),
            "params": f32(np.concatenate([p.detach().numpy().reshape(-1) for _, p in named])),
            "dparams": f32(np.concatenate([p.grad.numpy().reshape(-1) for _, p in named])),
        }

    for i, (e, h, l, s, n, bf) in enumerate([(4, 2, 3, 5, 2, False), (6, 3, 4, 4, 3, True)]):
        m = torch.nn.MultiheadAttention(e, h, batch_first=bf)
        set_params(m)
        shp = (lambda t: (n, t, e)) if bf else (lambda t: (t, n, e))
        q = _t(rng.uniform(-1, 1, shp(l))).requires_grad_(True)
        k = _t(rng.uniform(-1, 1, shp(s))).requires_grad_(True)
        v = _t(rng.uniform(-1, 1, shp(s))).requires_grad_(True)
        y, w = m(q, k, v, need_weights=True, average_attn_weights=True)
        gy = _t(rng.uniform(-1, 1, tuple(y.shape)))
        gw = _t(rng.uniform(-1, 1, tuple(w.shape)))
        torch.autograd.backward([y, w], [gy, gw])
        fields = {"op": "mha", "embed_dim": i64([e]), "num_heads": i64([h]), "dim_feedforward": i64([0]),
                  "batch_first": "yes" if bf else "no", "norm_first": "no", "activation": "none",
                  "q": f32(q.detach()), "k": f32(k.detach()), "v": f32(v.detach()),
                  "q_shape": i64(list(q.shape)), "kv_shape": i64(list(k.shape)),
                  "y": f32(y.detach()), "y_shape": i64(list(y.shape)), "w": f32(w.detach()), "w_shape": i64(list(w.shape)),
                  "gy": f32(gy), "gw": f32(gw), "dq": f32(q.grad), "dk": f32(k.grad), "dv": f32(v.grad)}
        fields.update(params_fields(m))
        gf.case(f"mha_{i}", fields)

    for i, (e, h, ff, s, n, bf, nf, act) in enumerate([(4, 2, 6, 3, 2, False, False, "relu"), (6, 3, 5, 4, 2, True, True, "gelu")]):
        m = torch.nn.TransformerEncoderLayer(e, h, dim_feedforward=ff, dropout=0.0, activation=act, batch_first=bf, norm_first=nf)
        set_params(m)
        m.train()
        x = _t(rng.uniform(-1, 1, (n, s, e) if bf else (s, n, e))).requires_grad_(True)
        y = m(x)
        gy = _t(rng.uniform(-1, 1, tuple(y.shape)))
        y.backward(gy)
        empty = np.zeros(0, np.float32)
        fields = {"op": "encoder", "embed_dim": i64([e]), "num_heads": i64([h]), "dim_feedforward": i64([ff]),
                  "batch_first": "yes" if bf else "no", "norm_first": "yes" if nf else "no", "activation": act,
                  "q": f32(x.detach()), "k": f32(empty), "v": f32(empty),
                  "q_shape": i64(list(x.shape)), "kv_shape": i64([0]),
                  "y": f32(y.detach()), "y_shape": i64(list(y.shape)), "w": f32(empty), "w_shape": i64([0]),
                  "gy": f32(gy), "gw": f32(empty), "dq": f32(x.grad), "dk": f32(empty), "dv": f32(empty)}
        fields.update(params_fields(m))
        gf.case(f"encoder_{i}", fields)
    return gf


def loss_family():
    rng = np.random.default_rng(507)
    gf = GoldenFile(TOPIC, "loss", "CrossEntropyLoss and MSELoss (mean): value and gradient")
    for i, (n, c) in enumerate([(4, 3), (16, 10), (1, 5)]):
        x = _t(rng.normal(0, 3, (n, c))).requires_grad_(True)
        target = rng.integers(0, c, n)
        loss = torch.nn.CrossEntropyLoss()(x, torch.from_numpy(target))
        loss.backward()
        gf.case(f"ce_{i}", {"op": "ce", "shape": i64([n, c]), "x": f32(x.detach()), "target": i64(target),
                            "loss": f32([loss.item()]), "dx": f32(x.grad)})
    for i, (n, c) in enumerate([(4, 3), (2, 7)]):
        x = _t(rng.normal(0, 2, (n, c))).requires_grad_(True)
        target = _t(rng.normal(0, 2, (n, c)))
        loss = torch.nn.MSELoss()(x, target)
        loss.backward()
        gf.case(f"mse_{i}", {"op": "mse", "shape": i64([n, c]), "x": f32(x.detach()), "target": f32(target),
                             "loss": f32([loss.item()]), "dx": f32(x.grad)})
    return gf


OPTIM_CASES = [
    # (op, lr, momentum, dampening, weight_decay, nesterov, beta1, beta2, eps, amsgrad)
    ("sgd", 0.1, 0.0, 0.0, 0.0, False, 0, 0, 0, False),
    ("sgd", 0.05, 0.9, 0.0, 1e-2, False, 0, 0, 0, False),
    ("sgd", 0.05, 0.9, 0.3, 0.0, False, 0, 0, 0, False),
    ("sgd", 0.05, 0.8, 0.0, 5e-3, True, 0, 0, 0, False),
    ("adam", 1e-3, 0, 0, 0.0, False, 0.9, 0.999, 1e-8, False),
    ("adam", 1e-2, 0, 0, 1e-2, False, 0.8, 0.99, 1e-6, True),
    ("adamw", 1e-2, 0, 0, 1e-2, False, 0.9, 0.999, 1e-8, False),
    ("adamw", 3e-3, 0, 0, 0.1, False, 0.85, 0.995, 1e-8, True),
]


def optim_family():
    rng = np.random.default_rng(508)
    gf = GoldenFile(TOPIC, "optim", "SGD / Adam / AdamW parameter trajectories over 3 steps (foreach=False)")
    n = 9
    for i, (op, lr, mom, damp, wd, nest, b1, b2, eps, ams) in enumerate(OPTIM_CASES):
        p = torch.nn.Parameter(_t(rng.normal(0, 1, n)))
        p0 = p.detach().clone()
        if op == "sgd":
            opt = torch.optim.SGD([p], lr=lr, momentum=mom, dampening=damp, weight_decay=wd, nesterov=nest, foreach=False)
        elif op == "adam":
            opt = torch.optim.Adam([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, amsgrad=ams, foreach=False)
        else:
            opt = torch.optim.AdamW([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, amsgrad=ams, foreach=False)
        grads, params = [], []
        for _ in range(3):
            g = _t(rng.normal(0, 1, n))
            p.grad = g.clone()
            opt.step()
            grads.append(g.numpy())
            params.append(p.detach().clone().numpy())
        gf.case(f"{op}_{i}", {
            "op": op, "lr": f64([lr]), "momentum": f64([mom]), "dampening": f64([damp]), "weight_decay": f64([wd]),
            "nesterov": "yes" if nest else "no", "beta1": f64([b1]), "beta2": f64([b2]), "eps": f64([eps]),
            "amsgrad": "yes" if ams else "no", "p0": f32(p0), "grads": f32(np.concatenate(grads)),
            "params": f32(np.concatenate(params)),
        })
    return gf


def interop_model():
    """conv(1->4,3,p1) bn relu maxpool2 conv(4->8,3) relu flatten linear(32->10), for 1x8x8 input."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(32, 10),
    )


def interop_family(out_dir):
    from safetensors.torch import save_file

    rng = np.random.default_rng(509)
    torch.manual_seed(509)
    model = interop_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(5):
        x = _t(rng.normal(0, 1, (16, 1, 8, 8)))
        target = torch.from_numpy(rng.integers(0, 10, 16))
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), target).backward()
        opt.step()
    model.eval()
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "interop_small.safetensors")
    state = model.state_dict()
    save_file(state, path)
    x = _t(rng.normal(0, 1, (4, 1, 8, 8)))
    with torch.no_grad():
        y = model(x)
    gf = GoldenFile(TOPIC, "interop", "eval outputs of the torch model saved in interop_small.safetensors")
    gf.case("interop_small", {"shape": i64(list(x.shape)), "x": f32(x), "y_shape": i64(list(y.shape)), "y": f32(y)})
    return path, len(state), gf


def generate(out_dir: str) -> list[tuple[str, int]]:
    """Write the qnn golden files into out_dir; returns [(path, case_count)]."""
    global torch
    torch = setup_torch()
    written = []
    for family in (linear_family, conv2d_family, conv1d_family, conv_transpose2d_family, batchnorm2d_family, activation_family, pool_family, layernorm_family, embedding_family, rnn_family, attention_family, loss_family, optim_family):
        gf = family()
        written.append((gf.write(out_dir), gf.case_count))
    st_path, n_tensors, gf = interop_family(out_dir)
    written.append((st_path, n_tensors))
    written.append((gf.write(out_dir), gf.case_count))
    return written
