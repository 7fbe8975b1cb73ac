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
