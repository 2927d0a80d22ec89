"""``retinakit align``: aligned face crops (ArcFace five-point template) and an index."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from retinakit.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_detector_flags,
    detector_options,
    progress_bar,
    write_records,
)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("align", help="write aligned face crops (ArcFace five-point template)")
    p.add_argument("paths", nargs="+", help="image files, directories or glob patterns")
    p.add_argument("--out", required=True, help="directory for the crops and index.jsonl")
    p.add_argument("--size", type=int, default=112, help="crop size in pixels (template scaled by size/112)")
    p.add_argument("--no-progress", action="store_true")
    add_detector_flags(p, 0.9)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from retinakit.apps.files import align_paths
    from retinakit.detector import Detector
    from retinakit.io.inputs import list_images

    paths = list_images(args.paths)
    if not paths:
        print("retinakit align: no images found", file=sys.stderr)
        return EXIT_FAILED
    options = {"score_threshold": 0.9, **detector_options(args)}
    detector = Detector(**options)
    root = Path(args.paths[0]) if len(args.paths) == 1 and Path(args.paths[0]).is_dir() else None
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "index.jsonl", "w") as index:
        records = align_paths(
            paths, detector, out_dir, size=args.size, root=root, progress=progress_bar(not args.no_progress, "img")
        )
        failed = write_records(records, index, "align", "source")
    print(f"crops and index.jsonl in {out_dir}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK
