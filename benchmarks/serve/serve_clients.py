"""``retinakit serve`` against slow and idle clients, on 127.0.0.1: what a normal client sees meanwhile.

    python benchmarks/serve/serve_clients.py                      # this tree's server
    python benchmarks/serve/serve_clients.py --src OTHER/src      # another checkout's server, same clients

A server is started in a subprocess (``python -m retinakit serve``, default settings, a free port).
Then: 64 raw connections send a POST header and 4 bytes of a 100 KB body and stall, while a normal
request posts the astronaut photo (status and seconds printed); 300 raw connections send part of a
request's headers and stall, while ``GET /healthz`` is asked; ``HEAD /healthz``, ``GET /redoc`` and a
JPEG cut before its frame header. Last, the number of server log lines that contain ``ERROR`` (the
stalled clients closing their connections). Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
from serve_load import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]


def stall(port: int, count: int, data: bytes) -> list[socket.socket]:
    """``count`` connections that send ``data`` and then nothing."""
    out = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(data)
        out.append(sock)
    time.sleep(0.5)
    return out


def scenarios(url: str, port: int, photo: bytes, cut: bytes) -> None:
    import httpx

    idle = stall(port, 64, b"POST /v1/detect HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n\x89PNG")
    start = time.monotonic()
    r = httpx.post(url + "/v1/detect", content=photo, timeout=60)
    print(f"64 idle uploads: a normal request got {r.status_code} in {time.monotonic() - start:.2f} s: {r.text[:70]}")
    for sock in idle:
        sock.close()
    stalled = stall(port, 300, b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
    r = httpx.get(url + "/healthz", timeout=10)
    print(f"300 unfinished headers: /healthz {r.status_code} {r.headers.get('content-type')} {r.text[:40]}")
    for sock in stalled:
        sock.close()
    time.sleep(0.5)
    head, redoc = httpx.head(url + "/healthz").status_code, httpx.get(url + "/redoc").status_code
    print(f"HEAD /healthz {head}, GET /redoc {redoc}")
    print(f"JPEG cut before its frame header: {httpx.post(url + '/v1/detect', content=cut).text}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", default=str(ROOT / "src"), help="the source folder of the retinakit to serve")
    args = p.parse_args()
    import skimage.data

    rgb = skimage.data.astronaut()
    photo = cv2.imencode(".png", rgb[:, :, ::-1])[1].tobytes()
    cut = cv2.imencode(".jpg", rgb[:, :, ::-1])[1].tobytes()[:100]
    port = free_port()
    env = {**os.environ, "PYTHONPATH": args.src}
    env.pop("RETINAKIT_API_KEY", None)
    command = [sys.executable, "-m", "retinakit", "serve", "--port", str(port), "--log-level", "warning"]
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(command, env=env, stderr=log)
        try:
            wait_ready(f"http://127.0.0.1:{port}")
            scenarios(f"http://127.0.0.1:{port}", port, photo, cut)
        finally:
            proc.terminate()
            proc.wait(10)
        log.seek(0)
        print(f"server log lines with ERROR: {sum('ERROR' in line for line in log)}")


if __name__ == "__main__":
    main()
