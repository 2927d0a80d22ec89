"""How far each path's landmarks are from the float (fp32) path's on the same faces.

    python -m benchmarks.accuracy.landmark_agreement [--paths fp32,int8,openvino-bf16] [--images 12]

Photos at their own size; faces scoring > 0.5 of the reference path (``--reference``, default
``numpy-fp32``: the float graph fed by numpy) matched to each path's faces at IoU >= 0.5. Prints
the mean landmark distance (pixels) over the matched faces and how many of the reference's faces
were matched. Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from benchmarks.harness.data import load_photos
from benchmarks.harness.paths import REGISTRY, select
from benchmarks.harness.record import Record, Table, add_json_argument
from benchmarks.speed.stages import detector_of


def landmark_agreement(reference: Any, other: Any, images: list[np.ndarray]) -> tuple[float, int, int]:
    """Mean landmark distance (px) on faces both find (IoU >= 0.5); matched faces; the reference's faces."""
    from retinakit.core.boxes import box_iou

    distances: list[float] = []
    total = 0
    for im in images:
        a, b = reference.detect_bgr([im])[0], other.detect_bgr([im])[0]
        total += len(a)
        if len(a) == 0 or len(b) == 0:
            continue
        iou = box_iou(a.boxes, b.boxes)
        best = iou.argmax(1)
        keep = iou[np.arange(len(a)), best] >= 0.5
        d = np.linalg.norm(a.landmarks[keep] - b.landmarks[best[keep]], axis=-1).mean(-1)
        distances.extend(d.tolist())
    return (float(np.mean(distances)) if distances else float("nan")), len(distances), total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", default="default,fp32,int8,openvino-fp32,openvino-bf16,openvino-int8")
    parser.add_argument("--reference", default="numpy-fp32")
    parser.add_argument("--images", type=int, default=12)
    add_json_argument(parser)
    args = parser.parse_args(argv)
    record = Record(
        "accuracy/landmark_agreement", "Landmark agreement with fp32", sys.argv[1:] if argv is None else argv
    )
    photos = load_photos(args.images)
    reference = detector_of(REGISTRY[args.reference])
    table = Table(
        f"Mean landmark distance to {args.reference} (px), {len(photos)} photos at their own size, IoU >= 0.5",
        ["path", "mean distance px", "matched faces", f"{args.reference} faces"],
    )
    for spec in select(args.paths):
        if spec.kind == "peer" or spec.name == args.reference:
            continue
        try:
            det = detector_of(spec)
        except (ImportError, FileNotFoundError) as exc:
            record.note(f"{spec.name}: not available ({type(exc).__name__})")
            continue
        table.add(spec.name, *landmark_agreement(reference, det, photos))
    record.table(table)
    record.write(args.json)


if __name__ == "__main__":
    main()
