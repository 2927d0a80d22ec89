"""First-step gradient parity: 2 processes (gloo) x 2 images vs 1 process x 4 images, same 4 real images.

python benchmarks/ddp_parity.py        (needs ../shared; the check of tests/test_distributed.py, with figures)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import SHARED
from test_distributed import parity


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        diff, scale, two, one = parity(SHARED / "data" / "widerface" / "train-subset", Path(tmp))
    print(f"max |grad diff| {diff:.2e}, max |grad| {scale:.2e}")
    print("losses, 1 process x 4:", {k: round(v, 6) for k, v in sorted(one.items())})
    print("losses, 2 processes x 2 (mean):", {k: round(v, 6) for k, v in sorted(two.items())})


if __name__ == "__main__":
    main()
