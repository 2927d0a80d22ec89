"""Peak memory (VmHWM, peak RSS) of detection over large images, each case in a fresh process. Prints a table.

    python -m benchmarks.memory.large_images                        # every case, the code on PYTHONPATH (or installed)
    python -m benchmarks.memory.large_images --src /other/tree/src  # the same cases on another checkout (before/after)

Cases (default options: original size, ``batch_size=8``):

- ``8 phone photos, CLI``: ``retinakit detect DIR`` over eight 4000 x 3000 JPEGs (val-dev photos resized);
- ``8 phone photos, detect_batch``: ``Detector().detect_batch(paths)`` on the same files;
- ``10000 x 10000, CLI``: one 100-megapixel JPEG;
- ``mixed folder, detect_batch``: 4 landscape and 2 portrait phone photos, 6 val-dev photos, 2 VGA images;
- ``8 phone photos, CLI, 2 GB address space``: as the first, with ``RLIMIT_AS`` = 2 GiB in the child;
  reports how many of the 8 images got a result.

Synthetic images are written once to ``--cache`` (default /tmp/retinakit-memory-images). Not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import cv2

from benchmarks.harness.data import VALDEV_IMAGES, fallback_photos, load_photos
from benchmarks.harness.fresh import ChildFailed, peak_rss_mb, run_fresh
from benchmarks.harness.record import Record, Table, add_json_argument


def run_cli_case(case: str, folder: str) -> dict[str, Any]:
    """``retinakit detect`` on the phone photos or the huge image, in this (fresh) process."""
    from retinakit.cli import main

    out, err, note = io.StringIO(), io.StringIO(), ""
    target = folder + "/huge.jpg" if case == "cli-huge" else folder + "/phone"
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["detect", target, "--no-progress"])
        except MemoryError:
            note = "MemoryError"
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    ok = sum("faces" in r for r in records)
    errors = [r["error"] for r in records if "error" in r]
    return {
        "peak_mb": peak_rss_mb(),
        "ok": ok,
        "failed": len(errors),
        "note": note or (errors[0][:60] if errors else ""),
    }


def run_case_here(case: str, folder: str) -> dict[str, Any]:
    """One case in this (fresh) process: peak RSS, images with a result, images that failed, a note."""
    if case.startswith("cli"):
        return run_cli_case(case, folder)
    from retinakit import Detector

    sub = "phone" if case == "api-phone" else "mixed"
    paths = sorted(str(p) for p in (Path(folder) / sub).glob("*.jpg"))
    ok = failed = 0
    note = ""
    try:
        ok = len(Detector().detect_batch(paths))
    except MemoryError:
        failed, note = len(paths), "MemoryError"
    except Exception as exc:
        failed, note = len(paths), str(exc)[:60]
    return {"peak_mb": peak_rss_mb(), "ok": ok, "failed": failed, "note": note}


CASES = [
    ("8 phone photos (4000x3000), CLI", "cli-phone", 0),
    ("8 phone photos (4000x3000), detect_batch", "api-phone", 0),
    ("one 10000x10000 image, CLI", "cli-huge", 0),
    ("mixed folder (14 images), detect_batch", "api-mixed", 0),
    ("8 phone photos, CLI, RLIMIT_AS 2 GiB", "cli-phone", 2 * 2**30),
]


def make_images(folder: Path) -> None:
    """Phone photos (4000 x 3000), a 10000 x 10000 image and a mixed folder, from val-dev photos when present."""
    if (folder / "done").exists():
        return
    photos = load_photos(8, step=97) if VALDEV_IMAGES.is_dir() else fallback_photos(8)
    for sub in ("phone", "mixed"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i, photo in enumerate(photos):
        cv2.imwrite(
            str(folder / "phone" / f"phone_{i}.jpg"), cv2.resize(photo, (4000, 3000)), [cv2.IMWRITE_JPEG_QUALITY, 90]
        )
    for i, photo in enumerate(photos[:4]):
        cv2.imwrite(str(folder / "mixed" / f"land_{i}.jpg"), cv2.resize(photo, (4000, 3000)))
    for i, photo in enumerate(photos[4:6]):
        cv2.imwrite(str(folder / "mixed" / f"port_{i}.jpg"), cv2.resize(photo, (3000, 4000)))
    for i, photo in enumerate(photos[:6]):
        cv2.imwrite(str(folder / "mixed" / f"orig_{i}.jpg"), photo)
    for i, photo in enumerate(photos[6:8]):
        cv2.imwrite(str(folder / "mixed" / f"vga_{i}.jpg"), cv2.resize(photo, (640, 480)))
    cv2.imwrite(str(folder / "huge.jpg"), cv2.resize(photos[0], (10000, 10000)), [cv2.IMWRITE_JPEG_QUALITY, 90])
    (folder / "done").touch()


def run_case(case: str, folder: Path, limit: int, src: str | None) -> dict[str, Any]:
    """One case in a fresh process (``src``: another checkout's ``src/``; ``limit``: RLIMIT_AS bytes)."""
    try:
        return run_fresh(
            "benchmarks.memory.large_images:run_case_here",
            {"case": case, "folder": str(folder)},
            src=src,
            address_space=limit,
        )
    except ChildFailed as exc:
        return {"peak_mb": float("nan"), "ok": 0, "failed": -1, "note": str(exc).split(": ", 1)[-1][:60]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", help="PYTHONPATH for the children (another checkout's src/)")
    parser.add_argument("--cache", default="/tmp/retinakit-memory-images")
    parser.add_argument("--cases", help="comma-separated case numbers (1-based), default all")
    add_json_argument(parser)
    args = parser.parse_args(argv)
    record = Record("memory/large_images", "Peak memory over large images", sys.argv[1:] if argv is None else argv)
    folder = Path(args.cache)
    make_images(folder)
    chosen = [CASES[int(i) - 1] for i in args.cases.split(",")] if args.cases else CASES
    record.note(f"code: {args.src or os.environ.get('PYTHONPATH') or 'installed retinakit'}")
    table = Table("Peak RSS (VmHWM) per case, each in a fresh process", ["case", "peak RSS MB", "ok", "failed", "note"])
    for title, case, limit in chosen:
        r = run_case(case, folder, limit, args.src)
        table.add(title, r["peak_mb"], r["ok"], r["failed"], r["note"])
    record.table(table)
    record.write(args.json)


if __name__ == "__main__":
    main()
