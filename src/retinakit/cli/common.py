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


def add_detector_flags(p: argparse.ArgumentParser, default_threshold: float | None) -> None:
    """Flags named after :class:`~retinakit.DetectorConfig` fields (argparse ``dest``); defaults shown from it."""
    from retinakit.detector import DetectorConfig

    d = DetectorConfig()
    g = p.add_argument_group("detector")
    g.add_argument("--weights", help="ONNX file or PyTorch checkpoint (default: the built-in MobileNet-0.25)")
    g.add_argument("--backend", choices=("onnx", "openvino", "torch"), help=f"runtime (default: {d.backend})")
    g.add_argument(
        "--precision",
        choices=("auto", "fp32", "int8", "bf16"),
        help=f"{d.precision} (default: the backend's fastest built-in path that holds fp32 accuracy on this "
        "CPU); fp32 forces float; int8 the built-in int8 model (onnx or openvino); bf16 with --backend openvino "
        "(where the CPU has bf16)",
    )
    g.add_argument("--model", help="model preset for weights that carry no config (e.g. mobilenet0.25)")
    g.add_argument("--device", help="torch device, e.g. cpu or cuda (torch backend)")
    g.add_argument("--threads", type=int, help="CPU threads for inference")
    g.add_argument(
        "--threshold",
        dest="score_threshold",
        type=float,
        default=default_threshold,
        help=f"minimum face score ({d.score_threshold if default_threshold is None else default_threshold})",
    )
    g.add_argument("--nms-threshold", type=float, help=f"NMS IoU threshold (default {d.nms_threshold})")
    g.add_argument("--top-k", dest="pre_nms_top_k", type=int, help=f"best anchors into NMS (default {d.pre_nms_top_k})")
    g.add_argument("--keep-k", dest="max_detections", type=int, help=f"faces kept per image ({d.max_detections})")
    g.add_argument("--max-size", dest="max_side", type=int, help="shrink images whose long side exceeds this")
    g.add_argument("--short-side", type=int, help="resize so the short side has this many pixels")
    g.add_argument("--batch-size", type=int, help=f"images per forward pass (default {d.batch_size})")
    g.add_argument(
        "--batch-pixels", type=int, help=f"network-input pixels per forward pass, bounds memory ({d.batch_pixels:,})"
    )
    t = p.add_argument_group("test-time augmentation (paper: --scales 500,800,1100,1400,1700 --flip)")
    t.add_argument("--scales", type=int_list, help="comma-separated short-side sizes, one pass each")
    t.add_argument("--flip", action="store_true", default=None, help="add a horizontally flipped pass per scale")
    t.add_argument("--tta-max-side", type=int, help=f"cap on the long side of any pass (default {d.tta_max_side})")
    t.add_argument("--merge", choices=("vote", "nms"), help=f"merge passes by box voting or NMS (default {d.merge})")
    t.add_argument("--vote-iou", type=float, help=f"IoU that joins a box voting cluster (default {d.vote_iou})")
    t.add_argument("--vote-score", choices=("max", "mean", "consensus"), help=f"score rule ({d.vote_score})")


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
