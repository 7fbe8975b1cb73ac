"""Pinned-torch setup shared by every golden generator."""

from __future__ import annotations

REQUIRED_TORCH = "2.15.0"
ENGINE = "fbgemm"


def setup_torch():
    """Import torch, check the pinned version, select fbgemm and make runs deterministic."""
    import warnings

    import torch

    # torch 2.15 warns that the quantized dtypes are deprecated; the goldens pin their behaviour.
    warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")

    if not torch.__version__.startswith(REQUIRED_TORCH):
        raise SystemExit(
            f"golden vectors need torch {REQUIRED_TORCH}, found {torch.__version__}; "
            "see tools/golden/README.md"
        )
    if ENGINE not in torch.backends.quantized.supported_engines:
        raise SystemExit(f"quantized engine {ENGINE} is not available in this torch build")
    torch.backends.quantized.engine = ENGINE
    torch.set_num_threads(1)
    torch.manual_seed(0)
    return torch


def host_cpu_class() -> str:
    """`avx512-vnni`, `avx2` (x86 without VNNI: fbgemm saturates u8·s8 pairs there) or `other`.

    fbgemm's int8 results depend on it (VNNI sums exactly, `vpmaddubsw` saturates pairs to
    int16), and float kernels sum in another order on each, so topics declare the class their
    committed files were generated on (`CPU` in the topic module) and `generate.py` skips them
    elsewhere.
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return "other"
    if "avx512_vnni" in flags:
        return "avx512-vnni"
    if "avx2" in flags and "avx_vnni" not in flags:
        return "avx2"
    return "other"
