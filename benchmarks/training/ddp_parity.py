"""First-step gradient parity: 2 processes (gloo) x 2 images vs 1 process x 4 images, same 4 real images.

python -m benchmarks.training.ddp_parity     (needs the training subset; the check of tests/test_distributed.py)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.harness.data import TRAIN_SUBSET
from retinakit.training.parity import parity


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = parity(TRAIN_SUBSET, Path(tmp))
    print(f"max |grad diff| {result.max_diff:.2e}, max |grad| {result.max_grad:.2e}")
    print("losses, 1 process x 4:", {k: round(v, 6) for k, v in sorted(result.one_losses.items())})
    print("losses, 2 processes x 2 (mean):", {k: round(v, 6) for k, v in sorted(result.two_losses.items())})


if __name__ == "__main__":
    main()
