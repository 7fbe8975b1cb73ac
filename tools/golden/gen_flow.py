"""Golden vectors for qflow's eager flow end to end (crates/qflow/tests/flow_vs_torch.rs):
PyTorch's fuse_modules -> prepare -> calibrate -> convert on three small models, so the Rust
test can run qflow's passes on the same weights and data and compare every observer's qparams,
every quantized weight and the converted model's output bit for bit.

Models (eval mode, seeded weights, BatchNorm running statistics from a few training batches):
  lenet5     quant, conv1 (1->3, 5x5), relu1, pool1, conv2 (3->6, 5x5), relu2, pool2,
             torch.flatten (qflow node `flatten`), fc1 (150->24), relu3, fc2 (24->16), relu4,
             fc3 (16->10), dequant; input 1x32x32. Fused: [conv1, relu1], [conv2, relu2],
             [fc1, relu3], [fc2, relu4].
  resnet     quant, layer1.0 = torchvision's quantizable BasicBlock (conv1 3x3 no bias, bn1,
             relu, conv2 3x3 no bias, bn2, skip_add_relu = FloatFunctional.add_relu(out, x)),
             dequant; 4 channels, 8x8. Fused: [conv1, bn1, relu], [conv2, bn2].
  mobilenet  quant, features.0 = torchvision's InvertedResidual (conv.0 = 1x1 expand 4->8
             conv-bn-ReLU6, conv.1 = 3x3 depthwise conv-bn-ReLU6, conv.2 = 1x1 project 8->4,
             conv.3 = bn, skip_add = FloatFunctional.add(x, conv(x))), dequant; 8x8. Fused:
             [conv.0.0, conv.0.1], [conv.1.0, conv.1.1], [conv.2, conv.3] (PyTorch has no
             conv-bn-relu6 fuser, so the ReLU6 modules stay, observed, as nnq.ReLU6).

Files (crates/qflow/tests/data/flow):
  <model>.safetensors  the float state dict (safetensors.torch.save_file).
  <model>.golden       case `data`: calib_shape i64[5] (batches, N, C, H, W), calib f32,
                       test_shape i64[4], test f32, float_shape i64, float_out f32 (the float
                       model's eval output on `test`);
                       case `acts`: act.<module> f32 and act.<module>.shape i64 (one batch): what
                       each observer but the QuantStub's saw during calibration, all batches in order (the fused
                       float model is the same for every qconfig);
                       one case per qconfig (fbgemm = get_default_qconfig("fbgemm"),
                       minmax = default_qconfig; lenet5 and resnet also movavg =
                       MovingAverageMinMaxObserver(quant_min=0, quant_max=127) activations with
                       default_weight_observer; lenet5 also clamp127 and clamp7bit, below):
                       obs_names str (comma-separated module paths owning an observer;
                       `quant` is the QuantStub), obs_scale f64, obs_zp i64, obs_min f32,
                       obs_max f32 (after calibration, in obs_names order);
                       weights str (comma-separated quantized modules with a weight), and per
                       module w.<name>.scale f64, w.<name>.zp i64, w.<name>.int u8 (the qint8 int_repr as two's-complement bytes);
                       out_shape i64, out_int u8, out_scale f64, out_zp i64 (the converted
                       model's quantized output on `test`, before DeQuantStub);
                       clamped i64[1] (how many weight values _clamp_weights changed).
Weight clamping (torch/ao/nn/quantized/modules/utils.py `_clamp_weights`): clamp127 uses
weight_observer_range_neg_127_to_127 (qnnpack's symmetric weights), clamp7bit a per-channel
symmetric observer over [-64, 63], whose largest positive weights round to 64 and are clamped.
"""

from __future__ import annotations

import os

import numpy as np

from golden_io import GoldenFile, f32, f64, i64, u8
from torch_env import setup_torch

TOPIC = "flow"
OUT_DIR = "crates/qflow/tests/data/flow"

torch = None  # set by generate()

BATCH = 2  # images per calibration / test batch


def _models():
    nn = torch.nn
    tq = torch.ao.quantization
    FloatFunctional = torch.ao.nn.quantized.FloatFunctional

    class LeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant = tq.QuantStub()
            self.conv1 = nn.Conv2d(1, 3, 5)
            self.relu1 = nn.ReLU()
            self.pool1 = nn.MaxPool2d(2)
            self.conv2 = nn.Conv2d(3, 6, 5)
            self.relu2 = nn.ReLU()
            self.pool2 = nn.MaxPool2d(2)
            self.fc1 = nn.Linear(150, 24)
            self.relu3 = nn.ReLU()
            self.fc2 = nn.Linear(24, 16)
            self.relu4 = nn.ReLU()
            self.fc3 = nn.Linear(16, 10)
            self.dequant = tq.DeQuantStub()

        def forward(self, x):
            x = self.quant(x)
            x = self.pool1(self.relu1(self.conv1(x)))
            x = self.pool2(self.relu2(self.conv2(x)))
            x = torch.flatten(x, 1)
            x = self.relu3(self.fc1(x))
            x = self.relu4(self.fc2(x))
            return self.dequant(self.fc3(x))

    class BasicBlock(nn.Module):
        """torchvision.models.quantization.resnet.QuantizableBasicBlock without downsample."""

        def __init__(self, planes):
            super().__init__()
            self.conv1 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.skip_add_relu = FloatFunctional()

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.skip_add_relu.add_relu(out, x)

    class ResNetBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant = tq.QuantStub()
            self.layer1 = nn.Sequential(BasicBlock(4))
            self.dequant = tq.DeQuantStub()

        def forward(self, x):
            return self.dequant(self.layer1(self.quant(x)))

    class InvertedResidual(nn.Module):
        """torchvision's (quantizable) InvertedResidual, stride 1, inp == oup, ReLU6 kept."""

        def __init__(self, inp, hidden):
            super().__init__()
            self.conv = nn.Sequential(
                nn.Sequential(nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()),
                nn.Sequential(
                    nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False),
                    nn.BatchNorm2d(hidden),
                    nn.ReLU6(),
                ),
                nn.Conv2d(hidden, inp, 1, bias=False),
                nn.BatchNorm2d(inp),
            )
            self.skip_add = FloatFunctional()

        def forward(self, x):
            return self.skip_add.add(x, self.conv(x))

    class MobileNetBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant = tq.QuantStub()
            self.features = nn.Sequential(InvertedResidual(4, 8))
            self.dequant = tq.DeQuantStub()

        def forward(self, x):
            return self.dequant(self.features(self.quant(x)))

    return {
        "lenet5": (
            LeNet5,
            (1, 32, 32),
            [["conv1", "relu1"], ["conv2", "relu2"], ["fc1", "relu3"], ["fc2", "relu4"]],
        ),
        "resnet": (
            ResNetBlock,
            (4, 8, 8),
            [["layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu"], ["layer1.0.conv2", "layer1.0.bn2"]],
        ),
        "mobilenet": (
            MobileNetBlock,
            (4, 8, 8),
            [
                ["features.0.conv.0.0", "features.0.conv.0.1"],
                ["features.0.conv.1.0", "features.0.conv.1.1"],
                ["features.0.conv.2", "features.0.conv.3"],
            ],
        ),
    }


def _qconfigs(model_name):
    tq = torch.ao.quantization
    out = [
        ("fbgemm", tq.get_default_qconfig("fbgemm")),
        ("minmax", tq.default_qconfig),
    ]
    if model_name in ("lenet5", "resnet"):
        # Moving-average activations: PyTorch observes a Sequential-based fused module's output
        # twice per forward (as its last child and from the forward hook), which moves the
        # running range twice per batch.
        movavg = tq.MovingAverageMinMaxObserver.with_args(quant_min=0, quant_max=127)
        out.append(("movavg", tq.QConfig(activation=movavg, weight=tq.default_weight_observer)))
    if model_name == "lenet5":
        out.append(("clamp127", tq.QConfig(activation=tq.default_observer, weight=tq.weight_observer_range_neg_127_to_127)))
        seven_bit = tq.PerChannelMinMaxObserver.with_args(
            dtype=torch.qint8, qscheme=torch.per_channel_symmetric, quant_min=-64, quant_max=63
        )
        out.append(("clamp7bit", tq.QConfig(activation=tq.default_observer, weight=seven_bit)))
    return out


def _float_model(cls, in_shape, rng):
    """The model with seeded weights, BN statistics from training batches, in eval mode."""
    model = cls()
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, mod.num_features).astype(np.float32)))
                mod.bias.copy_(torch.from_numpy((rng.standard_normal(mod.num_features) * 0.2).astype(np.float32)))
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.from_numpy((rng.standard_normal((6,) + in_shape) * 1.3 + 0.2).astype(np.float32)))
    model.eval()
    return model


def _weights_of(module):
    w = module.weight()
    if w.qscheme() in (torch.per_channel_symmetric, torch.per_channel_affine):
        scales = w.q_per_channel_scales().to(torch.float64)
        zps = w.q_per_channel_zero_points().to(torch.int64)
    else:
        scales = torch.tensor([w.q_scale()], dtype=torch.float64)
        zps = torch.tensor([w.q_zero_point()], dtype=torch.int64)
    return scales, zps, w.int_repr().to(torch.int32)


def _unclamped_count(float_module_weight, scales, zps, ints):
    """How many int weights differ from plain qint8 quantization with the same qparams."""
    if scales.numel() == 1:
        raw = torch.quantize_per_tensor(float_module_weight, float(scales[0]), int(zps[0]), torch.qint8)
    else:
        raw = torch.quantize_per_channel(float_module_weight, scales, zps, 0, torch.qint8)
    return int((raw.int_repr().to(torch.int32) != ints).sum())


def _run_qconfig(name, model, qconfig, fuse_groups, calib, test, acts=None):
    tq = torch.ao.quantization
    m = tq.fuse_modules(model, fuse_groups)  # copies the model (inplace=False)
    m.qconfig = qconfig
    tq.prepare(m, inplace=True)
    if acts is not None:  # what each observer sees, by owning module, one tensor per batch
        for n, mod in m.named_modules():
            o = getattr(mod, "activation_post_process", None)
            if isinstance(o, tq.ObserverBase) and n != "quant":  # the QuantStub sees `calib`
                o.register_forward_pre_hook(lambda _m, inp, n=n: acts.setdefault(n, []).append(inp[0].detach().clone()))
    with torch.no_grad():
        for b in calib:
            m(b)
    obs = [(n, mod.activation_post_process) for n, mod in m.named_modules() if hasattr(mod, "activation_post_process")]
    obs = [(n, o) for n, o in obs if isinstance(o, tq.ObserverBase)]
    names, scales, zps, mins, maxs = [], [], [], [], []
    for n, o in obs:
        s, z = o.calculate_qparams()
        names.append(n)
        scales.append(float(s))
        zps.append(int(z))
        mins.append(float(o.min_val))
        maxs.append(float(o.max_val))
    fused_float = {n: mod for n, mod in m.named_modules()}
    float_weights = {n: mod.weight.detach().clone() for n, mod in fused_float.items() if isinstance(getattr(mod, "weight", None), torch.Tensor) and mod.weight.dim() > 1}
    # Fused ConvReLU2d / LinearReLU hold the conv/linear as child 0.
    for n, mod in fused_float.items():
        if isinstance(mod, (torch.ao.nn.intrinsic.ConvReLU2d, torch.ao.nn.intrinsic.LinearReLU)):
            float_weights[n] = mod[0].weight.detach().clone()
    q = tq.convert(m, inplace=False)
    fields = {
        "obs_names": ",".join(names),
        "obs_scale": f64(np.array(scales)),
        "obs_zp": i64(np.array(zps)),
        "obs_min": f32(np.array(mins, dtype=np.float32)),
        "obs_max": f32(np.array(maxs, dtype=np.float32)),
    }
    wnames, clamped = [], 0
    for n, mod in q.named_modules():
        if isinstance(mod, (torch.ao.nn.quantized.Linear, torch.ao.nn.quantized.Conv2d)):
            s, z, ints = _weights_of(mod)
            wnames.append(n)
            fields[f"w.{n}.scale"] = f64(s.numpy())
            fields[f"w.{n}.zp"] = i64(z.numpy())
            fields[f"w.{n}.int"] = u8(ints.to(torch.int8).numpy().view(np.uint8))
            clamped += _unclamped_count(float_weights[n], s, z, ints)
    fields = {**fields, "weights": ",".join(wnames)}
    q.dequant = torch.nn.Identity()
    with torch.no_grad():
        y = q(test)
    fields["out_shape"] = i64(list(y.shape))
    fields["out_int"] = u8(y.int_repr().numpy())
    fields["out_scale"] = f64(np.array([y.q_scale()]))
    fields["out_zp"] = i64(np.array([y.q_zero_point()]))
    fields["clamped"] = i64(np.array([clamped]))
    return fields


def generate(out_dir: str) -> list[tuple[str, int]]:
    """Write the flow golden files into out_dir; returns [(path, case_count)]."""
    global torch
    from safetensors.torch import save_file

    torch = setup_torch()
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for seed, (model_name, (cls, in_shape, fuse_groups)) in enumerate(_models().items()):
        rng = np.random.default_rng(4200 + seed)
        torch.manual_seed(4200 + seed)
        model = _float_model(cls, in_shape, rng)
        path = os.path.join(out_dir, f"{model_name}.safetensors")
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(state, path)
        written.append((path, len(state)))
        calib = [torch.from_numpy(rng.standard_normal((BATCH,) + in_shape).astype(np.float32)) for _ in range(3)]
        test = torch.from_numpy(rng.standard_normal((BATCH,) + in_shape).astype(np.float32))
        with torch.no_grad():
            y = model(test)
        gf = GoldenFile(TOPIC, model_name, f"torch fuse_modules/prepare/calibrate/convert of the {model_name} model in {model_name}.safetensors")
        gf.case(
            "data",
            {
                "calib_shape": i64([len(calib), BATCH, *in_shape]),
                "calib": f32(np.stack([b.numpy() for b in calib])),
                "test_shape": i64(list(test.shape)),
                "test": f32(test.numpy()),
                "float_shape": i64(list(y.shape)),
                "float_out": f32(y.numpy()),
            },
        )
        acts = {}
        results = []
        for qname, qconfig in _qconfigs(model_name):
            record = acts if not results else None
            results.append((qname, _run_qconfig(qname, model, qconfig, fuse_groups, calib, test, record)))
        fields = {}
        for n, batches in acts.items():
            fields[f"act.{n}.shape"] = i64(list(batches[0].shape))
            fields[f"act.{n}"] = f32(torch.stack(batches).numpy())
        gf.case("acts", fields)
        for qname, fields in results:
            gf.case(qname, fields)
        written.append((gf.write(out_dir), gf.case_count))
    return written
