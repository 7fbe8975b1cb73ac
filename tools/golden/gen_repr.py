"""Golden data for `qnn::repr::module_str` (issue 7, "Printing and inspection"): PyTorch's
`repr(module)` (torch 2.15.0), multi-line trees included, for single modules of every family
qnn prints — float, fused, QAT (with their `weight_fake_quant` child), the fake-quant modules
(with their `activation_post_process` child), static quantized and dynamic quantized modules.

- `modules.golden`: case `<name>`, field `repr` u8 (the UTF-8 of `repr(module)`). The Rust
  test `crates/qnn/tests/repr_golden.rs` builds each module with the same arguments and
  compares the text byte for byte. Quantized modules use output scale 0.1, zero point 3.
"""

from __future__ import annotations

import warnings

import numpy as np

from golden_io import GoldenFile, u8
from torch_env import setup_torch

TOPIC = "repr"
OUT_DIR = "crates/qnn/tests/data/repr"


def modules(torch):
    nn = torch.nn
    tq = torch.ao.quantization
    import torch.ao.nn.quantized.dynamic as nnqd
    import torch.ao.nn.intrinsic as nni
    import torch.ao.nn.intrinsic.qat as nniqat
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.qat as nnqat
    import torch.ao.nn.quantized as nnq

    qat_qconfig = tq.get_default_qat_qconfig("fbgemm")
    m = {}
    # float
    m["linear"] = nn.Linear(4, 3)
    m["linear_nobias"] = nn.Linear(4, 3, bias=False)
    m["conv1d"] = nn.Conv1d(2, 4, 3, stride=2, padding=1, dilation=2, groups=2, bias=False)
    m["conv2d"] = nn.Conv2d(1, 6, 5)
    m["conv2d_args"] = nn.Conv2d(4, 8, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    m["conv_transpose2d"] = nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, output_padding=1)
    m["batchnorm1d"] = nn.BatchNorm1d(5)
    m["batchnorm2d"] = nn.BatchNorm2d(6)
    m["relu"] = nn.ReLU()
    m["relu6"] = nn.ReLU6()
    m["leaky_relu"] = nn.LeakyReLU(0.2)
    m["elu"] = nn.ELU()
    m["hardswish"] = nn.Hardswish()
    m["hardsigmoid"] = nn.Hardsigmoid()
    m["gelu"] = nn.GELU()
    m["silu"] = nn.SiLU()
    m["sigmoid"] = nn.Sigmoid()
    m["tanh"] = nn.Tanh()
    m["softmax"] = nn.Softmax(dim=1)
    m["log_softmax"] = nn.LogSoftmax(dim=1)
    m["maxpool2d"] = nn.MaxPool2d(2)
    m["maxpool2d_args"] = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
    m["avgpool2d"] = nn.AvgPool2d(2)
    m["avgpool2d_args"] = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    # qstack keeps the size pair, printed as an int when square (PyTorch prints what was passed)
    m["adaptive_avgpool2d"] = nn.AdaptiveAvgPool2d(1)
    m["adaptive_avgpool2d_pair"] = nn.AdaptiveAvgPool2d((2, 3))
    m["flatten"] = nn.Flatten()
    m["dropout"] = nn.Dropout(0.25)
    m["identity"] = nn.Identity()
    m["sequential"] = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    m["mha"] = nn.MultiheadAttention(8, 2)
    m["mha_nobias"] = nn.MultiheadAttention(8, 2, bias=False, batch_first=True)
    m["transformer_encoder_layer"] = nn.TransformerEncoderLayer(8, 2, 16)
    m["transformer_encoder_layer_gelu"] = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
    # fused
    m["fused_conv_relu2d"] = nni.ConvReLU2d(nn.Conv2d(1, 6, 5), nn.ReLU())
    m["fused_conv_bn_relu2d"] = nni.ConvBnReLU2d(nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6), nn.ReLU())
    m["fused_linear_relu"] = nni.LinearReLU(nn.Linear(4, 3), nn.ReLU())
    m["fused_bn_relu2d"] = nni.BNReLU2d(nn.BatchNorm2d(6), nn.ReLU())
    # fake quant
    m["fake_quantize"] = tq.FakeQuantize()
    m["default_fake_quant"] = tq.default_fake_quant()
    m["default_weight_fake_quant"] = tq.default_weight_fake_quant()
    m["per_channel_weight_fake_quant"] = tq.default_per_channel_weight_fake_quant()
    m["fixed_qparams_fake_quant"] = tq.default_fixed_qparams_range_0to1_fake_quant()
    m["fixed_qparams_fake_quant_neg1to1"] = tq.default_fixed_qparams_range_neg1to1_fake_quant()
    m["fused_fake_quant"] = tq.default_fused_act_fake_quant()
    m["fused_per_channel_fake_quant"] = tq.default_fused_per_channel_wt_fake_quant()
    # a fake-quant after observing one batch
    fq = tq.default_fake_quant()
    fq(torch.tensor([[-1.0, 0.5, 2.0]]))
    m["default_fake_quant_observed"] = fq
    # QAT layers (default QAT qconfig for fbgemm: fused per-channel weight fake-quant)
    m["qat_linear"] = nnqat.Linear(4, 3, qconfig=qat_qconfig)
    m["qat_conv2d"] = nnqat.Conv2d(1, 6, 5, qconfig=qat_qconfig)
    m["qat_conv_relu2d"] = nniqat.ConvReLU2d(1, 6, 5, qconfig=qat_qconfig)
    m["qat_linear_relu"] = nniqat.LinearReLU(4, 3, qconfig=qat_qconfig)
    m["qat_conv_bn2d"] = nniqat.ConvBn2d(1, 6, 5, bias=True, qconfig=qat_qconfig)
    m["qat_conv_bn_relu2d"] = nniqat.ConvBnReLU2d(1, 6, 5, qconfig=qat_qconfig)
    m["qat_conv_bn1d"] = nniqat.ConvBn1d(3, 6, 5, bias=True, qconfig=qat_qconfig)
    m["qat_conv_bn_relu1d"] = nniqat.ConvBnReLU1d(3, 6, 5, stride=2, padding=1, qconfig=qat_qconfig)
    m["qat_linear_bn1d"] = nniqat.LinearBn1d(4, 3, qconfig=qat_qconfig)
    # static quantized
    m["q_batchnorm2d"] = nnq.BatchNorm2d(6)
    m["q_bn_relu2d"] = nniq.BNReLU2d(6)
    m["q_conv_transpose2d"] = nnq.ConvTranspose2d(2, 4, 3, stride=2, padding=1, output_padding=1)
    m["q_conv_transpose2d"].scale, m["q_conv_transpose2d"].zero_point = 0.1, 3
    m["q_conv_transpose2d_plain"] = nnq.ConvTranspose2d(2, 4, 3, bias=False)
    m["q_conv_transpose2d_plain"].scale, m["q_conv_transpose2d_plain"].zero_point = 0.1, 3
    m["q_embedding"] = nnq.Embedding(10, 4)
    m["q_embedding_4bit"] = nnq.Embedding(10, 4, dtype=torch.quint4x2)
    m["q_embedding_bag"] = nnq.EmbeddingBag(10, 4, mode="sum")
    m["q_embedding_bag_4bit"] = nnq.EmbeddingBag(10, 4, mode="mean", dtype=torch.quint4x2)
    m["q_linear"] = nnq.Linear(4, 3)
    m["q_linear"].scale, m["q_linear"].zero_point = 0.1, 3
    m["q_conv2d"] = nnq.Conv2d(1, 6, 5, padding=2)
    m["q_conv2d"].scale, m["q_conv2d"].zero_point = 0.1, 3
    # PyTorch keeps the float pools after convert (they run on quantized tensors)
    m["q_maxpool2d_ceil"] = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
    m["q_avgpool2d_ceil"] = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    m["q_relu6"] = nnq.ReLU6()
    m["q_hardswish"] = nnq.Hardswish(0.1, 3)
    m["q_sigmoid"] = nnq.Sigmoid(0.1, 3) if hasattr(nnq, "Sigmoid") else None
    m["q_functional"] = nnq.QFunctional()
    m["quantize"] = nnq.Quantize(0.1, 3, torch.quint8)
    m["dequantize"] = nnq.DeQuantize()
    # dynamic
    m["dyn_linear"] = nnqd.Linear(4, 3)
    m["dyn_linear_fp16"] = nnqd.Linear(4, 3, dtype=torch.float16)
    return {k: v for k, v in m.items() if v is not None}


def generate(out_dir: str) -> list[tuple[str, int]]:
    """Write the repr golden file into out_dir; returns [(path, case_count)]."""
    import os

    torch = setup_torch()
    warnings.filterwarnings("ignore")
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    gf = GoldenFile(TOPIC, "modules", "repr(module) of single modules, torch 2.15.0")
    for name, module in modules(torch).items():
        text = repr(module)
        gf.case(name, {"repr": u8(np.frombuffer(text.encode("utf-8"), dtype=np.uint8))})
    return [(gf.write(out_dir), gf.case_count)]
