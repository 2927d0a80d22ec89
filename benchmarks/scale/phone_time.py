"""Time of the ``auto`` default against one pass at the original size on phone-size photos, side by side.

    python -m benchmarks.scale.phone_time [--photos 6] [--long-side 4000] [--repeats 2] [--json OUT]

``--photos`` val-dev photos (every n-th of the sorted list, so the same ones each run) are upscaled
(bicubic) to ``--long-side`` (4000 px: a 12 MP phone photo). On each, ``Detector(resize="single")``
and ``Detector()`` run in turn, ``--repeats`` times, in one process, so that load from other jobs
falls on both alike; the figure is the median over those pairs of the default's time divided by the
one pass's (the issue's target for 12 MP photos: at most 1.3x). Both detectors are warmed up first
on a 640x480 image. Asserts nothing.

An upscaled photo has less detail than its pixels, so the default runs it at its detail scale
(much faster than one pass at the original size). A second table times *sharp* 12 MP photos the
same way: mosaics of 4 x 4 native crops of 1000 x 750 px from val-dev photos (no resampling), where
the default runs its first pass at the original size plus the coarser passes and checks.
"""

from __future__ import annotations

import argparse
import sys

import cv2
import numpy as np

from benchmarks.harness.data import VALDEV_IMAGES
from benchmarks.harness.record import Record, Table, add_json_argument
from benchmarks.harness.timing import call_ms, summary
from benchmarks.scale.photo_sizes import mosaic


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
    record = Record(
        "scale/phone_time", "Time of the auto default on phone-size photos", sys.argv[1:] if argv is None else argv
    )
    upscaled = []
    for path in paths:
        image = cv2.imread(str(path))
        factor = args.long_side / max(image.shape[:2])
        upscaled.append(cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC))
    title = f"{len(paths)} val-dev photos upscaled to a {args.long_side} px long side"
    record.table(pairs_table(title, upscaled, auto, single, args.repeats))
    record.note("photos: " + ", ".join(f"{p.parent.name}/{p.stem}" for p in paths))
    everything = sorted(VALDEV_IMAGES.glob("*/*.jpg"))
    mosaics = [mosaic([cv2.imread(str(p)) for p in everything[i :: len(paths)][:16]])[0] for i in range(len(paths))]
    title = f"{len(mosaics)} sharp 12 MP mosaics (4 x 4 native 1000 x 750 crops of val-dev photos)"
    record.table(pairs_table(title, mosaics, auto, single, args.repeats))
    record.write(args.json)


def pairs_table(title: str, photos: list[np.ndarray], auto, single, repeats: int) -> Table:
    """The default against one pass on each photo, ``repeats`` alternating pairs."""
    auto_ms: list[float] = []
    single_ms: list[float] = []
    for big in photos:
        for _ in range(repeats):
            single_ms.append(call_ms(lambda big=big: single.detect_bgr([big])))
            auto_ms.append(call_ms(lambda big=big: auto.detect_bgr([big])))
    ratios = [a / s for a, s in zip(auto_ms, single_ms, strict=True)]
    table = Table(
        f"{title}, {len(ratios)} alternating pairs",
        ["config", "ms / photo (median)", "x one pass (median of pairs)", "x min", "x max"],
    )
    table.add("Detector(resize='single')", summary(single_ms), 1.0, 1.0, 1.0)
    table.add("Detector()", summary(auto_ms), summary(ratios), min(ratios), max(ratios))
    return table


if __name__ == "__main__":
    main()
