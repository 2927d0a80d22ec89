"""``retinakit train``: train or fine-tune (needs the torch extra)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from retinakit.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_progress_flag,
    alias,
    default,
    int_list,
    missing_required,
    progress_bar,
)


def add_parser(subparsers: Any) -> None:
    from retinakit.cli.labels import add_label_flags
    from retinakit.training.recipes import RECIPES

    scratch, tune = RECIPES["scratch"], RECIPES["finetune"]
    p = subparsers.add_parser("train", help="train or fine-tune on face labels in any format (needs torch)")
    p.add_argument("--model", default="mobilenet0.25", help=f"model preset {default('mobilenet0.25')}")
    alias(p, "--preset", dest="model")
    p.add_argument(
        "--labels",
        help="label.txt (RetinaFace), wider_face_*_bbx_gt.txt, COCO JSON, or a YOLO folder / data.yaml (required)",
    )
    alias(p, "--data", dest="labels")
    add_label_flags(p, "image root the label paths are relative to (label.txt, WIDER; COCO: default its folder)")
    p.add_argument("--check", action="store_true", help="validate the labels and print counts, without training")
    p.add_argument("-o", "--output", dest="out", help=f"output directory {default('runs/train')}")
    alias(p, "--out", dest="out")
    p.add_argument(
        "--init", nargs="+", metavar="WHAT", help="builtin | none | backbone PATH | checkpoint PATH (default: none)"
    )
    add_schedule_flags(p, scratch, tune)
    p.add_argument("--gamma", type=float, help=f"learning-rate factor at each milestone {default(0.1)}")
    p.add_argument("--weight-decay", type=float, help=f"SGD weight decay {default(0.0005)}")
    p.add_argument("--momentum", type=float, help=f"SGD momentum {default(0.9)}")
    p.add_argument("--image-size", type=int, help=f"training crop size in pixels {default(640)}")
    p.add_argument("--workers", type=int, help=f"data-loading worker processes {default(2)}")
    p.add_argument("--device", help=f"cpu, cuda, cuda:1 ... {default('auto')}")
    p.add_argument("--no-amp", dest="amp", action="store_false", default=None, help="no mixed precision on CUDA")
    p.add_argument("--seed", type=int, help=f"seed of the data order and augmentation {default(0)}")
    p.add_argument("--resume", action="store_true", default=None, help="continue from OUTPUT/last.pt")
    p.add_argument("--log-every", type=int, help=f"steps between log lines {default(10)}")
    p.add_argument(
        "--max-steps-per-epoch", type=int, help="cut epochs short, for quick experiments (default: no limit)"
    )
    add_validation_flags(p, tune)
    p.add_argument(
        "--deformable",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="DCN v2 in the FPN merges and context modules (default: the preset's; on for resnet152-paper)",
    )
    p.add_argument(
        "--dcn-offset-lr-mult",
        type=float,
        help=f"learning-rate multiplier of the DCN offset/mask predictors, as DCN v2 / RetinaFace {default(0.1)}",
    )
    p.add_argument(
        "--sync-bn", action="store_true", default=None, help="SyncBatchNorm across torchrun processes (CUDA only)"
    )
    p.add_argument(
        "--dense", action="store_true", default=None, help="add the dense regression branch (mesh + pixel loss)"
    )
    p.add_argument("--pixel-weight", type=float, help=f"weight of the dense pixel loss, λ3 {default(0.001)}")
    p.add_argument("--pixel-faces", type=int, help=f"faces per image the pixel loss renders {default(8)}")
    add_progress_flag(p)
    p.set_defaults(func=run)


def add_schedule_flags(p: argparse.ArgumentParser, scratch: Any, tune: Any) -> None:
    """``--recipe`` and the settings whose defaults it gives (``scratch``, ``tune``: the two recipes)."""
    from retinakit.training.recipes import RECIPES

    p.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        help="defaults for the settings below: finetune (default with --init builtin / checkpoint) or scratch",
    )
    p.add_argument(
        "--loss", choices=("paper", "biubug6"), help=f"loss preset (default: {scratch.loss}; fine-tune {tune.loss})"
    )
    p.add_argument(
        "--epochs",
        type=int,
        help=f"epochs; warm-up and milestones scale (default: {scratch.epochs}; fine-tune {tune.epochs})",
    )
    p.add_argument(
        "--batch-size", type=int, help=f"images per step (default: {scratch.batch_size}; fine-tune {tune.batch_size})"
    )
    p.add_argument("--lr", type=float, help=f"peak learning rate (default: {scratch.lr:g}; fine-tune {tune.lr:g})")
    p.add_argument(
        "--warmup-lr",
        type=float,
        help=f"lr at the start of warm-up (default: {scratch.warmup_lr:g}; fine-tune {tune.warmup_lr:g})",
    )
    p.add_argument(
        "--warmup-epochs",
        type=float,
        help=f"warm-up length in epochs (default: 5/80 of the epochs; fine-tune {tune.warmup_epochs})",
    )
    p.add_argument(
        "--milestones",
        type=int_list,
        help="epochs where lr drops by --gamma (default: 55,68 of 80, scaled; fine-tune none)",
    )


def add_validation_flags(p: argparse.ArgumentParser, tune: Any) -> None:
    """``--grad-clip``, ``--freeze-bn`` and the validation flags (``tune``: the fine-tuning recipe)."""
    p.add_argument(
        "--grad-clip", type=float, help=f"clip the gradient norm (default: off; fine-tune {tune.grad_clip:g})"
    )
    p.add_argument(
        "--val-labels",
        help="validation labels (any format): AP before and after training, the better weights kept (default: none)",
    )
    p.add_argument("--val-split", help="data.yaml split of --val-labels (default: val)")
    p.add_argument("--val-images", help="image root of the validation labels, or WIDER val image root (default: none)")
    p.add_argument("--val-ground-truth", help="directory of the official .mat files (default: none)")
    p.add_argument(
        "--val-subset", dest="val_list", help="image list to evaluate on, e.g. image_list.txt (default: all)"
    )
    alias(p, "--val-list", dest="val_list")
    p.add_argument("--val-max-side", type=int, help=f"long side for periodic evaluation {default(1024)}")
    p.add_argument("--eval-every", type=int, help="also validate every N epochs (default: 0, before and after only)")
    p.add_argument(
        "--freeze-bn",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"keep BatchNorm statistics fixed (scratch: off; fine-tune: {'on' if tune.freeze_bn else 'off'})",
    )


def report_labels(args: argparse.Namespace) -> None:
    """One line on the training labels (stderr): counts, and the faces skipped for unusable boxes."""
    from retinakit.cli.labels import label_options
    from retinakit.io.labels import read_labels

    labels = read_labels(args.labels, label_options(args))
    c = labels.counts()
    line = f"labels: {c['images']} images, {c['faces']} faces ({c['faces_with_landmarks']} with landmarks)"
    if labels.skipped_faces:
        line += f"; skipped {labels.skipped_faces} faces with unusable boxes, e.g. {labels.problems[0]}"
    print(line, file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from retinakit.cli.labels import label_options, print_check
    from retinakit.io.labels import check_labels
    from retinakit.training.loop import TrainConfig, train

    if missing_required(args, "train", labels="--labels"):
        return EXIT_USAGE
    if args.check:
        labels = check_labels(args.labels, label_options(args))
        print_check(labels)
        return EXIT_FAILED if labels.problems else EXIT_OK

    init = args.init or ["none"]
    if init[0] in ("backbone", "checkpoint"):
        if len(init) != 2:
            print(f"retinakit train: error: --init {init[0]} needs a PATH", file=sys.stderr)
            return EXIT_USAGE
        init_value = f"{init[0]}:{init[1]}"
    elif init[0] in ("builtin", "none") and len(init) == 1:
        init_value = init[0]
    else:
        print("retinakit train: error: --init takes builtin, none, backbone PATH or checkpoint PATH", file=sys.stderr)
        return EXIT_USAGE
    names = {f.name for f in fields(TrainConfig)}
    options = {k: v for k, v in vars(args).items() if k in names and v is not None}
    options["init"] = init_value
    if args.keypoints:
        options["keypoints"] = tuple(args.keypoints)
    main_process = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 reports
    if main_process:
        report_labels(args)
    final = train(TrainConfig(**options), progress=progress_bar(main_process and not args.no_progress, "batch"))
    if main_process:
        print(f"weights: {final}  (use: retinakit detect --backend torch --weights {final})")
    return EXIT_OK
