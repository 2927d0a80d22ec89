"""What the sub-commands share: exit codes, detector flags, progress bars, JSON-lines output."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

#: Exit status: success; a runtime failure (some input failed, a file could not be used); a usage error.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def progress_bar(enabled: bool, unit: str) -> Any:
    def wrap(items: Iterable[Any], total: int) -> Iterator[Any]:
        if not enabled or total < 2:
            return iter(items)
        from tqdm import tqdm

        return iter(tqdm(items, total=total, unit=unit, file=sys.stderr, dynamic_ncols=True, disable=None))

    return wrap


def int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def str_list(text: str) -> tuple[str, ...]:
    """argparse type: comma-separated names."""
    return tuple(v.strip() for v in text.split(",") if v.strip())


def int_in(low: int, high: int | None = None) -> Any:
    """argparse type: an integer in ``[low, high]`` (a usage error, exit 2, otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"between {low} and {high}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    return parse


def report_empty(command: str, empty: dict[str, str], label: str) -> list[dict[str, Any]]:
    """Report arguments that yielded no image on stderr; their ``{label: argument, "error"}`` records."""
    for argument, reason in empty.items():
        print(f"retinakit {command}: {argument}: {reason}", file=sys.stderr)
    return [{label: argument, "error": reason} for argument, reason in empty.items()]


def overwrites_input(output: str | None, inputs: Iterable[str | Path]) -> bool:
    """True if the file ``output`` is one of ``inputs`` (same file after resolving links)."""
    if output in (None, "-"):
        return False
    target = Path(output).resolve()
    return any(Path(p).resolve() == target for p in inputs)


def default(value: object) -> str:
    """The one way help texts show a default: ``(default: VALUE)``."""
    if isinstance(value, (tuple, list)):
        value = ",".join(str(v) for v in value) or "none"
    return f"(default: {value})"


def alias(p: argparse.ArgumentParser | Any, *names: str, dest: str, **kwargs: Any) -> None:
    """Old spellings of a flag, accepted for one release and hidden from ``--help``."""
    p.add_argument(*names, dest=dest, help=argparse.SUPPRESS, **kwargs)


def missing_required(args: argparse.Namespace, command: str, **flags: str) -> bool:
    """Report required flags that were not given (by any spelling, aliases included): True if some are missing.

    argparse's own ``required=True`` does not see a value given through a hidden alias.
    """
    missing = [flag for dest, flag in flags.items() if getattr(args, dest, None) is None]
    if missing:
        print(
            f"retinakit {command}: error: the following arguments are required: {', '.join(missing)}", file=sys.stderr
        )
    return bool(missing)


def add_progress_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (default: a bar on standard error if it is a terminal)",
    )


def orientation_list(text: str) -> tuple[int, ...] | str:
    """``auto`` or comma-separated angles (``0,90,180,270``) for ``--orientations``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or angles such as 0,90,180,270, got {text!r}") from None


def detail_value(text: str) -> int | str:
    """``auto``, 1, 4 or 8 for ``--detail``."""
    value = text.strip().lower()
    if value == "auto":
        return "auto"
    if value in ("1", "4", "8"):
        return int(value)
    raise argparse.ArgumentTypeError(f"expected auto, 1, 4 or 8, got {text!r}")


def add_detector_flags(
    p: argparse.ArgumentParser, default_threshold: float | None, shown: Any = None, resize_note: str | None = None
) -> None:
    """Flags named after :class:`~retinakit.DetectorConfig` fields (argparse ``dest``).

    Their argparse defaults are None (the config decides); the help shows the value the command
    really uses: ``shown`` (a DetectorConfig, e.g. an evaluation protocol's) or DetectorConfig's own,
    ``default_threshold`` for the threshold, ``resize_note`` for the resize flags.
    """
    from retinakit.detector import DetectorConfig

    d = shown or DetectorConfig()
    g = p.add_argument_group("detector")
    _add_model_flags(g, d)
    _add_postprocess_flags(g, d, default_threshold)
    _add_resize_flags(g, d, resize_note)
    _add_tta_flags(p.add_argument_group("test-time augmentation (paper: --scales 500,800,1100,1400,1700 --flip)"), d)


def _add_model_flags(g: Any, d: Any) -> None:
    """Which model runs where: weights, backend, precision, preset, device, threads."""
    g.add_argument("--weights", help="ONNX file or PyTorch checkpoint (default: the built-in MobileNet-0.25)")
    g.add_argument("--backend", choices=("onnx", "openvino", "torch"), help=f"runtime {default(d.backend)}")
    auto = "auto: the backend's fastest built-in path that holds fp32 accuracy on this CPU"
    g.add_argument(
        "--precision",
        choices=("auto", "fp32", "int8", "bf16"),
        help="fp32 forces float; int8 the built-in int8 model (onnx or openvino); bf16 with --backend openvino "
        f"(where the CPU has bf16) {default(auto if d.precision == 'auto' else d.precision)}",
    )
    g.add_argument(
        "--model", help="model preset for weights that carry no config, e.g. mobilenet0.25 (default: the file's own)"
    )
    g.add_argument("--device", help=f"torch device, e.g. cpu or cuda, for --backend torch {default(d.device)}")
    g.add_argument("--threads", type=int, help="CPU threads of each inference call (default: one per physical core)")


def _add_postprocess_flags(g: Any, d: Any, default_threshold: float | None) -> None:
    """What is kept: score threshold (argparse default ``default_threshold``, None: the config's), NMS, top-k."""
    threshold = d.score_threshold if default_threshold is None else default_threshold
    g.add_argument(
        "--threshold",
        dest="score_threshold",
        metavar="SCORE",
        type=float,
        default=default_threshold,
        help=f"minimum face score, in [0, 1) {default(threshold)}",
    )
    g.add_argument("--nms-threshold", type=float, help=f"NMS IoU threshold {default(d.nms_threshold)}")
    g.add_argument(
        "--top-k", dest="pre_nms_top_k", metavar="K", type=int, help=f"anchors into NMS {default(d.pre_nms_top_k)}"
    )
    g.add_argument(
        "--keep-k", dest="max_detections", metavar="K", type=int, help=f"faces kept {default(d.max_detections)}"
    )


def _add_resize_flags(g: Any, d: Any, note: str | None) -> None:
    """How images are resized and batched: long/short side, images and pixels per pass."""
    original = "original size"
    g.add_argument(
        "--max-side",
        metavar="PIXELS",
        type=int,
        help=f"shrink images whose long side exceeds this {note or default(d.max_side or original)}",
    )
    alias(g, "--max-size", dest="max_side", type=int)
    g.add_argument(
        "--short-side",
        metavar="PIXELS",
        type=int,
        help=f"resize so the short side has this many pixels {note or default(d.short_side or original)}",
    )
    g.add_argument(
        "--resize",
        choices=("auto", "single"),
        help="auto: the first pass plus the coarser passes a large image needs for big faces; single: the first "
        f"pass only {default(d.resize)}",
    )
    g.add_argument(
        "--orientations",
        metavar="ANGLES",
        type=orientation_list,
        help="also detect with the image turned by these angles (counter-clockwise), e.g. 0,90,180,270, or auto "
        f"to pick the upright one {default(d.orientations)}",
    )
    g.add_argument(
        "--detail",
        metavar="auto|1|4|8",
        type=detail_value,
        help="with --resize auto: pixels per pixel of real detail; auto measures it per image from a 2048 px long "
        "side (video: on the first frame), 1 treats images as sharp, 4 or 8 as upscaled that many times (any "
        f"size) {default(d.detail)}",
    )
    g.add_argument("--batch-size", type=int, help=f"images per forward pass {default(d.batch_size)}")
    g.add_argument(
        "--batch-pixels", type=int, help=f"network-input pixels per pass, bounds memory {default(d.batch_pixels)}"
    )


def _add_tta_flags(t: Any, d: Any) -> None:
    """Test-time augmentation: scales, flip, their cap and how passes are merged."""
    t.add_argument("--scales", type=int_list, help=f"comma-separated short sides, one pass each {default(d.scales)}")
    t.add_argument(
        "--flip",
        action="store_true",
        default=None,
        help="add a mirrored view of every pass (each scale; without --scales, each pass of the resize policy)",
    )
    t.add_argument("--tta-max-side", type=int, help=f"cap on the long side of any pass {default(d.tta_max_side)}")
    t.add_argument("--merge", choices=("vote", "nms"), help=f"merge passes by box voting or NMS {default(d.merge)}")
    t.add_argument("--vote-iou", type=float, help=f"IoU that joins a box voting cluster {default(d.vote_iou)}")
    t.add_argument("--vote-score", choices=("max", "mean", "consensus"), help=f"score rule {default(d.vote_score)}")


def detector_options(args: argparse.Namespace) -> dict[str, Any]:
    from dataclasses import fields

    from retinakit.detector import DetectorConfig

    # flags carry the field names of DetectorConfig (argparse dest), so every field is passed on
    names = [f.name for f in fields(DetectorConfig)]
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def open_output(name: str | None) -> Any:
    if name in (None, "-"):
        return sys.stdout
    Path(name).parent.mkdir(parents=True, exist_ok=True)
    return open(name, "w")  # closed by the caller


def write_records(records: Iterable[dict[str, Any]], out: Any, command: str, label: str) -> int:
    """Write JSON lines, report records with an error on stderr; returns how many failed."""
    failed = 0
    for record in records:
        if "error" in record:
            failed += 1
            print(f"retinakit {command}: {record.get(label)}: {record['error']}", file=sys.stderr)
        out.write(json.dumps(record) + "\n")
        out.flush()
    return failed
