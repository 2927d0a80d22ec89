"""The paper's test-time strategy on WIDER FACE val-dev: AP, time and memory of each variant.

    python -m benchmarks.accuracy.tta_table [--limit N] [--output tta_table.json]

Runs every pass once per image (original size; short sides 500, 800, 1100, 1400, 1700 capped at
2600 on the long side; each plain and flipped), times each pass, and evaluates these rows with
the official protocol: single pass, flip only, multi-scale only, multi-scale + flip merged by NMS,
and the full strategy (multi-scale + flip + box voting) with each cluster score rule. ms per image
of a row = the sum of its passes' times (measured one forward pass per view) plus its merge time.
Peak memory of each row: a fresh process running that row's Detector on the largest val-dev image.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.harness.data import WIDER
from benchmarks.harness.fresh import ChildFailed, peak_rss_mb, run_fresh
from retinakit import Detector
from retinakit.core.images import read_image
from retinakit.evaluation.wider import WiderGroundTruth, evaluate_wider, read_image_list
from retinakit.inference.preprocess import ResizePolicy, resize
from retinakit.inference.tta import TTAConfig, flip_faces, merge_passes
from retinakit.io.batching import prefetch
from retinakit.io.formats import to_wider_rows

ROOT = WIDER
SCALES = (500, 800, 1100, 1400, 1700)
MAX_SIDE = 2600

ROWS = {
    "single pass (original size)": (["orig"], TTAConfig()),
    "flip only (original size + flip, vote)": (["orig", "orig-flip"], TTAConfig(flip=True)),
    "multi-scale only (vote)": ([f"s{s}" for s in SCALES], TTAConfig(scales=SCALES)),
    "multi-scale + flip, NMS merge": (
        [f"s{s}{f}" for s in SCALES for f in ("", "-flip")],
        TTAConfig(scales=SCALES, flip=True, merge="nms"),
    ),
}
for rule in ("max", "mean", "consensus"):
    ROWS[f"full: multi-scale + flip + vote ({rule})"] = (
        [f"s{s}{f}" for s in SCALES for f in ("", "-flip")],
        TTAConfig(scales=SCALES, flip=True, vote_score=rule),
    )


def peak_memory(image: str, options: dict) -> dict:
    """Peak RSS (MiB) of one Detector with these TTA options on ``image``, in a fresh process."""
    det = Detector(score_threshold=0.02, **options)
    faces = det.detect_bgr([read_image(image)])[0]
    finite = bool((faces.landmarks == faces.landmarks).all())
    return {"peak_mb": peak_rss_mb(), "landmarks_all_finite": finite, "n": len(faces)}


def run_passes(det: Detector, image: np.ndarray) -> tuple[dict, dict]:
    """Faces and seconds of every pass of one image."""
    faces, seconds = {}, {}
    width = image.shape[1]
    policies = {"orig": ResizePolicy()} | {f"s{s}": ResizePolicy(short_side=s, max_side=MAX_SIDE) for s in SCALES}
    for name, policy in policies.items():
        resized, frame = resize(image, policy)
        for flip in (False, True):
            view = np.ascontiguousarray(resized[:, ::-1]) if flip else resized
            start = time.perf_counter()
            (f,) = det.infer([view], [frame])  # the detector's own batch layout (float or in-graph uint8)
            key = f"{name}-flip" if flip else name
            faces[key] = flip_faces(f, width) if flip else f
            seconds[key] = time.perf_counter() - start
    return faces, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, help="only the first N images (a quick look, not the figure)")
    parser.add_argument("--output", default="tta_table.json")
    parser.add_argument("--threads", type=int, help="inference threads (default: all cores)")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-row peak-memory processes")
    args = parser.parse_args()

    keys = read_image_list(ROOT / "val-dev" / "image_list.txt")[: args.limit]
    gt = WiderGroundTruth.from_mat_dir(ROOT / "ground_truth", keys)
    det = Detector(score_threshold=0.02, threads=args.threads)
    predictions = {row: {} for row in ROWS}
    row_seconds = dict.fromkeys(ROWS, 0.0)
    images = ROOT / "val-dev" / "images"
    for i, (key, image) in enumerate(prefetch(lambda k: read_image(images / f"{k}.jpg"), keys)):
        faces, seconds = run_passes(det, image)
        for row, (passes, config) in ROWS.items():
            start = time.perf_counter()
            merged = faces[passes[0]] if len(passes) == 1 else merge_passes([faces[p] for p in passes], config, 750)
            row_seconds[row] += time.perf_counter() - start + sum(seconds[p] for p in passes)
            predictions[row][key] = to_wider_rows(merged)
        if (i + 1) % 100 == 0:
            print(f"{i + 1}/{len(keys)} images", file=sys.stderr, flush=True)

    largest = max(keys, key=lambda k: np.prod(read_image(images / f"{k}.jpg").shape[:2]))
    table = {}
    print(f"\nWIDER FACE val-dev ({len(keys)} images), official protocol, AP % at IoU 0.5")
    print(f"{'row':46s} {'easy':>6s} {'medium':>7s} {'hard':>6s} {'ms/img':>8s} {'peak MB':>8s}")
    for row, (_passes, config) in ROWS.items():
        result = evaluate_wider(predictions[row], gt)
        options = {
            "scales": list(config.scales),
            "flip": config.flip,
            "merge": config.merge,
            "vote_score": config.vote_score,
        }
        memory = {}
        if not args.no_memory:
            try:
                memory = run_fresh(
                    "benchmarks.accuracy.tta_table:peak_memory",
                    {"image": str(images / f"{largest}.jpg"), "options": options},
                )
            except ChildFailed:
                memory = {}
        ms = 1000 * row_seconds[row] / len(keys)
        table[row] = {"ap": result.ap, "ap_50_95": result.ap_50_95, "ms_per_image": ms, **memory}
        print(
            f"{row:46s} {100 * result.ap['easy']:6.2f} {100 * result.ap['medium']:7.2f} "
            f"{100 * result.ap['hard']:6.2f} {ms:8.0f} {memory.get('peak_mb', float('nan')):8.0f}"
        )
    print(f"\npeak memory measured on the largest val-dev image: {largest}")
    Path(args.output).write_text(json.dumps({"largest_image": largest, "rows": table}, indent=1))


if __name__ == "__main__":
    main()
