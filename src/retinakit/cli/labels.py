"""``retinakit labels check`` (validate a label set) and ``retinakit labels convert`` (between formats)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from retinakit.cli.common import EXIT_FAILED, EXIT_OK, str_list

#: Problems ``check`` prints before summing up the rest.
SHOWN_PROBLEMS = 20


def add_label_flags(
    p: argparse.ArgumentParser, images_help: str = "image root the label paths are relative to"
) -> None:
    """The flags of :class:`~retinakit.io.labels.LabelOptions` (shared by labels, train and evaluate)."""
    from retinakit.io.labels import FORMATS

    p.add_argument("--format", dest="data_format", choices=FORMATS, help="label format (default: recognised)")
    p.add_argument("--images", help=images_help)
    p.add_argument("--category", help="COCO category / YOLO class of the faces, by name or id (default: face)")
    p.add_argument(
        "--keypoints",
        type=str_list,
        help="the file's keypoint names in retinakit's terms, in file order, e.g. "
        "right_eye,left_eye,nose,right_mouth,left_mouth for labels that use the subject's left/right "
        "(default: the file's own names, else retinakit's order)",
    )


def label_options(args: argparse.Namespace, split: str = "train", check_images: bool = True) -> Any:
    from retinakit.io.labels import LabelOptions

    keypoints = tuple(args.keypoints) if getattr(args, "keypoints", None) else None
    return LabelOptions(args.data_format, args.images, args.category, keypoints, split, check_images)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("labels", help="check face labels or convert them between formats")
    sub = p.add_subparsers(
        dest="action", required=True, help="check: validate and count; convert: write another format"
    )
    check = sub.add_parser("check", help="validate a label set without training: counts and every problem")
    check.add_argument("path", help="label.txt, WIDER bbx_gt, COCO JSON, YOLO folder or data.yaml")
    check.add_argument("--split", default="train", help="data.yaml split (default train)")
    add_label_flags(check)
    check.set_defaults(func=run_check)
    convert = sub.add_parser("convert", help="write a label set in another format")
    convert.add_argument("path", help="label.txt, WIDER bbx_gt, COCO JSON, YOLO folder or data.yaml")
    convert.add_argument("--to", required=True, choices=("retinaface", "wider", "coco", "yolo"), help="output format")
    convert.add_argument("-o", "--output", required=True, help="output file (a folder for yolo)")
    convert.add_argument("--split", default="train", help="data.yaml split to read (default train)")
    add_label_flags(convert)
    convert.set_defaults(func=run_convert)


def print_check(labels: Any, out: Any = None) -> None:
    """The counts of a checked label set, then its problems (the first :data:`SHOWN_PROBLEMS`)."""
    out = out or sys.stdout
    counts = labels.counts()
    print(
        f"{labels.source} ({labels.format}): {counts['images']} images, {counts['faces']} faces, "
        f"{counts['faces_with_landmarks']} with landmarks, {counts['ignore_regions']} ignore regions, "
        f"{counts['problems']} problems",
        file=out,
    )
    for message in labels.problems[:SHOWN_PROBLEMS]:
        print(f"  {message}", file=out)
    if len(labels.problems) > SHOWN_PROBLEMS:
        print(f"  ... and {len(labels.problems) - SHOWN_PROBLEMS} more", file=out)
    hint = mirrored_hint(labels)
    if hint:
        print(f"  note: {hint}", file=out)


def mirrored_hint(labels: Any) -> str:
    """A warning when most faces have the 'left' eye right of the 'right' eye (subject's left/right)."""
    import numpy as np

    points = [a.landmarks[a.has_landmarks] for a in labels.images if a.has_landmarks.any()]
    if not points:
        return ""
    lm = np.concatenate(points)
    share = float(np.mean(lm[:, 0, 0] > lm[:, 1, 0]))
    if share <= 0.5:
        return ""
    return (
        f"in {100 * share:.0f}% of the faces left_eye lies right of right_eye: the labels may name the subject's "
        "left/right (retinakit names the image's); see --keypoints"
    )


def run_check(args: argparse.Namespace) -> int:
    from retinakit.io.labels import check_labels

    labels = check_labels(args.path, label_options(args, args.split))
    print_check(labels)
    return EXIT_FAILED if labels.problems else EXIT_OK


def run_convert(args: argparse.Namespace) -> int:
    from retinakit.io.labels import read_labels, write_labels

    labels = read_labels(args.path, label_options(args, args.split))
    out = write_labels(labels, args.to, args.output)
    counts = labels.counts()
    print(
        f"{out}: {counts['images']} images, {counts['faces']} faces ({counts['faces_with_landmarks']} with landmarks)"
    )
    if labels.skipped_faces:
        print(f"skipped {labels.skipped_faces} faces with unusable boxes, e.g. {labels.problems[0]}", file=sys.stderr)
    if counts["ignore_regions"] and args.to != "coco":
        print(f"dropped {counts['ignore_regions']} crowd regions ({args.to} has no place for them)", file=sys.stderr)
    return EXIT_OK
