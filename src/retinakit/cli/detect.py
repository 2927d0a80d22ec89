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
    EXIT_USAGE,
    add_detector_flags,
    detector_options,
    int_in,
    open_output,
    overwrites_input,
    progress_bar,
    report_empty,
    write_records,
)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("detect", help="detect faces in images, videos or a camera")
    p.add_argument(
        "paths",
        nargs="+",
        help="image files, directories (searched recursively), glob patterns, video files, or camera:N "
        "(a bare N means camera N only when no file or folder N exists)",
    )
    p.add_argument("-o", "--output", help="JSON-lines output file (default: standard output)")
    p.add_argument(
        "--save-images",
        metavar="DIR",
        help="write annotated copies here, at their path below the common input folder (a.png -> a.png.jpg, "
        "clip.avi -> clip.avi.mp4)",
    )
    p.add_argument(
        "--save-meshes", metavar="DIR", help="write each face's dense mesh as .obj (dense-branch model, torch backend)"
    )
    p.add_argument("--wider", metavar="DIR", help="write WIDER-format txt files here (folder/name.txt)")
    p.add_argument("--every", type=int_in(1), default=1, help="videos: process every N-th frame (default 1)")
    p.add_argument(
        "--track",
        action="store_true",
        help="videos: follow faces across frames; records carry a stable track_id (retinakit.apps.track)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="say which inference path runs (on standard error)")
    add_detector_flags(p, None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from retinakit.apps.files import OutputNames, detect_paths
    from retinakit.apps.video import detect_video
    from retinakit.detector import Detector
    from retinakit.errors import OutputError, VideoError
    from retinakit.io.inputs import find_images
    from retinakit.io.video import camera_index, is_video_source

    videos = [p for p in args.paths if is_video_source(p)]
    listing = find_images([p for p in args.paths if not is_video_source(p)])
    paths = listing.paths
    file_inputs = [*paths, *(v for v in videos if camera_index(v) is None)]
    if overwrites_input(args.output, file_inputs):
        print(f"retinakit detect: error: -o {args.output} would overwrite an input file", file=sys.stderr)
        return EXIT_USAGE
    empty = report_empty("detect", listing.empty, "path")
    if not paths and not videos:
        print("retinakit detect: no images found", file=sys.stderr)
        return EXIT_FAILED
    options = detector_options(args)
    detector = Detector(**options)
    if args.verbose:
        print(f"retinakit detect: {detector!r}", file=sys.stderr)
    names = OutputNames(file_inputs)
    video_detector, tracker_config = detector, None
    if args.track:  # ByteTrack-style: the detector runs lower, the tracker keeps what it can follow
        from retinakit.apps.track import TrackerConfig
        from retinakit.detector import DetectorConfig

        high = options.get("score_threshold", DetectorConfig.score_threshold)
        tracker_config = TrackerConfig(high_threshold=high, low_threshold=min(TrackerConfig.low_threshold, high))
        video_detector = Detector(**(options | {"score_threshold": tracker_config.low_threshold}))
    out = open_output(args.output)
    failed = len(empty)
    try:
        for record in empty:
            out.write(json.dumps(record) + "\n")
        if paths:
            records = detect_paths(
                paths,
                detector,
                save_images=args.save_images,
                wider=args.wider,
                names=names,
                save_meshes=args.save_meshes,
                progress=progress_bar(not args.no_progress, "img"),
            )
            failed += write_records(records, out, "detect", "path")
        for video in videos:
            try:
                annotated = None
                if args.save_images:
                    camera = camera_index(video)
                    annotated = (
                        Path(args.save_images) / f"camera_{camera}.mp4"
                        if camera is not None
                        else names.annotated(args.save_images, video, ".mp4")
                    )
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
            except (VideoError, OutputError) as exc:
                failed += 1
                print(f"retinakit detect: {exc}", file=sys.stderr)
                out.write(json.dumps({"path": video, "error": str(exc)}) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if failed:
        total = len(paths) + len(videos) + len(empty)
        print(f"retinakit detect: {failed} of {total} inputs failed", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK
