"""Golden description of PyTorch 2.15's named QConfigs for crates/qflow/src/qconfig (issue 7).

One family, `named` (crates/qflow/tests/data/qconfig/named.golden): every named default is
instantiated (`qconfig.activation()`, `qconfig.weight()`) and the resulting module's arguments
are written down, so the test compares against what PyTorch builds, not against a reading of
qconfig.py.

Fields per case `<qconfig>__<activation|weight>` (the contract with
crates/qflow/tests/qconfig_defaults.rs):
  top str <class of the instantiated module>; observer str <observer class>;
  dtype str quint8|qint8|float16|float32|quint4x2; qscheme str <torch qscheme name>|none;
  reduce_range str yes|no; custom_range str yes|no; qrange i64[2] (effective quant_min/max);
  eps f32[0|1]; averaging_constant f64[0|1] (a Python float); ch_axis i64[0|1]; bins i64[0|1];
  upsample_rate i64[0|1]; is_dynamic str yes|no
"""

from __future__ import annotations

from golden_io import GoldenFile, f32, f64, i64

TOPIC = "qconfig"
OUT_DIR = "crates/qflow/tests/data/qconfig"

torch = None  # set by generate()


def _named():
    q = torch.ao.quantization
    out = [
        ("default_qconfig", q.default_qconfig),
        ("default_per_channel_qconfig", q.default_per_channel_qconfig),
        ("default_qat_qconfig", q.default_qat_qconfig),
        ("default_qat_qconfig_v2", q.default_qat_qconfig_v2),
        ("default_dynamic_qconfig", q.default_dynamic_qconfig),
        ("per_channel_dynamic_qconfig", q.per_channel_dynamic_qconfig),
        ("float16_dynamic_qconfig", q.float16_dynamic_qconfig),
        ("float_qparams_weight_only_qconfig", q.float_qparams_weight_only_qconfig),
    ]
    for backend in ("fbgemm", "x86", "qnnpack", "onednn"):
        out.append((f"get_default_qconfig_{backend}", q.get_default_qconfig(backend)))
        for version in (0, 1):
            out.append(
                (f"get_default_qat_qconfig_{backend}_v{version}", q.get_default_qat_qconfig(backend, version))
            )
    return out


def _dtype(d):
    return str(d).replace("torch.", "")


def _fields(mod):
    top = type(mod).__name__
    obs = getattr(mod, "activation_post_process", mod)
    def opt_f32(name):
        v = getattr(obs, name, None)
        return f32([] if v is None else [float(v)])
    def opt_i64(name):
        v = getattr(obs, name, None)
        return i64([] if v is None else [int(v)])
    qscheme = getattr(obs, "qscheme", None)
    return {
        "top": top,
        "observer": type(obs).__name__,
        "dtype": _dtype(obs.dtype),
        "qscheme": "none" if qscheme is None else str(qscheme).replace("torch.", ""),
        "reduce_range": "yes" if getattr(obs, "reduce_range", False) else "no",
        "custom_range": "yes" if getattr(obs, "has_customized_qrange", False) else "no",
        "qrange": i64([int(getattr(obs, "quant_min", 0) or 0), int(getattr(obs, "quant_max", 0) or 0)]),
        "eps": opt_f32("eps"),
        "averaging_constant": f64([] if getattr(obs, "averaging_constant", None) is None else [float(obs.averaging_constant)]),
        "ch_axis": opt_i64("ch_axis"),
        "bins": opt_i64("bins"),
        "upsample_rate": opt_i64("upsample_rate"),
        "is_dynamic": "yes" if getattr(obs, "is_dynamic", False) else "no",
    }


def named_family():
    gf = GoldenFile(TOPIC, "named", "PyTorch's named QConfigs, instantiated")
    for name, qc in _named():
        gf.case(f"{name}__activation", _fields(qc.activation()))
        gf.case(f"{name}__weight", _fields(qc.weight()))
    return gf


def generate(out_dir: str) -> list[tuple[str, int]]:
    """Write the qconfig golden files into out_dir; returns [(path, case_count)]."""
    global torch
    import warnings

    from torch_env import setup_torch

    torch = setup_torch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # onednn/VNNI and reduce_range deprecation notices
        gf = named_family()
    return [(gf.write(out_dir), gf.case_count)]
