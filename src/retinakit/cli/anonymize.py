"""``retinakit anonymize INPUT... -o DIR``: blur, pixelate or paint over faces in images and videos."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
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
    missing_required,
    progress_bar,
    write_records,
)

PAPER_SCALES = (500, 800, 1100, 1400, 1700)


def add_parser(subparsers: Any) -> None:
    from retinakit.apps.anonymize import DEFAULT_THRESHOLD

    p = subparsers.add_parser(
        "anonymize",
        aliases=["anonymise"],  # the spelling of earlier releases, accepted for one release
        help="hide faces in images and videos (blur, pixelate or solid), with a JSON sidecar per output",
    )
    p.add_argument("paths", nargs="+", help="image and video files, directories (searched recursively), globs")
    p.add_argument("-o", "--output", help="output directory: anonymized copies, sidecars, index.jsonl (required)")
    alias(p, "--out", dest="output")
    p.add_argument(
        "--method",
        choices=("blur", "pixelate", "solid"),
        default="blur",
        help=f"how faces are hidden {default('blur')}",
    )
    p.add_argument(
        "--shape", choices=("ellipse", "rectangle"), default="ellipse", help=f"region hidden {default('ellipse')}"
    )
    p.add_argument(
        "--margin", type=float, default=0.25, help=f"added on each side, fraction of the box size {default(0.25)}"
    )
    p.add_argument(
        "--blur-sigma",
        type=float,
        default=0.125,
        help=f"blur: Gaussian sigma, fraction of the region size {default(0.125)}",
    )
    p.add_argument("--blocks", type=int, default=8, help=f"pixelate: cells across the region {default(8)}")
    p.add_argument("--color", type=_color, default=(0, 0, 0), help=f"solid: fill colour B,G,R {default('0,0,0')}")
    alias(p, "--tta", dest="tta", action="store_true")  # = --scales 500,800,1100,1400,1700 --flip
    p.add_argument("--no-track", action="store_true", help="videos: frame by frame, no tracking (gaps not bridged)")
    p.add_argument(
        "--bridge-frames", type=int, default=10, help=f"videos: frames a missed face stays hidden {default(10)}"
    )
    add_progress_flag(p)
    add_detector_flags(p, DEFAULT_THRESHOLD)
    p.set_defaults(func=run)


def _color(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(0 <= v <= 255 for v in values):
        raise argparse.ArgumentTypeError(f"expected B,G,R with values 0-255, got {text!r}")
    return values


def run(args: argparse.Namespace) -> int:
    from retinakit.apps.anonymize import anonymize_paths, list_inputs
    from retinakit.apps.track import TrackerConfig
    from retinakit.detector import Detector
    from retinakit.ops.masks import AnonymizeConfig

    if missing_required(args, "anonymize", output="-o/--output"):
        return EXIT_USAGE
    # the flags carry the field names; a bad value raises ValueError: a usage error (exit 2) in main()
    config = AnonymizeConfig(**{f.name: getattr(args, f.name) for f in fields(AnonymizeConfig)})
    threshold = args.score_threshold
    tracker = None
    if not args.no_track:
        low = min(TrackerConfig.low_threshold, threshold)
        tracker = TrackerConfig(high_threshold=threshold, low_threshold=low, bridge_frames=args.bridge_frames)
    images, videos = list_inputs(args.paths)
    if not images and not videos:
        print("retinakit anonymize: no images or videos found", file=sys.stderr)
        return EXIT_FAILED
    options = detector_options(args)
    still_options = options | ({"scales": PAPER_SCALES, "flip": True} if args.tta else {})
    video_options = {k: v for k, v in options.items() if k not in ("scales", "flip")}  # TTA: images only
    video_detector = None
    if videos:  # with tracking the detector runs at the tracker's low threshold (its second stage)
        low = tracker.low_threshold if tracker else threshold
        video_detector = Detector(**(video_options | {"score_threshold": low}))
    detector = Detector(**still_options) if images or video_detector is None else video_detector
    root = Path(args.paths[0]) if len(args.paths) == 1 and Path(args.paths[0]).is_dir() else None
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "index.jsonl", "w") as index:
        records = anonymize_paths(
            args.paths,
            out,
            detector,
            video_detector=video_detector,
            config=config,
            threshold=threshold,
            tracker=tracker,
            root=root,
            progress=progress_bar(not args.no_progress, "item"),
        )
        failed = write_records(records, index, "anonymize", "source")
    print(f"anonymized copies, sidecars and index.jsonl in {out}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK
