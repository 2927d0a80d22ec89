"""A/B speed of the default detection path at VGA between two source trees (e.g. before and after a change).

    python benchmarks/ab_speed.py --a /path/to/old/src --b src --rounds 6

Each round runs one fresh process per tree, alternating A, B, A, B, ... so that load from other
jobs falls on both alike; each process times ``Detector().detect_bgr`` on the same VGA photos
(best of ``--repeat`` passes, ms per image, batch 1). Prints every round and the median of the
per-round ratios B / A (1.00 = same speed). Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys, time
from pathlib import Path
import cv2, numpy as np
from retinakit import Detector
root = Path(sys.argv[1]); n, repeat, threads = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if root.is_dir():
    files = sorted(root.glob("*/*.jpg"))[:: max(1, 1096 // n)][:n]
    photos = [cv2.resize(cv2.imread(str(f)), (640, 480)) for f in files]
else:
    import skimage.data
    photos = [cv2.resize(np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1]), (640, 480))] * n
det = Detector(threads=threads or None)
det.detect_bgr(photos[:1])
best = float("inf")
for _ in range(repeat):
    tick = time.perf_counter()
    for p in photos:
        det.detect_bgr([p])
    best = min(best, (time.perf_counter() - tick) / len(photos))
print(json.dumps({"ms": 1000 * best}))
"""


def run(src: str, args: argparse.Namespace) -> float:
    env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
    cmd = [sys.executable, "-c", CHILD, str(args.images_dir), str(args.images), str(args.repeat), str(args.threads)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["ms"])


def main() -> None:
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "widerface" / "val-dev" / "images"
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", required=True, help="source tree A (the directory holding the retinakit package)")
    parser.add_argument("--b", required=True, help="source tree B")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="inference threads (0: the detector's default)")
    parser.add_argument("--images-dir", type=Path, default=shared)
    args = parser.parse_args()
    ratios = []
    print(f"{'round':>5} {'A ms':>8} {'B ms':>8} {'B/A':>6}")
    for r in range(args.rounds):
        a, b = (
            (run(args.a, args), run(args.b, args))
            if r % 2 == 0
            else tuple(reversed((run(args.b, args), run(args.a, args))))
        )
        ratios.append(b / a)
        print(f"{r:>5} {a:>8.2f} {b:>8.2f} {b / a:>6.3f}", flush=True)
    print(f"median B/A over {args.rounds} rounds: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
