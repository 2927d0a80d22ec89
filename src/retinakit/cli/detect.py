"""``retinakit detect``: faces in images, folders, globs, videos and cameras."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from retinakit.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_detector_flags,
    add_progress_flag,
    default,
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
    p.add_argument("-o", "--output", help="JSON-lines file of the faces (default: standard output)")
    p.add_argument(
        "--save-images",
        metavar="DIR",
        help="write annotated copies here (default: none): one input or inputs from one folder land directly in DIR "
        "(astronaut.jpg -> DIR/astronaut.jpg, a.png -> DIR/a.png.jpg, clip.avi -> DIR/clip.avi.mp4); inputs from "
        "several folders keep their path below the common folder",
    )
    p.add_argument(
        "--save-meshes",
        metavar="DIR",
        help="write each face's dense mesh as .obj: dense-branch model, torch backend (default: none)",
    )
    p.add_argument(
        "--wider", metavar="DIR", help="write WIDER-format txt files here, DIR/folder/name.txt (default: none)"
    )
    p.add_argument("--every", type=int_in(1), default=1, help=f"videos: process every N-th frame {default(1)}")
    p.add_argument(
        "--track",
        action="store_true",
        help="videos: follow faces across frames; records carry a stable track_id (retinakit.apps.track)",
    )
    add_progress_flag(p)
    p.add_argument("-v", "--verbose", action="store_true", help="say which inference path runs (on standard error)")
    add_detector_flags(p, None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from retinakit.apps.files import OutputNames, detect_paths
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
    video_detector, tracker_config = _for_tracking(detector, options) if args.track else (detector, None)
    out = open_output(args.output)
    failed = len(empty)
    tally = Tally()
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
            failed += write_records(tally.images(records), out, "detect", "path")
        for video in videos:
            try:
                frames = _video_records(video, args, names, video_detector, tracker_config)
                write_records(tally.frames(frames), out, "detect", "source")
            except (VideoError, OutputError) as exc:
                failed += 1
                print(f"retinakit detect: {exc}", file=sys.stderr)
                out.write(json.dumps({"path": video, "error": str(exc)}) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"retinakit detect: {tally.summary(args)}", file=sys.stderr)
    if failed:
        total = len(paths) + len(videos) + len(empty)
        print(f"retinakit detect: {failed} of {total} inputs failed", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def _for_tracking(detector: Any, options: dict[str, Any]) -> tuple[Any, Any]:
    """ByteTrack-style: the detector runs at the tracker's low threshold, the tracker keeps what it can follow."""
    from retinakit.apps.track import TrackerConfig
    from retinakit.detector import Detector, DetectorConfig

    high = options.get("score_threshold", DetectorConfig.score_threshold)
    config = TrackerConfig(high_threshold=high, low_threshold=min(TrackerConfig.low_threshold, high))
    return Detector(**(options | {"score_threshold": config.low_threshold})), config


def _video_records(
    video: str, args: argparse.Namespace, names: Any, detector: Any, tracker_config: Any
) -> Iterator[dict[str, Any]]:
    """One video's or camera's frame records, with its annotated copy and tracker when asked for."""
    from retinakit.apps.video import detect_video
    from retinakit.io.video import camera_index

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
    progress = progress_bar(not args.no_progress, "frame")
    return detect_video(video, detector, tracker=tracker, every=args.every, annotated=annotated, progress=progress)


class Tally:
    """Counts what a run wrote, for its one-line summary on standard error."""

    def __init__(self) -> None:
        self.counts = {"images": 0, "frames": 0, "faces": 0, "copies": 0}

    def images(self, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for record in records:
            if "faces" in record:
                self.counts["images"] += 1
                self.counts["faces"] += len(record["faces"])
                self.counts["copies"] += "error" not in record
            yield record

    def frames(self, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for record in records:
            self.counts["frames"] += "faces" in record
            self.counts["faces"] += len(record.get("faces", ()))
            yield record

    def summary(self, args: argparse.Namespace) -> str:
        """``2 images, 3 faces; JSON lines to faces.jsonl; 2 annotated copies in annotated/``."""
        c = self.counts
        done = [f"{c['images']} image{'s' * (c['images'] != 1)}"]
        if c["frames"]:
            done.append(f"{c['frames']} video frame{'s' * (c['frames'] != 1)}")
        parts = [", ".join([*done, f"{c['faces']} face{'s' * (c['faces'] != 1)}"])]
        parts.append(f"JSON lines to {'standard output' if args.output in (None, '-') else args.output}")
        if args.save_images:
            parts.append(f"{c['copies']} annotated cop{'ies' if c['copies'] != 1 else 'y'} in {args.save_images}")
        if args.wider:
            parts.append(f"WIDER files in {args.wider}")
        if args.save_meshes:
            parts.append(f"meshes in {args.save_meshes}")
        return "; ".join(parts)
