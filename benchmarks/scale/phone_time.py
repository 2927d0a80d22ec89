"""Time of the ``auto`` default against one pass at the original size on phone-size photos, side by side.

    python -m benchmarks.scale.phone_time [--photos 6] [--long-side 4000] [--repeats 2] [--json OUT]

``--photos`` val-dev photos (every n-th of the sorted list, so the same ones each run) are upscaled
(bicubic) to ``--long-side`` (4000 px: a 12 MP phone photo). On each, ``Detector(resize="single")``
and ``Detector()`` run in turn, ``--repeats`` times, in one process, so that load from other jobs
falls on both alike; the figure is the median over those pairs of the default's time divided by the
one pass's (the issue's target for 12 MP photos: at most 1.3x). Both detectors are warmed up first
on a 640x480 image. Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys

import cv2
import numpy as np

from benchmarks.harness.data import VALDEV_IMAGES
from benchmarks.harness.record import Record, Table, add_json_argument
from benchmarks.harness.timing import call_ms, summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=6)
    parser.add_argument("--long-side", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=2, help="pairs per photo")
    add_json_argument(parser)
    args = parser.parse_args(argv)
    from retinakit import Detector

    paths = sorted(VALDEV_IMAGES.glob("*/*.jpg"))
    if not paths:
        raise SystemExit(f"{VALDEV_IMAGES}: no photos (the val-dev data is needed)")
    paths = paths[:: max(1, len(paths) // args.photos)][: args.photos]
    auto, single = Detector(), Detector(resize="single")
    warm = np.full((480, 640, 3), 128, np.uint8)
    auto.detect_bgr([warm])
    single.detect_bgr([warm])
    auto_ms: list[float] = []
    single_ms: list[float] = []
    for path in paths:
        image = cv2.imread(str(path))
        factor = args.long_side / max(image.shape[:2])
        big = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        for _ in range(args.repeats):
            single_ms.append(call_ms(lambda big=big: single.detect_bgr([big])))
            auto_ms.append(call_ms(lambda big=big: auto.detect_bgr([big])))
    ratios = [a / s for a, s in zip(auto_ms, single_ms, strict=True)]
    record = Record(
        "scale/phone_time", "Time of the auto default on phone-size photos", sys.argv[1:] if argv is None else argv
    )
    table = Table(
        f"{len(paths)} val-dev photos upscaled to a {args.long_side} px long side, {len(ratios)} alternating pairs",
        ["config", "ms / photo (median)", "x one pass (median of pairs)", "x min", "x max"],
    )
    table.add("Detector(resize='single')", summary(single_ms), 1.0, 1.0, 1.0)
    table.add("Detector()", summary(auto_ms), summary(ratios), min(ratios), max(ratios))
    record.table(table)
    record.note("photos: " + ", ".join(f"{p.parent.name}/{p.stem}" for p in paths))
    record.write(args.json)


if __name__ == "__main__":
    main()
