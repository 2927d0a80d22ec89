"""Memory of each detection path, each in a fresh process: peak RSS with 4K input, growth over many calls.

    python -m benchmarks.memory.per_path [--paths default,openvino-bf16,peer] [--calls 1000]

A fresh process per path (its peak RSS, ``VmHWM``, is its own) runs 100 warm-up calls at VGA, then
``--calls`` more (RSS growth between the two, MB: a leak shows here), then 3 calls at 3840x2160
(peak RSS, MB). Photo: the first val-dev photo (or a flat grey image without the data). Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import cv2
import numpy as np

from benchmarks.harness.data import valdev_files
from benchmarks.harness.fresh import ChildFailed, peak_rss_mb, rss_mb, run_fresh
from benchmarks.harness.paths import PathSpec, build, select
from benchmarks.harness.record import Record, Table, add_json_argument


def measure(spec: dict[str, Any], photo: str, calls: int) -> dict[str, float]:
    """RSS growth over ``calls`` VGA calls and peak RSS after 4K calls, in this (fresh) process."""
    runner = build(PathSpec.from_json(spec))
    image = cv2.imread(photo) if photo else np.full((480, 640, 3), 128, np.uint8)
    vga = cv2.resize(image, (640, 480))
    for _ in range(100):
        runner([vga])
    before = rss_mb()
    for _ in range(calls):
        runner([vga])
    after = rss_mb()
    big = cv2.resize(image, (3840, 2160))
    for _ in range(3):
        runner([big])
    return {"growth_mb": after - before, "peak_4k_mb": peak_rss_mb()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", default="default,openvino-bf16,peer")
    parser.add_argument("--calls", type=int, default=1000)
    add_json_argument(parser)
    args = parser.parse_args(argv)
    record = Record("memory/per_path", "Memory of each path", sys.argv[1:] if argv is None else argv)
    files = valdev_files(1)
    photo = str(files[0]) if files else ""
    table = Table(
        f"Fresh process per path: peak RSS with 4K input, RSS growth over {args.calls} VGA calls",
        ["path", "peak MB", "growth MB"],
    )
    for spec in select(args.paths):
        try:
            m = run_fresh(
                "benchmarks.memory.per_path:measure", {"spec": spec.as_json(), "photo": photo, "calls": args.calls}
            )
        except ChildFailed as exc:
            record.note(f"{spec.name}: failed ({exc})")
            continue
        table.add(spec.name, m["peak_4k_mb"], m["growth_mb"])
    record.table(table)
    record.write(args.json)


if __name__ == "__main__":
    main()
