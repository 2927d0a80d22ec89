"""Peak memory (VmHWM, peak RSS) of detection over large images, each case in a fresh process. Prints a table.

    python benchmarks/memory.py                       # every case, the code on PYTHONPATH (or installed)
    python benchmarks/memory.py --src /other/tree/src # the same cases on another checkout (before/after)

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
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "widerface" / "val-dev" / "images"

CHILD = r"""
import json, os, resource, sys
case, folder, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
if limit:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import contextlib, io
from pathlib import Path
def peak_mb():
    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) / 1024
ok = failed = 0
note = ""
if case.startswith("cli"):
    from retinakit.cli import main
    out = io.StringIO()
    err = io.StringIO()
    target = folder + "/huge.jpg" if case == "cli-huge" else folder + "/phone"
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["detect", target, "--no-progress"])
        except MemoryError as exc:
            note = "MemoryError"
    for line in out.getvalue().splitlines():
        record = json.loads(line)
        ok += "faces" in record
        failed += "error" in record
    if failed:
        note = note or [json.loads(l)["error"] for l in out.getvalue().splitlines() if "error" in l][0][:60]
else:
    from retinakit import Detector
    sub = "phone" if case == "api-phone" else "mixed"
    paths = sorted(str(p) for p in (Path(folder) / sub).glob("*.jpg"))
    try:
        ok = len(Detector().detect_batch(paths))
    except MemoryError:
        failed, note = len(paths), "MemoryError"
    except Exception as exc:
        failed, note = len(paths), str(exc)[:60]
print(json.dumps({"peak_mb": peak_mb(), "ok": ok, "failed": failed, "note": note}))
"""

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
    if SHARED.is_dir():
        photos = [cv2.imread(str(p)) for p in sorted(SHARED.glob("*/*.jpg"))[::97][:8]]
    else:
        import skimage.data

        photos = [np.ascontiguousarray(f()[:, :, ::-1]) for f in (skimage.data.astronaut, skimage.data.coffee)] * 4
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


def run_case(case: str, folder: Path, limit: int, src: str | None) -> dict:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, case, str(folder), str(limit)], capture_output=True, text=True, env=env
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"peak_mb": float("nan"), "ok": 0, "failed": -1, "note": f"exit {proc.returncode}: {tail[:60]}"}
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", help="PYTHONPATH for the children (another checkout's src/)")
    parser.add_argument("--cache", default="/tmp/retinakit-memory-images")
    parser.add_argument("--cases", help="comma-separated case numbers (1-based), default all")
    args = parser.parse_args()
    folder = Path(args.cache)
    make_images(folder)
    chosen = [CASES[int(i) - 1] for i in args.cases.split(",")] if args.cases else CASES
    print(f"code: {args.src or os.environ.get('PYTHONPATH') or 'installed retinakit'}")
    print(f"{'case':<44}{'peak RSS MB':>12}{'ok':>5}{'failed':>8}  note")
    for title, case, limit in chosen:
        r = run_case(case, folder, limit, args.src)
        print(f"{title:<44}{r['peak_mb']:>12.0f}{r['ok']:>5}{r['failed']:>8}  {r['note']}", flush=True)


if __name__ == "__main__":
    main()
