#!/usr/bin/env python3
"""Regenerate the committed PyTorch golden vectors.

Usage (from anywhere; paths are relative to the repository root unless absolute):

    python tools/golden/generate.py [--python-check] [--verify] [--out DIR] [topics...]

  topics          generator names (gen_<topic>.py); default: all of them. Known: see --help.
  --out DIR       write into DIR instead of each topic's fixed directory (only sensible with one topic).
  --python-check  only check the interpreter: torch 2.15.0 with the fbgemm engine importable.
                  Exit 0 when usable, 3 when not (message on stderr). Writes nothing.
  --verify        regenerate into a temporary directory and compare byte for byte with the
                  committed files; exit 1 on any difference. Writes nothing into the repo.
  --any-cpu       also run topics declared for another CPU class (module-level CPU =
                  "avx512-vnni" or "avx2"): fbgemm sums u8*s8 exactly with VNNI and saturates
                  int16 pairs without it, and float kernels sum in another order, so those
                  topics are skipped on other CPUs by default.

Fixed output directory per topic (the topic module's OUT_DIR):
  qtensor -> crates/qtensor/tests/data
"""

from __future__ import annotations

import argparse
import filecmp
import glob
import importlib
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)


def discover_topics() -> list[str]:
    names = sorted(os.path.basename(p)[len("gen_"):-len(".py")] for p in glob.glob(os.path.join(HERE, "gen_*.py")))
    return names


def python_check() -> int:
    try:
        import torch  # noqa: F401
    except Exception as exc:  # pragma: no cover - environment dependent
        print(f"golden: cannot import torch with {sys.executable}: {exc}", file=sys.stderr)
        return 3
    from torch_env import ENGINE, REQUIRED_TORCH

    if not torch.__version__.startswith(REQUIRED_TORCH):
        print(f"golden: need torch {REQUIRED_TORCH}, {sys.executable} has {torch.__version__}", file=sys.stderr)
        return 3
    if ENGINE not in torch.backends.quantized.supported_engines:
        print(f"golden: torch {torch.__version__} lacks the {ENGINE} engine", file=sys.stderr)
        return 3
    print(f"golden: ok: {sys.executable} torch {torch.__version__} engine {ENGINE}")
    return 0


def main(argv: list[str]) -> int:
    topics_known = discover_topics()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("topics", nargs="*", help=f"topics to generate (known: {', '.join(topics_known)})")
    ap.add_argument("--out", help="output directory override")
    ap.add_argument("--python-check", action="store_true", help="only check that torch 2.15.0 + fbgemm is usable")
    ap.add_argument("--verify", action="store_true", help="regenerate to a temp dir and diff against the repo")
    ap.add_argument("--any-cpu", action="store_true",
                    help="also run topics whose files come from another CPU class (their output will differ)")
    args = ap.parse_args(argv)

    if args.python_check:
        return python_check()
    topics = args.topics or topics_known
    unknown = [t for t in topics if t not in topics_known]
    if unknown:
        ap.error(f"unknown topic(s) {unknown}; known: {topics_known}")
    if args.out and len(topics) > 1:
        ap.error("--out needs exactly one topic")

    status = 0
    from torch_env import host_cpu_class

    host = host_cpu_class()
    for topic in topics:
        module = importlib.import_module(f"gen_{topic}")
        wanted = getattr(module, "CPU", None)
        if wanted is not None and wanted != host and not args.any_cpu:
            print(f"skipped {topic}: its files come from a CPU of class {wanted}, this one is {host} "
                  "(fbgemm's int8 sums and float summation order depend on it; --any-cpu overrides)")
            continue
        fixed = os.path.join(REPO, module.OUT_DIR)
        target = os.path.abspath(args.out) if args.out else fixed
        if args.verify:
            with tempfile.TemporaryDirectory() as tmp:
                written = module.generate(tmp)
                for path, _ in written:
                    name = os.path.basename(path)
                    committed = os.path.join(target, name)
                    same = os.path.exists(committed) and filecmp.cmp(path, committed, shallow=False)
                    print(f"{'same' if same else 'DIFFERENT'} {os.path.relpath(committed, REPO)}")
                    status |= 0 if same else 1
            continue
        written = module.generate(target)
        for path, cases in written:
            size = os.path.getsize(path)
            print(f"wrote {os.path.relpath(path, REPO)}: {cases} cases, {size} bytes")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
