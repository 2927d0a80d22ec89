"""retinakit serve: the HTTP API with FastAPI's test client, the limits, the engines and the metrics."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient

from retinakit import Detector
from retinakit.apps.serve import ServeConfig, create_app
from retinakit.apps.serve.app import ERRORS
from retinakit.apps.serve.engine import BatchEngine, Job, PixelBudget, PoolEngine
from retinakit.apps.serve.limits import image_header
from retinakit.apps.serve.metrics import Counter, Histogram

STATIC = Path(__file__).resolve().parents[1] / "src" / "retinakit" / "apps" / "serve" / "static"


def encode(image_bgr: np.ndarray, ext: str = ".png", params: tuple[int, ...] = ()) -> bytes:
    ok, data = cv2.imencode(ext, image_bgr, list(params))
    assert ok
    return data.tobytes()


@pytest.fixture(scope="module")
def astronaut_bgr(astronaut_rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(astronaut_rgb[:, :, ::-1])


@pytest.fixture(scope="module")
def astronaut_png(astronaut_bgr: np.ndarray) -> bytes:
    return encode(astronaut_bgr)  # lossless: the service sees exactly these pixels


def make_client(detector: Detector, **options: object) -> TestClient:
    options.setdefault("detector", detector.config)
    return TestClient(create_app(ServeConfig(**options), detector=detector))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def client(detector: Detector):
    with make_client(detector) as c:
        yield c


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"]["code"] == code and body["error"]["message"]
    assert ERRORS[code] == status
    return body


# ----------------------------------------------------------------------------- endpoints


def test_health_ready_and_docs(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["model"]["name"] == "mobilenet0.25" and ready["model"]["weights"] == "built-in"
    assert ready["limits"]["max_pixels"] == ServeConfig().max_pixels
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/detect", "/v1/align", "/healthz", "/readyz", "/metrics"} <= set(paths)
    body = paths["/v1/detect"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "image/jpeg", "application/octet-stream"} <= set(body)
    params = {p["name"] for p in paths["/v1/detect"]["post"]["parameters"]}
    assert params == {"threshold", "max_side", "landmarks", "tta", "orientations", "crops", "crop_size"}
    assert "/docs" in client.get("/docs").text or client.get("/docs").status_code == 200


@pytest.mark.parametrize("engine", ["batch", "pool"])
def test_detect_raw_body_matches_the_library(
    detector: Detector, astronaut_bgr: np.ndarray, astronaut_png: bytes, engine: str
) -> None:
    expected = detector.detect_bgr([astronaut_bgr])[0]
    assert len(expected) == 1  # the astronaut photo has one face
    with make_client(detector, engine=engine) as c:
        r = c.post("/v1/detect", content=astronaut_png, headers={"content-type": "image/png"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"]) == (512, 512)
    assert body["model"] == {"name": "mobilenet0.25", "weights": "built-in", "backend": "onnx", "version": "0.1.0"}
    assert body["options"]["threshold"] == 0.5 and body["options"]["max_side"] == 1280
    (face,) = body["faces"]
    np.testing.assert_allclose(face["box"], expected.boxes[0], atol=0.01)
    np.testing.assert_allclose(face["box_relative"], expected.boxes[0] / 512, atol=1e-5)
    assert face["score"] == pytest.approx(float(expected.scores[0]), abs=1e-5)
    assert list(face["landmarks"]) == ["left_eye", "right_eye", "nose", "left_mouth", "right_mouth"]
    np.testing.assert_allclose(list(face["landmarks"].values()), expected.landmarks[0], atol=0.01)
    assert face["landmarks"]["left_eye"][0] < face["landmarks"]["right_eye"][0]  # as seen in the image
    assert "crop" not in face


def test_detect_multipart_with_json_options_and_crops(
    client: TestClient, detector: Detector, astronaut_bgr: np.ndarray, astronaut_png: bytes
) -> None:
    options = {"crops": True, "crop_size": 96, "landmarks": False}
    r = client.post(
        "/v1/detect?crops=false",  # the JSON options win over the query
        files={"image": ("a.png", astronaut_png, "image/png")},
        data={"options": json.dumps(options)},
    )
    assert r.status_code == 200, r.text
    (face,) = r.json()["faces"]
    assert "landmarks" not in face
    crop = cv2.imdecode(np.frombuffer(base64.b64decode(face["crop"]), np.uint8), cv2.IMREAD_COLOR)
    expected = detector.detect_bgr([astronaut_bgr])[0].align(astronaut_bgr, size=96)[0]
    assert crop.shape == (96, 96, 3)
    assert np.abs(crop.astype(int) - expected.astype(int)).max() <= 1


def test_align_threshold_and_max_side(client: TestClient, astronaut_png: bytes) -> None:
    r = client.post("/v1/align", content=astronaut_png)
    assert r.status_code == 200
    body = r.json()
    assert body["options"]["threshold"] == 0.9 and body["options"]["crops"] is True
    assert len(body["faces"]) == 1 and body["faces"][0]["crop"]
    # the face scores 0.9994: a higher threshold leaves none
    assert client.post("/v1/detect?threshold=0.9999", content=astronaut_png).json()["faces"] == []
    small = client.post("/v1/detect?max_side=256", content=astronaut_png).json()
    assert (small["width"], small["height"]) == (512, 512)  # coordinates stay in the uploaded image
    assert small["faces"][0]["box"][2] > 256  # x2 of the face, about 273 px


def test_tta_shares_the_loaded_model(detector: Detector, astronaut_png: bytes) -> None:
    with make_client(detector, tta_scales=(400, 600), tta_flip=True) as c:  # two scales: fast enough for a test
        r = c.post("/v1/detect?tta=true&max_side=0", content=astronaut_png)
        state = c.app.state.service
    assert r.status_code == 200 and len(r.json()["faces"]) == 1
    tta = state.detector_for(None, True, 0.5)
    assert tta.backend.inner is state.detector.backend  # the loaded model, counting its passes
    assert tta.config.flip and tta.config.scales == (400, 600) and tta.config.max_side is None
    assert tta.config.score_threshold == 0.5  # TTA runs at the request's threshold, as the API does
    assert state.detector_for(None, True, 0.5) is tta  # built once


# ----------------------------------------------------------------------------- errors


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels (a decompression bomb's header) and holds no image data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def test_limits_errors(detector: Detector, astronaut_png: bytes, astronaut_bgr: np.ndarray) -> None:
    with make_client(detector, max_upload_bytes=100_000, max_pixels=512 * 512 - 1) as c:
        assert len(astronaut_png) > 100_000
        assert_error(c.post("/v1/detect", content=astronaut_png), 413, "payload_too_large")
        files = {"image": ("a.png", astronaut_png, "image/png")}
        assert_error(c.post("/v1/detect", files=files), 413, "payload_too_large")
        chunks = (astronaut_png[i : i + 8192] for i in range(0, len(astronaut_png), 8192))  # no Content-Length
        assert_error(c.post("/v1/detect", content=chunks), 413, "payload_too_large")
        small_jpeg = encode(astronaut_bgr, ".jpg", (cv2.IMWRITE_JPEG_QUALITY, 50))
        assert len(small_jpeg) < 100_000
        body = assert_error(c.post("/v1/detect", content=small_jpeg), 413, "too_many_pixels")
        assert "512 x 512" in body["error"]["message"]
        bomb = png_header(100_000, 100_000)
        assert_error(c.post("/v1/detect", content=bomb), 413, "too_many_pixels")


def test_image_errors(client: TestClient, astronaut_bgr: np.ndarray) -> None:
    assert_error(client.post("/v1/detect", content=b""), 400, "missing_image")
    assert_error(client.post("/v1/detect", content=b"GIF89a not supported" * 10), 415, "unsupported_image")
    assert_error(client.post("/v1/detect", content=b"hello, world" * 100), 415, "unsupported_image")
    truncated = encode(astronaut_bgr, ".jpg")[:2000]  # a valid header, then the data stops
    assert image_header(truncated) is not None
    r = client.post("/v1/detect", content=truncated)
    assert r.status_code in (200, 400)  # libjpeg may decode a truncated file as grey; a broken header is not
    cut = encode(astronaut_bgr, ".jpg")[:100]  # a JPEG cut before its frame header: bad, not unsupported
    assert image_header(cut) is None
    body = assert_error(client.post("/v1/detect", content=cut), 400, "bad_image")
    assert "JPEG header" in body["error"]["message"]
    assert_error(client.post("/v1/detect", content=png_header(64, 64) + b"\x00" * 32), 400, "bad_image")
    assert_error(client.post("/v1/detect", files={"file": ("a.png", b"x", "image/png")}), 400, "missing_image")
    assert_error(client.get("/v1/detect"), 405, "method_not_allowed")
    assert_error(client.get("/nowhere"), 404, "not_found")


@pytest.mark.parametrize(
    "query",
    [
        "threshold=2",
        "threshold=0.1",  # below the floor (the detector runs at 0.5 here)
        "threshold=abc",
        "max_side=10",
        "max_side=100000",
        "crop_size=4",
        "landmarks=maybe",
        "colour=red",
    ],
)
def test_bad_options(client: TestClient, astronaut_png: bytes, query: str) -> None:
    body = assert_error(client.post(f"/v1/detect?{query}", content=astronaut_png), 422, "invalid_option")
    assert query.split("=")[0] in body["error"]["message"]


@pytest.mark.parametrize("options", ["{not json", "[1, 2]", '{"threshold": 7}', '{"size": 5}'])
def test_bad_json_options(client: TestClient, astronaut_png: bytes, options: str) -> None:
    files = {"image": ("a.png", astronaut_png, "image/png")}
    assert_error(client.post("/v1/detect", files=files, data={"options": options}), 422, "invalid_option")


def test_api_key(detector: Detector, astronaut_png: bytes) -> None:
    with make_client(detector, api_key="s3cret") as c:
        body = assert_error(c.post("/v1/detect", content=astronaut_png), 401, "unauthorized")
        assert "Bearer" in body["error"]["message"]
        r = c.post("/v1/detect", content=astronaut_png, headers={"Authorization": "Bearer wrong"})
        assert_error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
        assert_error(c.post("/v1/align", content=astronaut_png, headers={"X-API-Key": "s3cre"}), 401, "unauthorized")
        bearer = {"Authorization": "Bearer s3cret"}
        assert c.post("/v1/detect", content=astronaut_png, headers=bearer).status_code == 200
        assert c.post("/v1/align", content=astronaut_png, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").json()["auth"] is True


class GatedBackend:
    """The real backend, held at a gate until the test opens it: a deterministic slow detector."""

    def __init__(self, inner) -> None:
        self.inner, self.config = inner, inner.config
        self.input_layout = getattr(inner, "input_layout", "nchw_float")
        self.entered, self.gate = threading.Event(), threading.Event()

    def __call__(self, batch: np.ndarray):
        self.entered.set()
        assert self.gate.wait(10)
        return self.inner(batch)


def wait_for(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


@pytest.mark.parametrize("engine", ["batch", "pool"])
def test_full_queue_answers_503_with_retry_after(detector: Detector, astronaut_png: bytes, engine: str) -> None:
    gated = GatedBackend(detector.backend)
    slow = Detector(detector.config, backend_instance=gated)
    with make_client(slow, max_queue=1, retry_after=7, engine=engine) as c:
        first: list = []
        worker = threading.Thread(target=lambda: first.append(c.post("/v1/detect", content=astronaut_png)))
        worker.start()
        assert gated.entered.wait(5)
        assert c.app.state.engine.depth == 1
        assert c.get("/healthz").status_code == 200  # inference holds a worker thread, not the event loop
        r = c.post("/v1/detect", content=astronaut_png)
        assert_error(r, 503, "overloaded")
        assert r.headers["retry-after"] == "7"
        assert "retinakit_queue_depth 1" in c.get("/metrics").text
        gated.gate.set()
        worker.join(10)
        assert first[0].status_code == 200 and len(first[0].json()["faces"]) == 1
        assert c.post("/v1/detect", content=astronaut_png).status_code == 200  # room again
        assert c.app.state.engine.depth == 0


def test_request_timeout_answers_504(detector: Detector, astronaut_png: bytes) -> None:
    gated = GatedBackend(detector.backend)
    slow = Detector(detector.config, backend_instance=gated)
    with make_client(slow, request_timeout=0.3) as c:
        body = assert_error(c.post("/v1/detect", content=astronaut_png), 504, "timeout")
        assert "0.3 s" in body["error"]["message"]
        assert c.app.state.engine.depth == 0  # the place in the queue is given back
        gated.gate.set()


def test_not_ready_until_the_model_loads(tmp_path: Path, astronaut_png: bytes) -> None:
    from retinakit import DetectorConfig

    config = ServeConfig(detector=DetectorConfig(score_threshold=0.3, weights=str(tmp_path / "missing.onnx")))
    with TestClient(create_app(config)) as c:  # the detector is loaded at start-up, in a thread
        wait_for(lambda: c.app.state.service.load_error is not None)
        body = assert_error(c.get("/readyz"), 503, "not_ready")
        assert "missing.onnx" in body["error"]["message"]
        r = c.post("/v1/detect", content=astronaut_png)
        assert_error(r, 503, "not_ready")
        assert "retry-after" in r.headers
        assert c.get("/healthz").status_code == 200


def test_loads_the_builtin_model_at_start_up(astronaut_png: bytes) -> None:
    with TestClient(create_app(ServeConfig())) as c:
        wait_for(lambda: c.get("/readyz").status_code == 200, 30)
        assert len(c.post("/v1/detect", content=astronaut_png).json()["faces"]) == 1


# ----------------------------------------------------------------------------- metrics and page


def test_metrics(detector: Detector, astronaut_png: bytes) -> None:
    with make_client(detector) as c:
        for _ in range(2):
            assert c.post("/v1/detect", content=astronaut_png).status_code == 200
        c.post("/v1/detect", content=b"nope")
        r = c.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = r.text.splitlines()
    assert 'retinakit_requests_total{endpoint="/v1/detect",status="200"} 2' in lines
    assert 'retinakit_requests_total{endpoint="/v1/detect",status="415"} 1' in lines
    assert 'retinakit_request_duration_seconds_count{endpoint="/v1/detect"} 3' in lines
    assert 'retinakit_request_duration_seconds_bucket{endpoint="/v1/detect",le="+Inf"} 3' in lines
    assert "retinakit_faces_detected_total 2" in lines
    assert "retinakit_images_processed_total 2" in lines
    assert "retinakit_queue_depth 0" in lines
    assert "# TYPE retinakit_request_duration_seconds histogram" in lines


def test_metric_text_format() -> None:
    counter = Counter("x_total", "Things.")
    assert counter.samples() == ["x_total 0"]
    counter.inc(endpoint='a"b', status="200")
    counter.inc(2, status="200", endpoint='a"b')
    assert counter.samples() == ['x_total{endpoint="a\\"b",status="200"} 3']
    hist = Histogram("t_seconds", "Time.", buckets=(0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 3.0):
        hist.observe(v)
    assert hist.samples() == [
        't_seconds_bucket{le="0.1"} 2',  # le is inclusive
        't_seconds_bucket{le="1"} 3',
        't_seconds_bucket{le="+Inf"} 4',
        "t_seconds_sum 3.65",
        "t_seconds_count 4",
    ]


def test_page_and_assets_need_no_cdn(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/app.js">' in page.text and 'id="file"' in page.text
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    for path in STATIC.iterdir():
        text = path.read_text()
        assert "http://" not in text and "https://" not in text, f"{path.name} loads something from outside"


def test_cors_off_by_default_and_on_when_asked(detector: Detector) -> None:
    origin = {"Origin": "http://example.test"}
    with make_client(detector) as c:
        assert "access-control-allow-origin" not in c.get("/healthz", headers=origin).headers
    with make_client(detector, cors_origins=("http://example.test",)) as c:
        assert c.get("/healthz", headers=origin).headers["access-control-allow-origin"] == "http://example.test"


# ----------------------------------------------------------------------------- header sniffing


@pytest.mark.parametrize(
    ("ext", "params", "fmt"),
    [
        (".jpg", (), "jpeg"),
        (".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1), "jpeg"),
        (".png", (), "png"),
        (".webp", (cv2.IMWRITE_WEBP_QUALITY, 80), "webp"),
        (".webp", (cv2.IMWRITE_WEBP_QUALITY, 101), "webp"),  # lossless (VP8L)
        (".bmp", (), "bmp"),
    ],
)
def test_image_header_reads_the_size_without_decoding(ext: str, params: tuple[int, ...], fmt: str) -> None:
    image = np.random.default_rng(0).integers(0, 255, (23, 37, 3), dtype=np.uint8)
    data = encode(image, ext, params)
    header = image_header(data)
    assert header is not None and (header.format, header.width, header.height) == (fmt, 37, 23)
    assert image_header(data[:10]) is None  # truncated before the size


def test_image_header_rejects_other_data() -> None:
    assert image_header(b"") is None
    assert image_header(b"\xff\xd8\xff\xd9") is None  # JPEG that ends before any frame header
    assert image_header(png_header(0, 10)) is None
    assert image_header(b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 20) is None


# ----------------------------------------------------------------------------- engines


class RecordingBackend:
    """The real backend, recording the images of each forward pass; a pass holding a one-colour image fails
    (an injected detection failure), and with ``gate`` the first pass waits until the test opens it."""

    def __init__(self, inner, gate: bool = False) -> None:
        self.inner, self.config = inner, inner.config
        self.input_layout = getattr(inner, "input_layout", "nchw_float")
        self.passes: list[int] = []
        self.entered, self.gate = threading.Event(), threading.Event()
        if not gate:
            self.gate.set()

    def __call__(self, batch: np.ndarray):
        self.passes.append(len(batch))
        self.entered.set()
        assert self.gate.wait(10)
        if any(len(np.unique(image)) <= 3 for image in batch):  # one value per channel: the poisoned image
            raise RuntimeError("injected failure")
        return self.inner(batch)


def fake_decode(data: bytes) -> np.ndarray:
    """b'value,height' -> a (height, 32, 3) image of random pixels seeded by value; anything else cannot be
    decoded."""
    value, height = (int(v) for v in data.split(b","))
    return np.random.default_rng(value).integers(0, 255, (height, 32, 3), dtype=np.uint8)


async def _submit_together(engine, detector, uploads: list[bytes]) -> list:
    await engine.start()
    try:

        async def one(data: bytes):
            height = int(data.split(b",")[1]) if b"," in data else 0
            with engine.admit():
                await asyncio.sleep(0)  # every request is admitted before the first reaches the queue
                return await engine.detect(Job(data, detector, (height, 32), 32 * height))

        return await asyncio.gather(*(one(d) for d in uploads))
    finally:
        await engine.stop()


def test_batch_engine_batches_concurrent_requests_by_size(detector: Detector) -> None:
    backend = RecordingBackend(detector.backend)
    recording = Detector(detector.config, backend_instance=backend)
    uploads = [f"{i},64".encode() for i in range(6)] + [b"50,32", b"broken"]
    engine = BatchEngine(max_queue=16, workers=1, decode=fake_decode, max_batch=4, window=0.2)
    outcomes = asyncio.run(_submit_together(engine, recording, uploads))
    assert [o.item.data for o in outcomes] == uploads  # each request gets its own outcome
    assert all(o.ok for o in outcomes[:7]) and [o.image.shape[0] for o in outcomes[:7]] == [64] * 6 + [32]
    np.testing.assert_array_equal(outcomes[2].image, fake_decode(b"2,64"))
    assert isinstance(outcomes[7].error, ValueError)  # a broken upload fails alone
    assert sorted(backend.passes) == [1, 2, 4]  # 4 + 2 of one size (the broken one dropped out), the other alone
    assert engine.running == 0


def test_pool_engine_runs_one_image_per_pass(detector: Detector) -> None:
    backend = RecordingBackend(detector.backend)
    recording = Detector(detector.config, backend_instance=backend)
    uploads = [f"{i},64".encode() for i in range(3)] + [b"broken"]
    engine = PoolEngine(max_queue=16, workers=2, decode=fake_decode)
    outcomes = asyncio.run(_submit_together(engine, recording, uploads))
    assert all(o.ok for o in outcomes[:3]) and isinstance(outcomes[3].error, ValueError)
    assert backend.passes == [1, 1, 1]


def test_pixel_budget_holds_passes_back_until_there_is_room() -> None:
    budget = PixelBudget(100)
    order: list[str] = []
    release = threading.Event()

    def second() -> None:
        with budget.hold(60):
            order.append("second")
            release.wait(5)

    with budget.hold(70):
        waiting = threading.Thread(target=second)
        waiting.start()
        time.sleep(0.1)
        assert order == [] and budget.used == 70  # 70 + 60 > 100: the second waits
        order.append("first done")
    wait_for(lambda: budget.used == 60)
    release.set()
    waiting.join(5)
    assert order == ["first done", "second"] and budget.used == 0
    with budget.hold(10**9):  # a window summing past the budget holds the whole budget, no more
        assert budget.used == 100


def test_one_failing_image_fails_only_its_request(detector: Detector, astronaut_png: bytes) -> None:
    """Three requests batched together, one of them an image whose detection fails (injected): the batch is
    retried image by image (Detector.stream), that request gets 500 and the other two their faces."""
    backend = RecordingBackend(detector.backend, gate=True)
    gated = Detector(detector.config, backend_instance=backend)
    poison = encode(np.zeros((512, 512, 3), np.uint8))
    with make_client(gated, engine="batch", workers=1, max_batch=8) as c:
        results: dict[str, object] = {}

        def post(name: str, data: bytes) -> None:
            results[name] = c.post("/v1/detect", content=data)

        threads = [threading.Thread(target=post, args=("first", astronaut_png))]
        threads[0].start()
        assert backend.entered.wait(5)  # the first request holds the only worker at the gate
        for name, data in (("a", astronaut_png), ("poison", poison), ("b", astronaut_png)):
            threads.append(threading.Thread(target=post, args=(name, data)))
            threads[-1].start()
            queued = len(threads) - 1
            wait_for(lambda: c.app.state.engine.queue.qsize() == queued)  # noqa: B023 -- called at once
        backend.gate.set()
        for t in threads:
            t.join(20)
    assert backend.passes == [1, 3, 1, 1, 1]  # the first; the window of three fails; each image alone
    for name in ("first", "a", "b"):
        assert results[name].status_code == 200 and len(results[name].json()["faces"]) == 1
    assert_error(results["poison"], 500, "internal_error")


def test_in_flight_counts_only_running_requests(detector: Detector, astronaut_png: bytes) -> None:
    backend = RecordingBackend(detector.backend, gate=True)
    gated = Detector(detector.config, backend_instance=backend)
    with make_client(gated, engine="pool", workers=1) as c:
        threads = [threading.Thread(target=c.post, args=("/v1/detect",), kwargs={"content": astronaut_png})]
        threads += [threading.Thread(target=c.post, args=("/v1/detect",), kwargs={"content": astronaut_png})]
        threads += [threading.Thread(target=c.post, args=("/v1/detect",), kwargs={"content": astronaut_png})]
        for t in threads:
            t.start()
        assert backend.entered.wait(5)
        wait_for(lambda: c.app.state.engine.depth == 3)
        lines = c.get("/metrics").text.splitlines()
        backend.gate.set()
        for t in threads:
            t.join(20)
    assert "retinakit_queue_depth 3" in lines and "retinakit_inference_in_flight 1" in lines


# ----------------------------------------------------------------------------- command line


def test_command_line_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    from retinakit.cli import main
    from retinakit.cli.serve import add_parser, config_from_args

    def parse(*argv: str) -> ServeConfig:
        import argparse

        parser = argparse.ArgumentParser()
        add_parser(parser.add_subparsers(dest="command"))
        return config_from_args(parser.parse_args(["serve", *argv]))

    monkeypatch.delenv("RETINAKIT_API_KEY", raising=False)
    config = parse("--threshold", "0.7", "--max-size", "640", "--threads", "1", "--max-queue", "5")
    assert config.api_key is None and config.default_threshold == 0.7 and config.default_max_side == 640
    assert config.detector.threads == 1 and config.detector.score_threshold == 0.3 and config.max_queue == 5
    assert config.host == "127.0.0.1" and config.cors_origins == ()
    monkeypatch.setenv("RETINAKIT_API_KEY", "from-env")
    assert parse().api_key == "from-env"
    assert parse("--api-key", "flag").api_key == "flag"
    with pytest.raises(ValueError, match="default_threshold"):
        ServeConfig(default_threshold=0.1)
    assert main(["serve", "--max-queue", "0"]) == 2  # a usage error, reported before anything starts


def test_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if FastAPI were not installed
    monkeypatch.delitem(sys.modules, "retinakit.apps.serve.app", raising=False)
    with pytest.raises(ImportError, match=r"needs the 'serve' extra: pip install 'retinakit\[serve\]'"):
        create_app()


def test_a_failing_model_gives_500_without_details(detector: Detector, astronaut_png: bytes) -> None:
    class Broken:
        config = detector.backend.config
        input_layout = getattr(detector.backend, "input_layout", "nchw_float")

        def __call__(self, batch: np.ndarray):
            raise RuntimeError("secret internal path /opt/model")

    broken = Detector(detector.config, backend_instance=Broken())
    app = create_app(ServeConfig(detector=detector.config), detector=broken)
    with TestClient(app, raise_server_exceptions=False) as c:
        body = assert_error(c.post("/v1/detect", content=astronaut_png), 500, "internal_error")
        assert "secret" not in body["error"]["message"] and "RuntimeError" in body["error"]["message"]
        assert c.app.state.engine.depth == 0
        assert 'retinakit_requests_total{endpoint="/v1/detect",status="500"} 1' in c.get("/metrics").text


# ----------------------------------------------------------------------------- hostile requests (issue items)


def test_pass_pixels_from_the_header_hand_computed() -> None:
    from retinakit.apps.serve.limits import ImageHeader, pass_pixels
    from retinakit.inference.preprocess import ResizePolicy
    from retinakit.inference.tta import TTAConfig

    photo = ImageHeader("jpeg", 1024, 687)
    assert pass_pixels(photo, ResizePolicy(max_side=1280), TTAConfig()) == 1024 * 687  # not enlarged
    assert pass_pixels(photo, ResizePolicy(max_side=512), TTAConfig()) == 512 * 344  # 687 / 2 = 343.5 -> 344
    tta = TTAConfig(scales=(500, 1700), flip=True, max_side=2600)
    # 1700 / 687 scales the long side to 2533.9 (under 2600): 2534 x 1700, twice with the flip in one pass
    assert pass_pixels(photo, ResizePolicy(max_side=1280), tta) == 2 * 2534 * 1700
    square = ImageHeader("png", 6000, 6000)
    assert pass_pixels(square, ResizePolicy(), TTAConfig()) == 36_000_000  # max_side=0: original size
    assert pass_pixels(square, ResizePolicy(), tta) == 2 * 1700 * 1700  # scales set the short side
    wide = ImageHeader("png", 6000, 3000)  # 1700 on the short side would make the long one 3400: capped at 2600
    assert pass_pixels(wide, ResizePolicy(), tta) == 2 * 2600 * 1300


def test_every_pixel_limit_applies_to_what_runs(detector: Detector, astronaut_png: bytes) -> None:
    """max_side=0 or 4096 on a 6000 x 6000 image are refused from the header, before decoding (the PNG below
    holds no image data: decoding it would answer bad_image), and TTA within the server's pass limit."""
    big = png_header(6000, 6000)
    with make_client(detector) as c:
        for query in ("max_side=0", "max_side=4096"):
            body = assert_error(c.post(f"/v1/detect?{query}", content=big), 413, "too_many_pixels")
            assert "6000 x 6000" in body["error"]["message"] and "9000000" in body["error"]["message"]
        assert_error(c.post("/v1/detect", content=big), 400, "bad_image")  # 1280 x 1280: allowed, then decoded
        assert c.app.state.engine.budget.used == 0
    with make_client(detector, max_pass_pixels=1_000_000, tta_scales=(500, 800), tta_flip=True) as c:
        assert c.post("/v1/detect", content=astronaut_png).status_code == 200  # 512 x 512
        body = assert_error(c.post("/v1/detect?tta=true", content=astronaut_png), 413, "too_many_pixels")
        assert str(2 * 800 * 800) in body["error"]["message"]  # the largest TTA pass: 800 x 800 and its flip


def test_crops_are_bounded(detector: Detector, astronaut_png: bytes) -> None:
    with make_client(detector, max_crop_pixels=100_000) as c:
        assert c.post("/v1/detect?crops=true&crop_size=256", content=astronaut_png).status_code == 200  # 65536
        body = assert_error(c.post("/v1/align?crop_size=512", content=astronaut_png), 413, "too_many_crops")
        assert "1 crops of 512 x 512" in body["error"]["message"]


def test_empty_key_header_does_not_hide_a_valid_bearer(detector: Detector, astronaut_png: bytes) -> None:
    with make_client(detector, api_key="s3cret") as c:
        both = {"X-API-Key": "", "Authorization": "Bearer s3cret"}
        assert c.post("/v1/detect", content=astronaut_png, headers=both).status_code == 200
        empty = {"X-API-Key": "", "Authorization": "Bearer "}
        assert_error(c.post("/v1/detect", content=astronaut_png, headers=empty), 401, "unauthorized")
    with pytest.raises(ValueError, match="API key is empty"):
        ServeConfig(api_key=" ")


def test_empty_api_key_is_refused_at_start(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from retinakit.cli import main

    monkeypatch.delenv("RETINAKIT_API_KEY", raising=False)
    assert main(["serve", "--api-key", ""]) == 2  # before anything is loaded or bound
    err = capsys.readouterr().err.strip()
    assert (
        err.splitlines()[-1]
        == "retinakit serve: error: --api-key is empty (an unset variable?): give a key, or leave the flag out"
    )
    monkeypatch.setenv("RETINAKIT_API_KEY", "")
    assert main(["serve"]) == 2
    assert "RETINAKIT_API_KEY is set but empty" in capsys.readouterr().err


def test_errors_outside_the_endpoints_are_in_the_table(client: TestClient, astronaut_png: bytes) -> None:
    broken = b"--xyz\r\nbroken header\r\n\r\n" + astronaut_png[:50] + b"\r\n--xyz--\r\n"
    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    body = assert_error(client.post("/v1/detect", content=broken, headers=headers), 400, "bad_request")
    assert "multipart" in body["error"]["message"]
    no_boundary = {"content-type": "multipart/form-data"}
    assert_error(client.post("/v1/detect", content=astronaut_png, headers=no_boundary), 400, "bad_request")
    assert_error(client.get("/redoc"), 404, "not_found")  # ReDoc loads from a CDN: not served
    head = client.head("/healthz")
    assert head.status_code == 200 and head.content == b""


def test_request_cap_answers_json_503_and_health_stays_open(detector: Detector, astronaut_png: bytes) -> None:
    backend = RecordingBackend(detector.backend, gate=True)
    gated = Detector(detector.config, backend_instance=backend)
    with make_client(gated, max_requests=1) as c:
        worker = threading.Thread(target=c.post, args=("/v1/detect",), kwargs={"content": astronaut_png})
        worker.start()
        assert backend.entered.wait(5)
        r = c.post("/v1/detect", content=astronaut_png)
        assert_error(r, 503, "overloaded")
        assert "limit is 1" in r.json()["error"]["message"] and r.headers["retry-after"] == "1"
        assert c.get("/healthz").json() == {"status": "ok"} and c.get("/readyz").status_code == 200
        backend.gate.set()
        worker.join(10)


def test_docs_error_table_lists_every_code() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "serve.md").read_text()
    for code, status in ERRORS.items():
        assert f"`{code}`" in docs, f"{code} is not in docs/serve.md"
        assert f"| {status} |" in docs or f"| {status} " in docs
