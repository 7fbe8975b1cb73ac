"""Golden vectors for fbgemm's int8 convolution on an x86 CPU **without VNNI** (AVX2 only).

There fbgemm's im2col convolutions multiply u8 activations by s8 weights with `vpmaddubsw`,
adding the products of each pair of reduction indices (taps in (z, y, x) order, the group's
channels fastest) with int16 saturation; the same cases give exact sums on a VNNI CPU (the
`conv` topic). qstack's opt-in `KernelKind::Avx2Saturating` family and the oracle's
`Accumulation::PairSaturating16` reproduce these files bit for bit. A subset of gen_conv.py's
shapes (tiny input channels, dense, grouped, 1x1, depthwise on and off fbgemm's fast path),
same generator and fields, so the two topics differ only in the CPU they ran on.
Generated only on such a CPU (`CPU = "avx2"`; `generate.py` skips the topic elsewhere).
"""

from __future__ import annotations

import gen_conv
from torch_env import setup_torch

TOPIC = "conv_avx2"
OUT_DIR = "crates/qkernels/tests/data/conv_avx2"
CPU = "avx2"

SHAPES_2D = [gen_conv.SHAPES_2D[i] for i in (0, 1, 2, 5, 7, 9, 10, 14, 15)]
SHAPES_1D = [gen_conv.SHAPES_1D[i] for i in (0, 1)]
SHAPES_3D = [gen_conv.SHAPES_3D[i] for i in (0, 1)]


def generate(out_dir: str) -> list[tuple[str, int]]:
    """Write the AVX2 (non-VNNI) conv golden files into out_dir; returns [(path, case_count)]."""
    gen_conv.torch = setup_torch()
    written = []
    for name, op, shapes, dims, seed in (
        ("conv2d_avx2", "conv2d", SHAPES_2D, 2, 201),
        ("conv1d_avx2", "conv1d", SHAPES_1D, 1, 202),
        ("conv3d_avx2", "conv3d", SHAPES_3D, 3, 203),
    ):
        gf = gen_conv._family(name, shapes, dims, seed, topic=TOPIC, op_name=op)
        written.append((gf.write(out_dir), gf.case_count))
    return written
