"""Load test of ``retinakit serve`` on 127.0.0.1, against the library called in-process on the same images.

    python benchmarks/serve_load.py                              # pool engine 60 s, batch engine 20 s per level
    python benchmarks/serve_load.py --engines pool:5,batch:5 --overload-seconds 3 --inproc-seconds 3   # quick

For each engine a server is started in a subprocess (``python -m retinakit serve``) on a free port of
127.0.0.1 only. VGA photos (val-dev images from ../shared, centre-cropped to 4:3 and resized to 640 x 480,
JPEG quality 90; scikit-image photos when ../shared is absent) are posted as raw bodies to /v1/detect by
1, 8 and 32 concurrent clients (asyncio + httpx, one connection each) for the given seconds each, bounded by
``--max-requests`` per level too. Then an overload level (``--overload`` clients, more than ``--max-queue``)
should get 503s, and a last level repeats the highest concurrency for a third of the time (memory back
to its steady state, no growth). Printed per level: requests answered 200, 503 and other statuses, throughput (200s per
second), latency p50/p95/p99 of the 200s, and the server's RSS (VmRSS) before and after the level.
"in-process" decodes the same JPEG bytes and calls ``Detector.detect_bgr`` in a loop (batch 1 and 8), and
in one thread per core with one ONNX Runtime thread each (the server's pool layout).
The clients share the 2 cores with the server, as a local client would. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SHARED_CANDIDATES = [ROOT.parent / "shared", ROOT.parents[1] / "shared"]
ENGINE_FLAGS = {"batch": ["--engine", "batch"], "pool": ["--engine", "pool"]}  # default workers and threads


def vga_photos(n: int) -> list[bytes]:
    """``n`` JPEG-encoded 640 x 480 photos."""
    images: list[np.ndarray] = []
    for shared in SHARED_CANDIDATES:
        root = shared / "data" / "widerface" / "val-dev" / "images"
        if root.is_dir():
            files = sorted(root.glob("*/*.jpg"))
            images = [cv2.imread(str(f)) for f in files[:: max(1, len(files) // n)][:n]]
            break
    if not images:
        import skimage.data

        photos = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee()]
        images = [np.ascontiguousarray(photos[i % 3][:, :, ::-1]) for i in range(n)]
    out = []
    for image in images:
        h, w = image.shape[:2]
        cw, ch = min(w, h * 4 // 3), min(h, w * 3 // 4)
        x, y = (w - cw) // 2, (h - ch) // 2
        vga = cv2.resize(image[y : y + ch, x : x + cw], (640, 480), interpolation=cv2.INTER_AREA)
        out.append(cv2.imencode(".jpg", vga, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run_level(url: str, photos: list[bytes], clients: int, seconds: float, max_requests: int) -> dict:
    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sent = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def one_client(index: int) -> None:
            nonlocal sent
            i = index
            while time.perf_counter() < deadline and sent < max_requests:
                sent += 1
                body = photos[i % len(photos)]
                i += clients
                start = time.perf_counter()
                try:
                    r = await client.post("/v1/detect", content=body, headers={"content-type": "image/jpeg"})
                    status = r.status_code
                except httpx.HTTPError:
                    status = -1
                if status == 200:
                    latencies.append(time.perf_counter() - start)
                statuses[status] = statuses.get(status, 0) + 1

        start = time.perf_counter()
        await asyncio.gather(*(one_client(i) for i in range(clients)))
        elapsed = time.perf_counter() - start
    lat = np.array(latencies) * 1000 if latencies else np.full(1, np.nan)
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "ok": statuses.get(200, 0),
        "503": statuses.get(503, 0),
        "other_errors": sum(v for k, v in statuses.items() if k not in (200, 503)),
        "other_statuses": {str(k): v for k, v in statuses.items() if k not in (200, 503)},  # -1: connection error
        "throughput": statuses.get(200, 0) / elapsed,
        "p50": float(np.percentile(lat, 50)),
        "p95": float(np.percentile(lat, 95)),
        "p99": float(np.percentile(lat, 99)),
    }


def wait_ready(url: str, proc: subprocess.Popen | None = None, seconds: float = 60) -> None:
    """Wait until the server at ``url`` answers ``/readyz``; raise if ``proc`` (its process) exits first."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not get ready")


def bench_engine(engine: str, seconds: float, args: argparse.Namespace, photos: list[bytes]) -> list[dict]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "retinakit", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += [*ENGINE_FLAGS[engine], "--max-queue", str(args.max_queue), "--log-level", "warning"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("RETINAKIT_API_KEY", None)
    proc = subprocess.Popen(command, env=env)
    rows = []
    try:
        wait_ready(url, proc)
        asyncio.run(run_level(url, photos, 2, 2.0, 50))  # warm-up: first calls, connection set-up
        levels = [(c, seconds, "") for c in args.concurrency]
        if args.overload_seconds > 0:
            levels.append((args.overload, args.overload_seconds, " overload"))
        levels.append((args.concurrency[-1], seconds / 3, " again"))  # memory after all that: back to steady?
        for clients, level_seconds, label in levels:
            before = rss_mb(proc.pid)
            row = asyncio.run(run_level(url, photos, clients, level_seconds, args.max_requests))
            row.update(engine=engine + label, rss_before_mb=before, rss_after_mb=rss_mb(proc.pid))
            rows.append(row)
            print(format_row(row), flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
    return rows


def bench_in_process(photos: list[bytes], seconds: float) -> list[dict]:
    """Decode + detect in this process: one loop at batch 1 and 8 (default threads), and the server's pool layout
    (one Python thread per core, one ONNX Runtime thread each)."""
    from concurrent.futures import ThreadPoolExecutor

    from retinakit import Detector
    from retinakit.apps.serve.config import default_workers
    from retinakit.inference.backends import physical_cores

    def loop(detector: Detector, batch: int, offset: int) -> int:
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            chunk = [photos[(offset + n + k) % len(photos)] for k in range(batch)]
            detector.detect_bgr([cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR) for b in chunk])
            n += batch
        return n

    rows = []
    detector = Detector(max_side=1280)
    for batch in (1, 8):
        start = time.perf_counter()
        n = loop(detector, batch, 0)
        elapsed = time.perf_counter() - start
        rows.append({"engine": f"in-process, batch {batch}", "images": n, "throughput": n / elapsed})
    workers = default_workers()
    single = Detector(max_side=1280, threads=max(1, physical_cores() // workers))
    with ThreadPoolExecutor(workers) as pool:
        start = time.perf_counter()
        n = sum(pool.map(lambda i: loop(single, 1, i * 7), range(workers)))
    name = f"in-process, {workers} threads x batch 1"
    rows.append({"engine": name, "images": n, "throughput": n / (time.perf_counter() - start)})
    return rows


def format_row(row: dict) -> str:
    return (
        f"{row['engine']:<14} {row['clients']:>4} clients {row['seconds']:>5.1f} s: {row['ok']:>5} ok "
        f"{row['503']:>5} x 503 {row['other_errors']:>3} other {row['other_statuses'] or ''} | "
        f"{row['throughput']:6.1f} req/s | "
        f"p50 {row['p50']:7.1f}  p95 {row['p95']:7.1f}  p99 {row['p99']:7.1f} ms | "
        f"RSS {row['rss_before_mb']:.0f} -> {row['rss_after_mb']:.0f} MB"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engines", default="pool:60,batch:20", help="engine:seconds per level, comma-separated")
    p.add_argument("--concurrency", default="1,8,32", type=lambda s: [int(v) for v in s.split(",")])
    p.add_argument("--max-requests", type=int, default=20_000, help="bound on requests per level")
    p.add_argument("--max-queue", type=int, default=64, help="the server's queue limit")
    p.add_argument("--overload", type=int, default=128, help="clients in the overload level (> --max-queue)")
    p.add_argument("--overload-seconds", type=float, default=10)
    p.add_argument("--inproc-seconds", type=float, default=10)
    p.add_argument("--images", type=int, default=32, help="distinct photos")
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args()

    photos = vga_photos(args.images)
    print(f"{len(photos)} VGA JPEG photos, {np.mean([len(b) for b in photos]) / 1024:.0f} KiB on average")
    rows: list[dict] = []
    for spec in args.engines.split(","):
        engine, _, seconds = spec.partition(":")
        rows += bench_engine(engine, float(seconds or 60), args, photos)
    for row in bench_in_process(photos, args.inproc_seconds):
        rows.append(row)
        print(f"{row['engine']}: {row['images']} images, {row['throughput']:.1f} images/s (decode + detect)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
