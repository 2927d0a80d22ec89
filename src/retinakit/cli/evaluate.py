"""``retinakit evaluate`` (WIDER FACE, official protocol) and ``retinakit evaluate-landmarks`` (NME)."""

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
    add_progress_flag,
    detector_options,
    progress_bar,
)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("evaluate", help="WIDER FACE evaluation with the official protocol")
    p.add_argument("--ground-truth", required=True, help="directory of the official wider_*_val.mat files")
    p.add_argument(
        "--images", help="WIDER image root (event/name.jpg); runs the detector (default: none, evaluate --predictions)"
    )
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
    p.add_argument("--labels", required=True, help="RetinaFace label.txt with landmarks")
    p.add_argument("--images", required=True, help="image root the label paths are relative to")
    p.add_argument("-o", "--output", help="write the figures and CED curve as JSON here (default: none)")
    add_progress_flag(p)
    add_detector_flags(p, 0.02)
    p.set_defaults(func=run_landmarks)


def run(args: argparse.Namespace) -> int:
    from retinakit.evaluation.run import evaluate
    from retinakit.evaluation.wider import SETTINGS

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
    print(f"{'':<22}" + "".join(f"{s:>9}" for s in SETTINGS))
    print(f"{'AP @ IoU 0.5 (%)':<22}" + "".join(f"{100 * r.ap[s]:>9.2f}" for s in SETTINGS))
    print(f"{'AP @ IoU 0.5:0.95 (%)':<22}" + "".join(f"{100 * r.ap_50_95[s]:>9.2f}" for s in SETTINGS))
    if report.seconds_per_image is not None:
        print(f"{1000 * report.seconds_per_image:.1f} ms per image (decode + detect + write)")
    for name, path in report.files.items():
        print(f"{name}: {path}")
    for key, reason in report.failed_images.items():
        print(f"retinakit evaluate: {key}: {reason}", file=sys.stderr)
    return EXIT_FAILED if report.failed_images else EXIT_OK


def run_landmarks(args: argparse.Namespace) -> int:
    from retinakit.evaluation.run import evaluate_landmarks

    result = evaluate_landmarks(
        args.labels,
        args.images,
        detector_options=detector_options(args),
        progress=progress_bar(not args.no_progress, "img"),
    )
    print(f"faces with landmarks: {result.num_faces} (matched by a detection: {result.num_matched})")
    print(f"mean NME (matched faces, / sqrt(w*h)): {100 * result.mean_nme:.2f}%")
    print(f"failure rate at NME 10% (unmatched count as failures): {100 * result.failure_rate_10:.2f}%")
    if args.output:
        Path(args.output).write_text(json.dumps(result.to_dict(), indent=1))
        print(f"json: {args.output}")
    return EXIT_OK
