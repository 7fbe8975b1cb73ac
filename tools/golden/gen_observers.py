"""Golden vectors for the stateful observers of crates/qtensor/src/observer (issue 7).

Families (one `<family>.golden` each, in crates/qtensor/tests/data/observers):

* `per_tensor`    -- MinMaxObserver and MovingAverageMinMaxObserver: several observe() calls,
  the min/max buffers and calculate_qparams() before and after every call.
* `per_channel`   -- PerChannelMinMaxObserver and MovingAveragePerChannelMinMaxObserver, axes
  0, 1 (and 2), affine / symmetric / float_qparams.
* `histogram`     -- HistogramObserver: several observe() calls (equal, growing and shrinking
  ranges, constant tensors, infinities), min/max and calculate_qparams() after every call; the
  cases with few bins also store the histogram after every call.
* `defaults`      -- torch's ready-made observers (`default_observer`, …): class, arguments,
  and the qparams after observing one fixed tensor.
* `fixed`         -- FixedQParamsObserver.calculate_qparams() (f32 scale, int32 zero point).
* `config_errors` -- which constructor arguments torch accepts, and the quant_min/quant_max
  it derives from them (one case per observer class, arrays over the argument grid).

Fields (the contract with crates/qtensor/tests/observer_golden.rs):
  per_tensor / per_channel: kind str; dtype str; qscheme str; reduce_range i64[1];
      has_custom i64[1]; custom_range i64[2]; eps f32[1]; averaging_constant f32[1];
      ch_axis i64[1] (per_channel); quant_range i64[2]; calls i64[1];
      per call i (0-based): shape_<i> i64[..]; x_<i> f32
      per_tensor: mins f32[calls]; maxs f32[calls] (buffers after each call);
          scales f32[calls+1]; zero_points f64[calls+1] (qparams before any call, then after
          each call; a NaN or infinite scale means qstack must return InvalidScale)
      per_channel: mins_<i> maxs_<i> f32[C] (after call i); scales_<k> f32; zero_points_<k> f64
          for k = 0 (before any call) and k = i + 1 (after call i)
  histogram: as per_tensor, plus bins i64[1], encoding str (f32: x_<i> as above; u16:
      xq_<i> u16 with x = (q - 32768) / 1024) and, when bins <= 128, hist_<i> f32[bins] after
      call i
  defaults: name str; class str; dtype str; qscheme str (or "none"); reduce_range i64[1];
      quant_range i64[2] (0 0 when torch has none); eps f64[1] (0 when none); ch_axis i64[1];
      is_dynamic i64[1]; shape i64; x f32; has_qparams i64[1]; scales f32; zero_points f64
  fixed: scale_in f64[1]; zero_point_in i64[1]; dtype str; quant_range i64[2];
      scale f32[1]; zero_point i64[1]
  config_errors: kind str; dtype qscheme reduce_range range raises u8[n]
      (dtype: 0 quint8, 1 qint8, 2 qint32, 3 quint4x2; qscheme: index into QSCHEMES;
      range: 0 = no custom range, k = CUSTOM_RANGES[k - 1]); quant_min quant_max i64[n]
      (0 where torch raises)
"""

from __future__ import annotations

import warnings

import numpy as np

from golden_io import GoldenFile, f32, f64, i64
from torch_env import setup_torch

TOPIC = "observers"
OUT_DIR = "crates/qtensor/tests/data/observers"

torch = None  # set by generate()

DTYPES = ["quint8", "qint8", "qint32", "quint4x2"]
QSCHEMES = [
    "per_tensor_affine",
    "per_tensor_symmetric",
    "per_channel_affine",
    "per_channel_symmetric",
    "per_channel_affine_float_qparams",
]
EPS_DEFAULT = float(np.finfo(np.float32).eps)


def _dtype(name):
    return getattr(torch, name)


def _qscheme(name):
    return getattr(torch, name)


def _obs_class(kind):
    from torch.ao.quantization import observer as o

    return {
        "minmax": o.MinMaxObserver,
        "moving_average": o.MovingAverageMinMaxObserver,
        "per_channel": o.PerChannelMinMaxObserver,
        "moving_average_per_channel": o.MovingAveragePerChannelMinMaxObserver,
        "histogram": o.HistogramObserver,
    }[kind]


def _make(kind, dtype, qscheme, reduce_range, custom, eps, c=0.01, ch_axis=0, bins=None):
    kw = dict(dtype=_dtype(dtype), qscheme=_qscheme(qscheme), reduce_range=reduce_range, eps=eps)
    if bins is not None:
        kw["bins"] = bins
    if custom is not None:
        kw["quant_min"], kw["quant_max"] = custom
    if kind.startswith("moving_average"):
        kw["averaging_constant"] = c
    if kind.endswith("per_channel"):
        kw["ch_axis"] = ch_axis
    return _obs_class(kind)(**kw)


def _config_fields(kind, dtype, qscheme, reduce_range, custom, eps, c, obs):
    return {
        "kind": kind,
        "dtype": dtype,
        "qscheme": qscheme,
        "reduce_range": i64([int(reduce_range)]),
        "has_custom": i64([int(custom is not None)]),
        "custom_range": i64(list(custom) if custom is not None else [0, 0]),
        "eps": f32([np.float32(eps)]),
        "averaging_constant": f32([np.float32(c)]),
        "quant_range": i64([obs.quant_min, obs.quant_max]),
    }


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(np.asarray(a, dtype=np.float32)))


# Input sequences: name -> rng -> list of arrays (each array one observe() call).
def _sequences(rng):
    nan, inf = np.float32(np.nan), np.float32(np.inf)
    n = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    return {
        "mixed": [n(2, 5) * 2, n(7) * 3 + 1, rng.uniform(-5, 0.5, 6)],
        "widening": [n(6) * 0.1, n(3, 4) * 2.5, n(5) * 40 - 3],
        "constant": [np.full(6, 1.5), np.full((2, 2), 1.5)],
        "constant_neg": [np.full(5, -0.75)],
        "zeros": [np.zeros(8), np.zeros(3)],
        "negative_only": [-rng.uniform(0.1, 4, 9), -rng.uniform(0.5, 7, 4)],
        "positive_only": [rng.uniform(0.2, 3, 9), rng.uniform(1, 9, 5)],
        "tiny": [n(8) * 1e-7, n(8) * 1e-30],
        "huge": [n(8) * 1e30, n(4) * 3e37],
        "empty_between": [n(5), np.zeros((0, 3)), n(4) * 2],
        "uninitialized": [],
        "nan": [n(5), np.array([1.0, nan, -2.0])],
        "pos_inf": [np.array([1.0, inf, -2.0])],
        "both_inf": [np.array([-inf, 0.5, inf])],
    }


PER_TENSOR_GRID_SEQS = ["mixed", "widening"]


def _per_tensor_configs():
    """(dtype, qscheme, reduce_range, custom, eps) combinations torch accepts."""
    out = []
    for dtype in ["quint8", "qint8"]:
        customs = [None, (0, 127), (0, 15)] if dtype == "quint8" else [None, (-127, 127), (-8, 7)]
        for qscheme in ["per_tensor_affine", "per_tensor_symmetric"]:
            for reduce_range in [False, True]:
                if qscheme == "per_tensor_symmetric" and reduce_range and dtype == "quint8":
                    continue
                for custom in customs:
                    out.append((dtype, qscheme, reduce_range, custom, EPS_DEFAULT))
    out.append(("qint8", "per_tensor_symmetric", False, (-127, 127), 2.0**-12))
    out.append(("quint8", "per_tensor_affine", False, None, 2.0**-12))
    return out


def _u16_codes(x):
    """u16 codes q with x == (q - 32768) / 1024 exactly, or None if x is not on that grid."""
    q = np.asarray(x, dtype=np.float64) * 1024.0 + 32768.0
    if x.size == 0 or not np.all(np.isfinite(q)) or np.any(q != np.round(q)) or q.min() < 0 or q.max() > 65535:
        return None
    return q.astype(np.uint16)


def _run_per_tensor(gf, name, kind, config, seq, c, bins=None, compact=False):
    dtype, qscheme, reduce_range, custom, eps = config
    obs = _make(kind, dtype, qscheme, reduce_range, custom, eps, c=c, bins=bins)
    fields = _config_fields(kind, dtype, qscheme, reduce_range, custom, eps, c, obs)
    if kind == "histogram":
        fields["bins"] = i64([obs.bins])
        fields["encoding"] = "u16" if compact else "f32"
    fields["calls"] = i64([len(seq)])
    mins, maxs, scales, zps = [], [], [], []

    def qparams():
        s, z = obs.calculate_qparams()
        scales.append(np.float32(s.item()))
        zps.append(float(z.item()))

    qparams()
    for i, x in enumerate(seq):
        x = np.asarray(x, dtype=np.float32)
        fields[f"shape_{i}"] = i64(list(x.shape))
        if compact:
            fields[f"xq_{i}"] = ("u16", _u16_codes(x))
        else:
            fields[f"x_{i}"] = f32(x)
        obs(_t(x))
        if kind == "histogram" and obs.bins <= 128:
            fields[f"hist_{i}"] = f32(obs.histogram.clone())
        mins.append(np.float32(obs.min_val.item()))
        maxs.append(np.float32(obs.max_val.item()))
        qparams()
    fields["mins"] = f32(np.array(mins, dtype=np.float32))
    fields["maxs"] = f32(np.array(maxs, dtype=np.float32))
    fields["scales"] = f32(np.array(scales, dtype=np.float32))
    fields["zero_points"] = f64(np.array(zps, dtype=np.float64))
    gf.case(name, fields)


def _short(config):
    dtype, qscheme, reduce_range, custom, eps = config
    tag = "fq" if qscheme.endswith("float_qparams") else "sym" if "symmetric" in qscheme else "aff"
    s = f"{dtype}_{tag}"
    if reduce_range:
        s += "_rr"
    if custom is not None:
        s += f"_r{custom[0]}..{custom[1]}"
    if eps != EPS_DEFAULT:
        s += "_eps12"
    return s


def family_per_tensor():
    gf = GoldenFile(TOPIC, "per_tensor", "MinMax / MovingAverageMinMax observers: buffers and qparams per call")
    rng = np.random.default_rng(7001)
    seqs = _sequences(rng)
    configs = _per_tensor_configs()
    for kind, c in [("minmax", 0.01), ("moving_average", 0.01), ("moving_average", 0.5)]:
        tag = kind if c == 0.01 else f"{kind}_c0.5"
        for config in configs:
            for sname in PER_TENSOR_GRID_SEQS:
                _run_per_tensor(gf, f"{tag}_{_short(config)}_{sname}", kind, config, seqs[sname], c)
        # every sequence on a few representative configs
        for config in [configs[0], configs[4], _per_tensor_configs()[-2]]:
            for sname, seq in seqs.items():
                if sname in PER_TENSOR_GRID_SEQS:
                    continue
                _run_per_tensor(gf, f"{tag}_{_short(config)}_{sname}", kind, config, seq, c)
    return gf


def _histogram_sequences(rng):
    inf = np.float32(np.inf)
    n = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    return {
        "mixed": [n(200) * 2, n(150) * 3 + 1, rng.uniform(-5, 0.5, 120)],
        "same_range": [np.array([-1.0, 2.0] + list(rng.uniform(-1, 2, 60))), rng.uniform(-1, 2, 50)],
        "widen_right": [rng.uniform(0, 1, 100), rng.uniform(0.5, 4, 80)],
        "widen_left": [rng.uniform(0, 1, 100), rng.uniform(-3, 0.5, 80)],
        "inside_then_wider": [n(128), n(64) * 0.5, n(100) * 6],
        "constant": [np.full(40, 1.5)],
        "constant_then_wider": [np.full(30, -0.75), n(90)],
        "zeros": [np.zeros(16), np.zeros(5)],
        "negative_only": [-rng.uniform(0.1, 4, 90), -rng.uniform(0.5, 7, 40)],
        "positive_only": [rng.exponential(1.0, 150)],
        "outliers": [np.concatenate([n(300) * 0.1, [25.0, -12.0]])],
        "tiny": [n(100) * 1e-7, n(50) * 1e-30],
        "huge": [n(100) * 1e30],
        "with_inf": [np.concatenate([n(50), [inf, -inf]]), np.array([inf, -inf]), n(20) * 3],
        "empty_between": [n(60), np.zeros((0, 3)), n(40) * 2],
        "uninitialized": [],
    }


def _histogram_configs():
    out = []
    for dtype in ["quint8", "qint8"]:
        customs = [None, (0, 127)] if dtype == "quint8" else [None, (-127, 127)]
        for qscheme in ["per_tensor_affine", "per_tensor_symmetric"]:
            for reduce_range in [False, True]:
                for custom in customs:
                    out.append((dtype, qscheme, reduce_range, custom, EPS_DEFAULT))
    out.append(("qint8", "per_tensor_symmetric", False, None, 2.0**-12))
    return out


def family_histogram():
    gf = GoldenFile(TOPIC, "histogram", "HistogramObserver: min/max, histogram and qparams per call")
    rng = np.random.default_rng(7003)
    seqs = _histogram_sequences(rng)
    configs = _histogram_configs()
    for config in configs:
        _run_per_tensor(gf, f"histogram_{_short(config)}_mixed", "histogram", config, seqs["mixed"], 0.01)
    for config in [configs[0], configs[9], configs[4]]:
        for sname, seq in seqs.items():
            if sname != "mixed":
                _run_per_tensor(gf, f"histogram_{_short(config)}_{sname}", "histogram", config, seq, 0.01)
    # large heavy-tailed inputs, where the L2 search clips far into the tails; stored as u16
    # codes (x = (q - 32768) / 1024) to keep the file small
    def grid(v):
        return (np.clip(np.round(np.asarray(v) * 1024.0), -32768, 32767) / 1024.0).astype(np.float32)

    large = {
        "laplace": [grid(rng.laplace(0.0, 0.8, 4000))],
        "lognormal": [grid(rng.lognormal(0.0, 0.9, 3000))],
        "laplace_two_calls": [grid(rng.laplace(0.3, 0.5, 2000)), grid(rng.laplace(-0.5, 1.5, 2000))],
    }
    for config in [configs[2], configs[-1]]:
        for sname, seq in large.items():
            _run_per_tensor(gf, f"histogram_{_short(config)}_large_{sname}", "histogram", config, seq, 0.01, compact=True)
    # the other dtypes torch accepts: dst_nbins is 2**32 for qint32 and 256 for quint4x2
    for dtype, qscheme in [("qint32", "per_tensor_affine"), ("qint32", "per_tensor_symmetric"),
                           ("quint4x2", "per_tensor_affine")]:
        config = (dtype, qscheme, False, None, EPS_DEFAULT)
        for sname in ["mixed", "outliers"]:
            _run_per_tensor(gf, f"histogram_{_short(config)}_{sname}", "histogram", config, seqs[sname], 0.01)
    for bins in [16, 100]:
        for sname in ["mixed", "widen_left", "constant_then_wider", "same_range", "outliers"]:
            _run_per_tensor(gf, f"histogram_bins{bins}_{sname}", "histogram", configs[0], seqs[sname], 0.01, bins=bins)
    return gf


def _per_channel_configs():
    out = []
    for dtype in ["quint8", "qint8"]:
        for qscheme in ["per_channel_affine", "per_channel_symmetric"]:
            for reduce_range in [False, True]:
                if qscheme == "per_channel_symmetric" and reduce_range and dtype == "quint8":
                    continue
                out.append((dtype, qscheme, reduce_range, None, EPS_DEFAULT))
    out.append(("qint8", "per_channel_symmetric", False, (-127, 127), 2.0**-12))
    out.append(("quint8", "per_channel_affine", True, (0, 255), EPS_DEFAULT))
    out.append(("quint8", "per_channel_affine_float_qparams", False, None, EPS_DEFAULT))
    out.append(("quint4x2", "per_channel_affine_float_qparams", False, None, EPS_DEFAULT))
    return out


def _channel_sequences(rng):
    nan = np.float32(np.nan)
    n = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    const = np.ones((3, 4), dtype=np.float32) * np.array([[0.0], [2.0], [-1.5]], dtype=np.float32)
    with_nan = n(3, 4)
    with_nan[1, 2] = nan
    return {
        # shapes keep 3 channels on axis 0 and 4 on axis 1
        "mixed": [n(3, 4) * 2, n(3, 4, 2) * 0.5 + 1, n(3, 4) * 5 - 2],
        "widening": [n(3, 4) * 0.01, n(3, 4) * 3, n(3, 4, 5) * 30],
        "constant_rows": [const, const],
        "tiny_huge": [n(3, 4) * 1e-30, n(3, 4) * 1e30],
        "empty_between": [n(3, 4), np.zeros((3, 0)), n(3, 4)],
        "uninitialized": [],
        "nan": [n(3, 4), with_nan],
    }


def _run_per_channel(gf, name, kind, config, seq, c, ch_axis):
    dtype, qscheme, reduce_range, custom, eps = config
    obs = _make(kind, dtype, qscheme, reduce_range, custom, eps, c=c, ch_axis=ch_axis)
    fields = _config_fields(kind, dtype, qscheme, reduce_range, custom, eps, c, obs)
    fields["ch_axis"] = i64([ch_axis])
    fields["calls"] = i64([len(seq)])

    def qparams(k):
        s, z = obs.calculate_qparams()
        fields[f"scales_{k}"] = f32(s.to(torch.float32))
        fields[f"zero_points_{k}"] = f64(z.to(torch.float64))

    qparams(0)
    for i, x in enumerate(seq):
        x = np.asarray(x, dtype=np.float32)
        fields[f"shape_{i}"] = i64(list(x.shape))
        fields[f"x_{i}"] = f32(x)
        obs(_t(x))
        fields[f"mins_{i}"] = f32(obs.min_val.clone())
        fields[f"maxs_{i}"] = f32(obs.max_val.clone())
        qparams(i + 1)
    gf.case(name, fields)


def family_per_channel():
    gf = GoldenFile(TOPIC, "per_channel", "per-channel MinMax / MovingAverage observers: buffers and qparams per call")
    rng = np.random.default_rng(7002)
    seqs = _channel_sequences(rng)
    configs = _per_channel_configs()
    for kind, c in [("per_channel", 0.01), ("moving_average_per_channel", 0.25)]:
        for ch_axis in [0, 1]:
            for config in configs:
                _run_per_channel(gf, f"{kind}_ax{ch_axis}_{_short(config)}_mixed", kind, config, seqs["mixed"], c, ch_axis)
            for config in [configs[0], configs[3], configs[-2]]:
                for sname, seq in seqs.items():
                    if sname == "mixed":
                        continue
                    _run_per_channel(gf, f"{kind}_ax{ch_axis}_{_short(config)}_{sname}", kind, config, seq, c, ch_axis)
        x3 = [rng.standard_normal((2, 3, 5)).astype(np.float32) * s for s in (1.0, 4.0)]
        _run_per_channel(gf, f"{kind}_ax2_{_short(configs[1])}_rank3", kind, configs[1], x3, c, 2)
    return gf


def family_fixed():
    from torch.ao.quantization.observer import FixedQParamsObserver

    gf = GoldenFile(TOPIC, "fixed", "FixedQParamsObserver.calculate_qparams")
    cases = [
        ("neg1to1", 2.0 / 256.0, 128, "quint8", (0, 255)),
        ("0to1", 1.0 / 256.0, 0, "quint8", (0, 255)),
        ("inexact_scale", 0.1, 3, "quint8", (0, 255)),
        ("qint8", 1.0 / 3.0, -5, "qint8", (-128, 127)),
        ("tiny_scale", 1e-40, 0, "qint8", (-128, 127)),
    ]
    for name, scale, zp, dtype, (qmin, qmax) in cases:
        obs = FixedQParamsObserver(scale, zp, dtype=_dtype(dtype), quant_min=qmin, quant_max=qmax)
        obs(torch.ones(3))
        s, z = obs.calculate_qparams()
        gf.case(name, {
            "scale_in": f64([scale]),
            "zero_point_in": i64([zp]),
            "dtype": dtype,
            "quant_range": i64([qmin, qmax]),
            "scale": f32(s),
            "zero_point": i64(z.to(torch.int64)),
        })
    return gf


DEFAULT_NAMES = [
    "default_observer", "default_weight_observer", "weight_observer_range_neg_127_to_127",
    "default_histogram_observer", "default_per_channel_weight_observer",
    "per_channel_weight_observer_range_neg_127_to_127", "default_dynamic_quant_observer",
    "default_float_qparams_observer", "default_float_qparams_observer_4bit",
    "default_fixed_qparams_range_neg1to1_observer", "default_fixed_qparams_range_0to1_observer",
    "default_placeholder_observer", "default_debug_observer",
]


def family_defaults():
    from torch.ao.quantization import observer as o

    gf = GoldenFile(TOPIC, "defaults", "torch's ready-made observers and their qparams on one tensor")
    rng = np.random.default_rng(7004)
    x = (rng.standard_normal((4, 6)) * np.array([[0.5], [1.0], [2.0], [4.0]]) + 0.3).astype(np.float32)
    for name in DEFAULT_NAMES:
        obs = getattr(o, name)()
        qscheme = getattr(obs, "qscheme", None)
        qmin, qmax = getattr(obs, "quant_min", None), getattr(obs, "quant_max", None)
        eps = getattr(obs, "eps", None)
        eps = float(eps.item() if hasattr(eps, "item") else eps) if eps is not None else 0.0
        fields = {
            "name": name,
            "class": type(obs).__name__,
            "dtype": str(obs.dtype).replace("torch.", ""),
            "qscheme": str(qscheme).replace("torch.", "") if qscheme is not None else "none",
            "reduce_range": i64([int(getattr(obs, "reduce_range", False))]),
            "quant_range": i64([qmin or 0, qmax or 0]),
            "eps": f64([eps]),
            "ch_axis": i64([getattr(obs, "ch_axis", 0)]),
            "is_dynamic": i64([int(obs.is_dynamic)]),
            "shape": i64(list(x.shape)),
            "x": f32(x),
        }
        obs(_t(x))
        try:
            s, z = obs.calculate_qparams()
            fields["has_qparams"] = i64([1])
            fields["scales"] = f32(s.to(torch.float32))
            fields["zero_points"] = f64(z.to(torch.float64))
        except Exception:  # noqa: BLE001 - torch raises a bare Exception for placeholders
            fields["has_qparams"] = i64([0])
        gf.case(name, fields)
    return gf


CUSTOM_RANGES = [(0, 255), (-128, 127), (-3, 5), (1, 255), (0, 0), (5, -5), (-128, 128),
                 (0, 1000), (-(2**31), 2**31 - 1), (-(2**31), 2**31)]


def family_config_errors():
    gf = GoldenFile(TOPIC, "config_errors", "which observer constructor arguments torch accepts")
    for kind in ["minmax", "moving_average", "per_channel", "moving_average_per_channel", "histogram"]:
        cols = {k: [] for k in ["dtype", "qscheme", "reduce_range", "range", "raises"]}
        qmins, qmaxs = [], []
        for di, dtype in enumerate(DTYPES):
            for si, qscheme in enumerate(QSCHEMES):
                for reduce_range in [False, True]:
                    for ri, custom in enumerate([None] + CUSTOM_RANGES):
                        try:
                            obs = _make(kind, dtype, qscheme, reduce_range, custom, EPS_DEFAULT)
                            raises, qmin, qmax = 0, obs.quant_min, obs.quant_max
                        except (AssertionError, NotImplementedError, ValueError, TypeError, RuntimeError):
                            raises, qmin, qmax = 1, 0, 0
                        cols["dtype"].append(di)
                        cols["qscheme"].append(si)
                        cols["reduce_range"].append(int(reduce_range))
                        cols["range"].append(ri)
                        cols["raises"].append(raises)
                        qmins.append(qmin)
                        qmaxs.append(qmax)
        fields = {"kind": kind}
        fields.update({k: ("u8", v) for k, v in cols.items()})
        fields["quant_min"] = i64(qmins)
        fields["quant_max"] = i64(qmaxs)
        gf.case(kind, fields)
    return gf


FAMILIES = [
    family_per_tensor,
    family_per_channel,
    family_histogram,
    family_defaults,
    family_fixed,
    family_config_errors,
]


def generate(out_dir: str) -> list[tuple[str, int]]:
    """Write every observer golden file into out_dir; returns [(path, case_count)]."""
    global torch
    torch = setup_torch()
    warnings.filterwarnings("ignore")
    written = []
    for family in FAMILIES:
        gf = family()
        written.append((gf.write(out_dir), gf.case_count))
    return written
