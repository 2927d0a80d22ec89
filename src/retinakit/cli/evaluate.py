"""``retinakit evaluate`` (WIDER FACE, official protocol, or one's own COCO / YOLO / label.txt ground truth)
and ``retinakit evaluate-landmarks`` (NME)."""

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
    default,
    detector_options,
    progress_bar,
)


def add_parser(subparsers: Any) -> None:
    from retinakit.io.labels import FORMATS

    p = subparsers.add_parser("evaluate", help="AP on WIDER FACE (official protocol) or on your own labels")
    p.add_argument(
        "--ground-truth",
        required=True,
        help="directory of the official wider_*_val.mat files, or your labels: COCO JSON, YOLO folder / data.yaml, "
        "label.txt, WIDER bbx_gt",
    )
    p.add_argument("--images", help="image root; runs the detector (labels: default from the format)")
    p.add_argument("--format", dest="data_format", choices=FORMATS, help="label format (default: recognised)")
    p.add_argument("--category", help="COCO category / YOLO class of the faces (default: face)")
    p.add_argument("--split", default="val", help=f"data.yaml split {default('val')}")
    p.add_argument(
        "--subset",
        help="image list (event/name.jpg per line) to evaluate on (default: every image of the ground truth)",
    )
    from retinakit.evaluation.protocols import EVALUATION, PROTOCOLS

    p.add_argument(
        "--protocol",
        default="original",
        choices=sorted(PROTOCOLS),
        help="test protocol: how images are resized and which TTA runs (default: original)",
    )
    p.add_argument(
        "--predictions",
        help="submission directory: evaluated as is without --images, else written to (default: OUTPUT/predictions)",
    )
    p.add_argument(
        "-o",
        "--output",
        default="wider_eval",
        help="directory for results JSON, curves PNG, predictions (default: wider_eval)",
    )
    add_progress_flag(p)
    add_detector_flags(p, None, EVALUATION, "(default: the --protocol's)")
    p.set_defaults(func=run)

    p = subparsers.add_parser("evaluate-landmarks", help="landmark NME on faces with five-point ground truth")
    p.add_argument("--labels", required=True, help="labels with five-point landmarks: label.txt, COCO JSON, YOLO pose")
    p.add_argument("--images", help="image root the label paths are relative to (default from the format)")
    p.add_argument("--format", dest="data_format", choices=FORMATS, help="label format (default: recognised)")
    p.add_argument("--split", default="val", help=f"data.yaml split {default('val')}")
    p.add_argument("-o", "--output", help="write the figures and CED curve as JSON here (default: none)")
    add_progress_flag(p)
    add_detector_flags(p, 0.02)
    p.set_defaults(func=run_landmarks)


def is_wider_mat_dir(path: str) -> bool:
    """Whether ``--ground-truth`` names the official WIDER .mat directory (else: one's own labels)."""
    return Path(path).is_dir() and (Path(path) / "wider_face_val.mat").is_file()


def run(args: argparse.Namespace) -> int:
    if not is_wider_mat_dir(args.ground_truth):
        return run_labels(args)
    from retinakit.evaluation.run import evaluate

    report = evaluate(
        ground_truth=args.ground_truth,
        images=args.images,
        subset=args.subset,
        protocol=args.protocol,
        predictions=args.predictions,
        output=args.output,
        detector_options=detector_options(args),
        progress=progress_bar(not args.no_progress, "img"),
    )
    r = report.result
    print(
        f"WIDER FACE, official protocol, {r.num_images} images"
        + (f", protocol {args.protocol}" if args.images else f", predictions {args.predictions}")
    )
    return print_report(report)


def print_report(report: Any) -> int:
    """The AP table, timing, files and failed images of an :class:`EvaluationReport`; the exit status."""
    r = report.result
    print(f"{'':<22}" + "".join(f"{s:>9}" for s in r.ap))
    print(f"{'AP @ IoU 0.5 (%)':<22}" + "".join(f"{100 * v:>9.2f}" for v in r.ap.values()))
    print(f"{'AP @ IoU 0.5:0.95 (%)':<22}" + "".join(f"{100 * v:>9.2f}" for v in r.ap_50_95.values()))
    if report.seconds_per_image is not None:
        print(f"{1000 * report.seconds_per_image:.1f} ms per image (decode + detect + write)")
    for name, path in report.files.items():
        print(f"{name}: {path}")
    for key, reason in report.failed_images.items():
        print(f"retinakit evaluate: {key}: {reason}", file=sys.stderr)
    return EXIT_FAILED if report.failed_images else EXIT_OK


def run_labels(args: argparse.Namespace) -> int:
    """``evaluate`` against one's own labels (setting ``all``; crowd regions ignored)."""
    from retinakit.evaluation.run import evaluate_labels
    from retinakit.io.labels import LabelOptions

    if args.predictions:
        print("retinakit evaluate: error: --predictions works with the WIDER .mat ground truth only", file=sys.stderr)
        return EXIT_USAGE
    options = LabelOptions(args.data_format, args.images, args.category, split=args.split)
    report = evaluate_labels(
        args.ground_truth,
        options,
        protocol=args.protocol,
        output=args.output,
        detector_options=detector_options(args),
        progress=progress_bar(not args.no_progress, "img"),
    )
    r = report.result
    print(f"{args.ground_truth}: {r.num_images} images, {r.num_faces['all']} faces, protocol {args.protocol}")
    return print_report(report)


def run_landmarks(args: argparse.Namespace) -> int:
    from retinakit.evaluation.run import evaluate_landmarks
    from retinakit.io.labels import LabelOptions

    result = evaluate_landmarks(
        args.labels,
        args.images,
        detector_options=detector_options(args),
        progress=progress_bar(not args.no_progress, "img"),
        label_options=LabelOptions(args.data_format, split=args.split),
    )
    print(f"faces with landmarks: {result.num_faces} (matched by a detection: {result.num_matched})")
    print(f"mean NME (matched faces, / sqrt(w*h)): {100 * result.mean_nme:.2f}%")
    print(f"failure rate at NME 10% (unmatched count as failures): {100 * result.failure_rate_10:.2f}%")
    if args.output:
        Path(args.output).write_text(json.dumps(result.to_dict(), indent=1))
        print(f"json: {args.output}")
    return EXIT_OK
