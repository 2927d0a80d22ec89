"""First-step gradient parity: 2 processes (gloo) x 2 images vs 1 process x 4 images, same 4 real images.

python benchmarks/ddp_parity.py        (needs ../shared; the same check as tests/test_distributed.py)
"""

from __future__ import annotations

import socket
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import SHARED
from retinakit.training.distributed import Runtime
from test_distributed import _config, _first_step, _labels, _worker


def main() -> None:
    root = SHARED / "data" / "widerface" / "train-subset"
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        labels = _labels(root, tmp, 4)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        two = _config(labels, root / "images", tmp / "two", batch_size=2)
        torch.multiprocessing.spawn(_worker, args=(port, two, str(tmp / "two.pt")), nprocs=2, join=True)
        got = torch.load(tmp / "two.pt")
        torch.set_num_threads(1)
        one = _config(labels, root / "images", tmp / "one", batch_size=4)
        want, losses = _first_step(one, Runtime(torch.device("cpu")))
    diff = max((got["grads"][k] - g).abs().max().item() for k, g in want.items())
    scale = max(g.abs().max().item() for g in want.values())
    print(f"{len(want)} parameter tensors: max |grad diff| {diff:.2e}, max |grad| {scale:.2e}")
    print("losses, 1 process:", {k: round(v, 6) for k, v in losses.items()})
    print("losses, 2 processes (mean):", {k: round(v, 6) for k, v in got["losses"].items()})


if __name__ == "__main__":
    main()
