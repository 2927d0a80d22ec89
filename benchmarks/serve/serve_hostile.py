"""Peak memory of ``retinakit serve`` under requests that ask for a lot of memory, on 127.0.0.1.

    python benchmarks/serve/serve_hostile.py                       # this tree's server, default settings
    python benchmarks/serve/serve_hostile.py --src OTHER/src       # another checkout's server, same requests

A server is started in a subprocess (``python -m retinakit serve``, default settings, a free port of
127.0.0.1) and sent, one step after another: a 6000 x 6000 PNG of one colour (about 105 KB) with
``max_side=0`` alone and then two at once, the same with ``max_side=4096`` two at once, 4000 x 3000 and
3000 x 3000 photos with ``max_side=0`` two at once, ``tta=true`` on a 1024 x 687 photo two at once,
``crops=true&crop_size=512`` on a photo with many faces, and a PNG header claiming 100,000 x 100,000
pixels. Printed per step: the statuses, the answer sizes and the server's peak RSS so far (VmHWM) and
its RSS after the step (VmRSS). Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from serve_load import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]
SHARED_CANDIDATES = [ROOT.parent / "shared", ROOT.parents[1] / "shared"]


def proc_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def photos() -> tuple[bytes, bytes, bytes, bytes]:
    """JPEG photos: 1024 x 687, 4000 x 3000, 3000 x 3000 and one with many faces (a val-dev group photo when
    ../shared is there)."""
    import skimage.data

    group = None
    for shared in SHARED_CANDIDATES:
        folder = shared / "data" / "widerface" / "val-dev" / "images" / "2--Demonstration"
        if folder.is_dir():
            group = cv2.imread(str(sorted(folder.glob("*.jpg"))[0]))
            break
    astronaut = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])
    photo = cv2.resize(group if group is not None else astronaut, (1024, 687), interpolation=cv2.INTER_AREA)
    many = group if group is not None else astronaut
    large = cv2.resize(many, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    square = cv2.resize(many, (3000, 3000), interpolation=cv2.INTER_CUBIC)
    quality = [cv2.IMWRITE_JPEG_QUALITY, 90]
    return tuple(cv2.imencode(".jpg", im, quality)[1].tobytes() for im in (photo, large, square, many))  # type: ignore[return-value]


def post_together(url: str, body: bytes, query: str, count: int) -> list[tuple[int, int]]:
    """Status and answer size of ``count`` requests sent at once."""
    import httpx

    def one(_: int) -> tuple[int, int]:
        r = httpx.post(f"{url}/v1/detect?{query}", content=body, timeout=300)
        return r.status_code, len(r.content)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", default=str(ROOT / "src"), help="the source folder of the retinakit to serve")
    p.add_argument("--port", type=int, default=0, help="0: a free port")
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args()

    port = args.port or free_port()
    url = f"http://127.0.0.1:{port}"
    big = cv2.imencode(".png", np.full((6000, 6000, 3), 128, np.uint8))[1].tobytes()
    photo, large, square, many = photos()
    steps = [
        ("6000x6000 PNG, max_side=0", big, "max_side=0", 1),
        ("6000x6000 PNG, max_side=0, two at once", big, "max_side=0", 2),
        ("6000x6000 PNG, max_side=4096, two at once", big, "max_side=4096", 2),
        ("4000x3000 photo, max_side=0, two at once", large, "max_side=0", 2),
        ("3000x3000 photo, max_side=0, two at once", square, "max_side=0", 2),
        ("1024x687 photo, tta=true, two at once", photo, "tta=true", 2),
        ("group photo, crops=true&crop_size=512", many, "crops=true&crop_size=512&threshold=0.3", 1),
        ("PNG header claiming 100000x100000", png_header(100_000, 100_000), "max_side=0", 1),
    ]
    env = {**os.environ, "PYTHONPATH": args.src}
    env.pop("RETINAKIT_API_KEY", None)
    command = [sys.executable, "-m", "retinakit", "serve", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(command, env=env)
    rows = []
    try:
        wait_ready(url, proc)
        ready = proc_mb(proc.pid, "VmRSS")
        print(f"server {args.src}: RSS {ready:.0f} MB when ready; big PNG {len(big) / 1024:.0f} KB")
        for name, body, query, count in steps:
            answers = post_together(url, body, query, count)
            row = {"step": name, "answers": answers, "peak_mb": proc_mb(proc.pid, "VmHWM")}
            row["rss_after_mb"] = proc_mb(proc.pid, "VmRSS")
            rows.append(row)
            print(f"{name:<46} {answers} | peak RSS {row['peak_mb']:.0f} MB, after {row['rss_after_mb']:.0f} MB")
    finally:
        proc.terminate()
        proc.wait(10)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
