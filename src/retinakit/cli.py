"""Command line: ``retinakit detect | align | evaluate | evaluate-landmarks | export``.

A thin layer: each sub-command turns its flags into config fields and calls one library function.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def _progress(enabled: bool, unit: str) -> Any:
    def wrap(items: Iterable[Any], total: int) -> Iterator[Any]:
        if not enabled or total < 2:
            return iter(items)
        from tqdm import tqdm

        return iter(tqdm(items, total=total, unit=unit, file=sys.stderr, dynamic_ncols=True, disable=None))

    return wrap


def _add_detector_flags(p: argparse.ArgumentParser, default_threshold: float | None) -> None:
    g = p.add_argument_group("detector")
    g.add_argument("--weights", help="ONNX file or PyTorch checkpoint (default: the built-in MobileNet-0.25)")
    g.add_argument("--backend", choices=("onnx", "torch"), help="runtime (default: onnx)")
    g.add_argument("--model", help="model preset for weights that carry no config (e.g. mobilenet0.25)")
    g.add_argument("--device", help="torch device, e.g. cpu or cuda (torch backend)")
    g.add_argument("--threads", type=int, help="CPU threads for inference")
    g.add_argument(
        "--threshold",
        dest="score_threshold",
        type=float,
        default=default_threshold,
        help="minimum face score" + (f" (default {default_threshold})" if default_threshold else ""),
    )
    g.add_argument("--nms-threshold", type=float, help="NMS IoU threshold (default 0.4)")
    g.add_argument("--top-k", dest="pre_nms_top_k", type=int, help="best anchors entering NMS (default 5000)")
    g.add_argument("--keep-k", dest="max_detections", type=int, help="faces kept per image (default 750)")
    g.add_argument("--max-size", dest="max_side", type=int, help="shrink images whose long side exceeds this")
    g.add_argument("--short-side", type=int, help="resize so the short side has this many pixels")
    g.add_argument("--batch-size", type=int, help="images per forward pass (default 8)")


_DETECTOR_KEYS = (
    "weights",
    "backend",
    "model",
    "device",
    "threads",
    "score_threshold",
    "nms_threshold",
    "pre_nms_top_k",
    "max_detections",
    "max_side",
    "short_side",
    "batch_size",
)


def _detector_options(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in _DETECTOR_KEYS if getattr(args, k, None) is not None}


def _open_output(name: str | None) -> Any:
    if name in (None, "-"):
        return sys.stdout
    Path(name).parent.mkdir(parents=True, exist_ok=True)
    return open(name, "w")  # closed by the caller


def _write_records(records: Iterable[dict[str, Any]], out: Any, command: str, label: str) -> int:
    """Write JSON lines, report records with an error on stderr; returns how many failed."""
    failed = 0
    for record in records:
        if "error" in record:
            failed += 1
            print(f"retinakit {command}: {record.get(label)}: {record['error']}", file=sys.stderr)
        out.write(json.dumps(record) + "\n")
        out.flush()
    return failed


def cmd_detect(args: argparse.Namespace) -> int:
    from retinakit.batch import detect_paths
    from retinakit.detector import Detector
    from retinakit.preprocess import list_images
    from retinakit.video import VideoError, detect_video, is_video_source

    videos = [p for p in args.paths if is_video_source(p)]
    paths = list_images([p for p in args.paths if not is_video_source(p)])
    if not paths and not videos:
        print("retinakit detect: no images found", file=sys.stderr)
        return EXIT_SOME_FAILED
    detector = Detector(**_detector_options(args))
    root = Path(args.paths[0]) if len(args.paths) == 1 and Path(args.paths[0]).is_dir() else None
    out = _open_output(args.output)
    failed = 0
    try:
        if paths:
            records = detect_paths(
                paths,
                detector,
                save_images=args.save_images,
                wider=args.wider,
                root=root,
                progress=_progress(not args.no_progress, "img"),
            )
            failed += _write_records(records, out, "detect", "path")
        for video in videos:
            annotated = None
            if args.save_images:
                annotated = Path(args.save_images) / f"{Path(video).stem or 'camera' + video}.mp4"
            try:
                frames = detect_video(
                    video,
                    detector,
                    every=args.every,
                    annotated=annotated,
                    progress=_progress(not args.no_progress, "frame"),
                )
                _write_records(frames, out, "detect", "source")
            except VideoError as exc:
                failed += 1
                print(f"retinakit detect: {exc}", file=sys.stderr)
                out.write(json.dumps({"path": video, "error": str(exc)}) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if failed:
        print(f"retinakit detect: {failed} of {len(paths) + len(videos)} inputs failed", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def cmd_align(args: argparse.Namespace) -> int:
    from retinakit.batch import align_paths
    from retinakit.detector import Detector
    from retinakit.preprocess import list_images

    paths = list_images(args.paths)
    if not paths:
        print("retinakit align: no images found", file=sys.stderr)
        return EXIT_SOME_FAILED
    options = {"score_threshold": 0.9, **_detector_options(args)}
    detector = Detector(**options)
    root = Path(args.paths[0]) if len(args.paths) == 1 and Path(args.paths[0]).is_dir() else None
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "index.jsonl", "w") as index:
        records = align_paths(
            paths, detector, out_dir, size=args.size, root=root, progress=_progress(not args.no_progress, "img")
        )
        failed = _write_records(records, index, "align", "source")
    print(f"crops and index.jsonl in {out_dir}", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from retinakit.evaluation.run import evaluate
    from retinakit.evaluation.wider import SETTINGS

    report = evaluate(
        ground_truth=args.ground_truth,
        images=args.images,
        subset=args.subset,
        protocol=args.protocol,
        predictions=args.predictions,
        output=args.output,
        detector_options=_detector_options(args),
        progress=_progress(not args.no_progress, "img"),
    )
    r = report.result
    print(
        f"WIDER FACE, official protocol, {r.num_images} images"
        + (f", protocol {args.protocol}" if args.images else f", predictions {args.predictions}")
    )
    print(f"{'':<22}" + "".join(f"{s:>9}" for s in SETTINGS))
    print(f"{'AP @ IoU 0.5 (%)':<22}" + "".join(f"{100 * r.ap[s]:>9.2f}" for s in SETTINGS))
    print(f"{'AP @ IoU 0.5:0.95 (%)':<22}" + "".join(f"{100 * r.ap_50_95[s]:>9.2f}" for s in SETTINGS))
    if report.seconds_per_image is not None:
        print(f"{1000 * report.seconds_per_image:.1f} ms per image (decode + detect + write)")
    for name, path in report.files.items():
        print(f"{name}: {path}")
    for key, reason in report.failed_images.items():
        print(f"retinakit evaluate: {key}: {reason}", file=sys.stderr)
    return EXIT_SOME_FAILED if report.failed_images else EXIT_OK


def cmd_evaluate_landmarks(args: argparse.Namespace) -> int:
    from retinakit.evaluation.run import evaluate_landmarks

    result = evaluate_landmarks(
        args.labels,
        args.images,
        detector_options=_detector_options(args),
        progress=_progress(not args.no_progress, "img"),
    )
    print(f"faces with landmarks: {result.num_faces} (matched by a detection: {result.num_matched})")
    print(f"mean NME (matched faces, / sqrt(w*h)): {100 * result.mean_nme:.2f}%")
    print(f"failure rate at NME 10% (unmatched count as failures): {100 * result.failure_rate_10:.2f}%")
    if args.output:
        Path(args.output).write_text(json.dumps(result.to_dict(), indent=1))
        print(f"json: {args.output}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from retinakit.checkpoints import load_model
    from retinakit.config import get_preset
    from retinakit.export import export_onnx

    model = load_model(args.weights, get_preset(args.model) if args.model else None)
    export_onnx(model, args.output, opset=args.opset)
    print(f"wrote {args.output}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="retinakit", description="RetinaFace face detection.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("detect", help="detect faces in images, videos or a camera")
    p.add_argument(
        "paths",
        nargs="+",
        help="image files, directories (searched recursively), glob patterns, video files or a camera index",
    )
    p.add_argument("-o", "--output", help="JSON-lines output file (default: standard output)")
    p.add_argument("--save-images", metavar="DIR", help="write annotated copies here (videos as DIR/<name>.mp4)")
    p.add_argument("--wider", metavar="DIR", help="write WIDER-format txt files here (parent/name.txt)")
    p.add_argument("--every", type=int, default=1, help="videos: process every N-th frame (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_detector_flags(p, None)
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("align", help="write aligned face crops (ArcFace five-point template)")
    p.add_argument("paths", nargs="+", help="image files, directories or glob patterns")
    p.add_argument("--out", required=True, help="directory for the crops and index.jsonl")
    p.add_argument("--size", type=int, default=112, help="crop size in pixels (template scaled by size/112)")
    p.add_argument("--no-progress", action="store_true")
    _add_detector_flags(p, 0.9)
    p.set_defaults(func=cmd_align)

    p = sub.add_parser("evaluate", help="WIDER FACE evaluation with the official protocol")
    p.add_argument("--ground-truth", required=True, help="directory of the official wider_*_val.mat files")
    p.add_argument("--images", help="WIDER image root (event/name.jpg); runs the detector")
    p.add_argument("--subset", help="image list (event/name.jpg per line) to evaluate on")
    from retinakit.evaluation.protocols import PROTOCOLS

    p.add_argument("--protocol", default="original", choices=sorted(PROTOCOLS), help="test protocol (default original)")
    p.add_argument("--predictions", help="submission directory: evaluated as is without --images, else written to")
    p.add_argument("--output", default="wider_eval", help="directory for results JSON, curves PNG, predictions")
    p.add_argument("--no-progress", action="store_true")
    _add_detector_flags(p, None)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("evaluate-landmarks", help="landmark NME on faces with five-point ground truth")
    p.add_argument("--labels", required=True, help="RetinaFace label.txt with landmarks")
    p.add_argument("--images", required=True, help="image root the label paths are relative to")
    p.add_argument("--output", help="write the figures and CED curve as JSON here")
    p.add_argument("--no-progress", action="store_true")
    _add_detector_flags(p, 0.02)
    p.set_defaults(func=cmd_evaluate_landmarks)

    p = sub.add_parser("export", help="export a PyTorch checkpoint to ONNX")
    p.add_argument("weights", help="checkpoint (.safetensors, .pth)")
    p.add_argument("-o", "--output", required=True, help="ONNX file to write")
    p.add_argument("--model", help="model preset, for checkpoints without a config")
    p.add_argument("--opset", type=int, default=17)
    p.set_defaults(func=cmd_export)
    return parser


def _version() -> str:
    from retinakit import __version__

    return f"retinakit {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into a command that stopped reading (e.g. head)
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (ValueError, KeyError, FileNotFoundError, ImportError, OSError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"retinakit {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
