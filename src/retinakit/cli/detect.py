"""``retinakit detect``: faces in images, folders, globs, videos and cameras."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from retinakit.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_detector_flags,
    detector_options,
    open_output,
    progress_bar,
    write_records,
)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("detect", help="detect faces in images, videos or a camera")
    p.add_argument(
        "paths",
        nargs="+",
        help="image files, directories (searched recursively), glob patterns, video files or a camera index",
    )
    p.add_argument("-o", "--output", help="JSON-lines output file (default: standard output)")
    p.add_argument("--save-images", metavar="DIR", help="write annotated copies here (videos as DIR/<name>.mp4)")
    p.add_argument("--wider", metavar="DIR", help="write WIDER-format txt files here (parent/name.txt)")
    p.add_argument("--every", type=int, default=1, help="videos: process every N-th frame (default 1)")
    p.add_argument(
        "--track",
        action="store_true",
        help="videos: follow faces across frames; records carry a stable track_id (retinakit.apps.track)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_detector_flags(p, None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from retinakit.apps.files import detect_paths
    from retinakit.detector import Detector
    from retinakit.io.inputs import list_images
    from retinakit.io.video import VideoError, detect_video, is_video_source

    videos = [p for p in args.paths if is_video_source(p)]
    paths = list_images([p for p in args.paths if not is_video_source(p)])
    if not paths and not videos:
        print("retinakit detect: no images found", file=sys.stderr)
        return EXIT_FAILED
    options = detector_options(args)
    detector = Detector(**options)
    video_detector, tracker_config = detector, None
    if args.track:  # ByteTrack-style: the detector runs lower, the tracker keeps what it can follow
        from retinakit.apps.track import TrackerConfig
        from retinakit.detector import DetectorConfig

        high = options.get("score_threshold", DetectorConfig.score_threshold)
        tracker_config = TrackerConfig(high_threshold=high, low_threshold=min(TrackerConfig.low_threshold, high))
        video_detector = Detector(**(options | {"score_threshold": tracker_config.low_threshold}))
    root = Path(args.paths[0]) if len(args.paths) == 1 and Path(args.paths[0]).is_dir() else None
    out = open_output(args.output)
    failed = 0
    try:
        if paths:
            records = detect_paths(
                paths,
                detector,
                save_images=args.save_images,
                wider=args.wider,
                root=root,
                progress=progress_bar(not args.no_progress, "img"),
            )
            failed += write_records(records, out, "detect", "path")
        for video in videos:
            annotated = None
            if args.save_images:
                annotated = Path(args.save_images) / f"{Path(video).stem or 'camera' + video}.mp4"
            try:
                tracker = None
                if tracker_config is not None:
                    from retinakit.apps.track import FaceTracker

                    tracker = FaceTracker(tracker_config)
                frames = detect_video(
                    video,
                    video_detector,
                    tracker=tracker,
                    every=args.every,
                    annotated=annotated,
                    progress=progress_bar(not args.no_progress, "frame"),
                )
                write_records(frames, out, "detect", "source")
            except VideoError as exc:
                failed += 1
                print(f"retinakit detect: {exc}", file=sys.stderr)
                out.write(json.dumps({"path": video, "error": str(exc)}) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if failed:
        print(f"retinakit detect: {failed} of {len(paths) + len(videos)} inputs failed", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK
