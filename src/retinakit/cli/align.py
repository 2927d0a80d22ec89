"""``retinakit align``: aligned face crops (ArcFace five-point template) and an index."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from retinakit.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_detector_flags,
    add_progress_flag,
    alias,
    default,
    detector_options,
    int_in,
    missing_required,
    overwrites_input,
    progress_bar,
    report_empty,
    write_records,
)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("align", help="write aligned face crops (ArcFace five-point template)")
    from retinakit.ops.align import MAX_SIZE, MIN_SIZE

    p.add_argument("paths", nargs="+", help="image files, directories or glob patterns")
    p.add_argument("-o", "--output", help="directory for the crops and index.jsonl (required)")
    alias(p, "--out", dest="output")
    p.add_argument(
        "--crop-size",
        type=int_in(MIN_SIZE, MAX_SIZE),
        default=112,
        help=f"crop size in pixels, {MIN_SIZE}-{MAX_SIZE}; the template is scaled by size/112 {default(112)}",
    )
    alias(p, "--size", dest="crop_size", type=int_in(MIN_SIZE, MAX_SIZE))
    add_progress_flag(p)
    add_detector_flags(p, 0.9)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from retinakit.apps.files import align_paths
    from retinakit.detector import Detector
    from retinakit.io.inputs import find_images

    if missing_required(args, "align", output="-o/--output"):
        return EXIT_USAGE
    listing = find_images(args.paths)
    paths = listing.paths
    empty = report_empty("align", listing.empty, "source")
    if not paths:
        print("retinakit align: no images found", file=sys.stderr)
        return EXIT_FAILED
    options = {"score_threshold": 0.9, **detector_options(args)}
    detector = Detector(**options)
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    index_path = out_dir / "index.jsonl"
    if overwrites_input(str(index_path), paths):
        print(f"retinakit align: error: {index_path} would overwrite an input file", file=sys.stderr)
        return EXIT_USAGE
    with open(index_path, "w") as index:
        for record in empty:
            index.write(json.dumps(record) + "\n")
        records = align_paths(
            paths, detector, out_dir, size=args.crop_size, progress=progress_bar(not args.no_progress, "img")
        )
        failed = len(empty) + write_records(records, index, "align", "source")
    print(f"crops and index.jsonl in {out_dir}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK
