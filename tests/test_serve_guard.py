"""retinakit serve under slow, idle, abandoning and malformed clients: a real uvicorn server (the options of
``retinakit serve``) on 127.0.0.1 in a thread, raw sockets for the clients that misbehave."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
import httpx
import uvicorn

from retinakit import Detector
from retinakit.apps.serve import ServeConfig, create_app, server_options
from test_serve import RecordingBackend, wait_for


@pytest.fixture(scope="module")
def astronaut_png(astronaut_rgb: np.ndarray) -> bytes:
    return cv2.imencode(".png", np.ascontiguousarray(astronaut_rgb[:, :, ::-1]))[1].tobytes()


@contextmanager
def running(detector: Detector, **options: object) -> Iterator[tuple[str, object]]:
    """The service on a free port of 127.0.0.1 with ``retinakit serve``'s uvicorn options; yields (url, app)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = ServeConfig(port=port, detector=detector.config, **options)  # type: ignore[arg-type]
    app = create_app(config, detector=detector)
    uv_options = {**server_options(config, "warning"), "log_config": None}  # records reach pytest's caplog
    server = uvicorn.Server(uvicorn.Config(app, **uv_options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), 20)
    assert server.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(10)


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def read_answer(sock: socket.socket) -> tuple[int, dict]:
    """Status and JSON body of the answer on a raw socket (read until the server closes it)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    assert b"content-type: application/json" in head.lower(), head
    return status, json.loads(body)


def upload_head(length: int, path: str = "/v1/detect") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: image/png\r\nContent-Length: {length}\r\n\r\n".encode()


def test_idle_uploads_hold_no_queue_place(detector: Detector, astronaut_png: bytes) -> None:
    """64 clients that send a POST header and a few bytes (the default queue is 64): a real request still
    answers within 5 s; each idle upload gets 408 when the read deadline passes."""
    with running(detector, read_timeout=3.0) as (url, app):
        idle = [connect(url) for _ in range(64)]
        for sock in idle:
            sock.sendall(upload_head(100_000) + b"\x89PNG\r\n")
        time.sleep(0.3)
        assert app.state.engine.depth == 0  # reading a body takes no place in the queue
        start = time.monotonic()
        r = httpx.post(url + "/v1/detect", content=astronaut_png, timeout=10)
        assert r.status_code == 200 and len(r.json()["faces"]) == 1
        assert time.monotonic() - start < 5
        status, body = read_answer(idle[0])
        assert status == 408 and body["error"]["code"] == "upload_timeout"
        for sock in idle:
            sock.close()


def test_connections_without_headers_do_not_lock_out_health(detector: Detector, astronaut_png: bytes) -> None:
    """300 connections that never finish their headers: /healthz (GET and HEAD) and detection still answer,
    and each of those connections is answered 408 and closed after the header deadline."""
    with running(detector, header_timeout=2.0) as (url, _):
        stalled = [connect(url) for _ in range(300)]
        for sock in stalled:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")  # no blank line: headers never end
        time.sleep(0.3)
        assert httpx.get(url + "/healthz", timeout=5).json() == {"status": "ok"}
        assert httpx.head(url + "/healthz", timeout=5).status_code == 200
        assert httpx.post(url + "/v1/detect", content=astronaut_png, timeout=10).status_code == 200
        status, body = read_answer(stalled[0])
        assert status == 408 and body["error"]["code"] == "upload_timeout"
        assert read_answer(stalled[-1])[0] == 408
        for sock in stalled:
            sock.close()


def test_connection_cap_and_protocol_errors_are_json(detector: Detector) -> None:
    with running(detector, max_connections=8, header_timeout=5.0) as (url, _):
        held = [connect(url) for _ in range(8)]
        time.sleep(0.2)
        with connect(url) as extra:
            status, body = read_answer(extra)
        assert status == 503 and body["error"]["code"] == "overloaded"
        for sock in held:
            sock.close()
        time.sleep(0.2)
        with connect(url) as sock:
            sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            status, body = read_answer(sock)
        assert status == 400 and body["error"]["code"] == "bad_request"
        with connect(url) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 70_000)  # unfinished, over 16 KiB
            status, body = read_answer(sock)
        assert status == 400 and body["error"]["code"] == "bad_request"  # h11's limit, at once


def test_abandoned_requests_are_not_run_nor_counted_as_errors(
    detector: Detector, astronaut_png: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Clients that leave while queued are dropped from the queue (never detected), and those that leave
    mid-upload too: counted as 499, no ERROR in the log, no 500 in /metrics."""
    backend = RecordingBackend(detector.backend, gate=True)
    gated = Detector(replace(detector.config), backend_instance=backend)
    caplog.set_level(logging.INFO)
    with running(gated, workers=1) as (url, app):
        first: list = []
        worker = threading.Thread(target=lambda: first.append(httpx.post(url + "/v1/detect", content=astronaut_png)))
        worker.start()
        assert backend.entered.wait(10)
        leaving = [connect(url) for _ in range(3)]
        for sock in leaving:
            sock.sendall(upload_head(len(astronaut_png)) + astronaut_png)
        wait_for(lambda: app.state.engine.depth == 4)
        for sock in leaving:
            sock.close()
        with connect(url) as sock:  # one more leaves halfway through its upload
            sock.sendall(upload_head(len(astronaut_png)) + astronaut_png[:1000])
            time.sleep(0.2)
        wait_for(lambda: app.state.engine.depth == 1)  # the three queued ones gave their places back
        backend.gate.set()
        worker.join(20)
        metrics = httpx.get(url + "/metrics").text.splitlines()
    assert first[0].status_code == 200
    assert backend.passes == [1]  # only the first request was detected
    assert 'retinakit_requests_total{endpoint="/v1/detect",status="499"} 4' in metrics
    assert not any('status="500"' in line for line in metrics)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
