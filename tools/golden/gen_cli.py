"""Golden vectors for the qstack CLI (crates/qstack-cli): a PyTorch LeNet5 state dict for
`qstack import`.

- `lenet5_torch.safetensors`: the state dict of a PyTorch LeNet5 (attributes conv1, conv2,
  fc1, fc2, fc3; relu / max-pool / flatten functional), seeded init plus three SGD steps on
  random data, saved with `safetensors.torch.save_file` (needs the `safetensors` package).
- `lenet5_import.golden`, case `lenet5_torch`: shape i64[4]; x f32 (4 x 1 x 32 x 32 inputs);
  y_shape i64[2]; y f32 (the eval-mode logits PyTorch computes).
"""

from __future__ import annotations

import os

import numpy as np

from golden_io import GoldenFile, f32, i64
from torch_env import setup_torch

TOPIC = "cli"
OUT_DIR = "crates/qstack-cli/tests/data"


def lenet5(torch):
    nn = torch.nn
    F = torch.nn.functional

    class LeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 5)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(400, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = torch.flatten(x, 1)
            x = F.relu(self.fc1(x))
            x = F.relu(self.fc2(x))
            return self.fc3(x)

    return LeNet5()


def generate(out_dir: str) -> list[tuple[str, int]]:
    """Write the CLI golden files into out_dir; returns [(path, case_count)]."""
    from safetensors.torch import save_file

    torch = setup_torch()
    rng = np.random.default_rng(808)
    torch.manual_seed(808)
    model = lenet5(torch)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(3):
        x = torch.from_numpy(rng.normal(0, 1, (8, 1, 32, 32)).astype(np.float32))
        target = torch.from_numpy(rng.integers(0, 10, 8))
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), target).backward()
        opt.step()
    model.eval()
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "lenet5_torch.safetensors")
    state = model.state_dict()
    save_file(state, path)
    x = torch.from_numpy(rng.normal(0, 1, (4, 1, 32, 32)).astype(np.float32))
    with torch.no_grad():
        y = model(x)
    gf = GoldenFile(TOPIC, "lenet5_import", "eval logits of the torch LeNet5 saved in lenet5_torch.safetensors")
    gf.case("lenet5_torch", {"shape": i64(list(x.shape)), "x": f32(x.numpy()), "y_shape": i64(list(y.shape)), "y": f32(y.numpy())})
    return [(path, len(state)), (gf.write(out_dir), gf.case_count)]
