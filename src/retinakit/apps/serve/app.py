"""The FastAPI application: ``create_app(config, detector=None)``.

Endpoints: ``POST /v1/detect``, ``POST /v1/align``, ``GET /healthz``, ``GET /readyz``, ``GET /metrics``,
the page at ``/`` (with its assets under ``/static``) and the OpenAPI docs at ``/docs``. Every error is
JSON ``{"error": {"code", "message"}}`` with the status listed in :data:`ERRORS`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import cv2
import numpy as np
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from retinakit.apps.serve.config import ServeConfig
from retinakit.apps.serve.engine import Engine, Overloaded, make_engine
from retinakit.apps.serve.limits import BodyLimit, LimitError, check_image
from retinakit.apps.serve.metrics import CONTENT_TYPE, Metrics
from retinakit.apps.serve.schemas import LANDMARK_NAMES, DetectOptions, DetectResponse, ErrorResponse
from retinakit.detector import Detector
from retinakit.result import Faces

STATIC = Path(__file__).resolve().parent / "static"

#: Status and code of every error the API gives, for the docs and the tests.
ERRORS = {
    "missing_image": 400,
    "bad_image": 400,
    "unauthorized": 401,
    "not_found": 404,
    "method_not_allowed": 405,
    "payload_too_large": 413,
    "too_many_pixels": 413,
    "unsupported_image": 415,
    "invalid_option": 422,
    "internal_error": 500,
    "overloaded": 503,
    "not_ready": 503,
    "timeout": 504,
}

_ERROR_DOCS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": ", ".join(c for c, s in ERRORS.items() if s == status)}
    for status in sorted({s for c, s in ERRORS.items() if c not in ("not_found", "method_not_allowed")})
}

_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "description": "The image (JPEG, PNG, WebP or BMP) as the raw body, or as the 'image' field of a multipart "
        "form with an optional 'options' field holding a JSON object of the options.",
        "content": {
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "options": {"type": "string", "description": 'JSON, e.g. {"threshold": 0.8, "crops": true}'},
                    },
                    "required": ["image"],
                }
            },
        },
    }
}


class ApiError(Exception):
    """An error answered as JSON with ``status`` and ``code``; ``headers`` are added to the response."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


class ServiceState:
    """The loaded detector (one model, loaded once) and the detectors derived from it per request options."""

    def __init__(self, config: ServeConfig, detector: Detector | None) -> None:
        self.config = config
        self.detector = detector
        self.load_error: str | None = None
        self._derived: dict[tuple[int | None, bool], Detector] = {}

    def load(self) -> None:
        config = self.config.detector
        if config.threads is None and self.config.workers > 1:  # workers x threads within the cores
            from retinakit.inference.backends import physical_cores

            config = replace(config, threads=max(1, physical_cores() // self.config.workers))
        try:
            self.detector = Detector(config)
        except Exception as exc:  # reported by /readyz; the process stays up to say why
            self.load_error = f"{type(exc).__name__}: {exc}"

    def detector_for(self, max_side: int | None, tta: bool) -> Detector:
        """The detector for these options, sharing the loaded model (its backend) with the base detector."""
        base = self.detector
        assert base is not None
        key = (max_side, tta)
        found = self._derived.get(key)
        if found is None:
            changes: dict[str, Any] = {"max_side": max_side}
            if tta:
                changes.update(scales=self.config.tta_scales, flip=self.config.tta_flip)
            found = Detector(replace(base.config, **changes), backend_instance=base.backend)
            if len(self._derived) >= 64:  # request options are bounded, but keep the cache bounded too
                self._derived.pop(next(iter(self._derived)))
            self._derived[key] = found
        return found

    def floor(self) -> float:
        """The lowest threshold a request may ask for: the loaded detector's."""
        return (self.detector.config if self.detector is not None else self.config.detector).score_threshold

    def model_info(self) -> dict[str, str]:
        from retinakit import __version__

        assert self.detector is not None
        weights = self.detector.config.weights
        return {
            "name": self.detector.model_config.name,
            "weights": Path(weights).name if weights else "built-in",
            "backend": self.detector.config.backend,
            "version": __version__,
        }


def create_app(config: ServeConfig | None = None, detector: Detector | None = None) -> FastAPI:
    """The service. ``detector``: an already loaded detector (tests); None loads ``config.detector`` at start-up
    in a thread, and ``/readyz`` answers 503 until it is ready."""
    config = config or ServeConfig()
    state = ServiceState(config, detector)
    metrics = Metrics(queue_depth=lambda: engine.depth, in_flight=lambda: engine.in_flight)
    engine: Engine = make_engine(
        config.engine,
        config.max_queue,
        config.workers,
        decode,
        config.max_batch,
        config.batch_window_ms / 1000,
        metrics.observe_batch,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await engine.start()
        loading = None if state.detector is not None else asyncio.create_task(asyncio.to_thread(state.load))
        try:
            yield
        finally:
            if loading is not None:
                await loading
            await engine.stop()

    app = FastAPI(
        title="retinakit",
        summary="RetinaFace face detection: boxes, scores, five landmarks and aligned crops",
        version=_version(),
        lifespan=lifespan,
    )
    app.state.service = state
    app.state.engine = engine
    app.state.metrics = metrics

    # ------------------------------------------------------------------ errors

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(LimitError)
    async def _limit_error(request: Request, exc: LimitError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_option", _describe(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
        # the details go to the server's log (the exception is re-raised there), not to the client
        return error_response(500, "internal_error", f"internal error ({type(exc).__name__}); see the server log")

    # ------------------------------------------------------------------ auth

    def require_key(request: Request) -> None:
        if config.api_key is None:
            return
        given = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if given is None and auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        if given is None or not hmac.compare_digest(given.encode(), config.api_key.encode()):
            raise ApiError(
                401,
                "unauthorized",
                "a valid API key is needed: 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                {"WWW-Authenticate": "Bearer"},
            )

    # ------------------------------------------------------------------ detection

    async def handle(request: Request, query: DetectOptions, align: bool) -> dict[str, Any]:
        if state.detector is None:
            reason = state.load_error or "the model is still loading"
            raise ApiError(503, "not_ready", reason, {"Retry-After": str(config.retry_after)})
        try:
            with engine.admit():
                return await asyncio.wait_for(process(request, query, align), config.request_timeout)
        except Overloaded as exc:
            raise ApiError(503, "overloaded", str(exc), {"Retry-After": str(config.retry_after)}) from None
        except asyncio.TimeoutError:
            raise ApiError(504, "timeout", f"no result within {config.request_timeout:g} s") from None

    async def process(request: Request, query: DetectOptions, align: bool) -> dict[str, Any]:
        start = time.perf_counter()
        data, extra = await read_upload(request)
        options = merge_options(query, extra, align)
        check_image(data, config.max_pixels)
        detector = state.detector_for(options["max_side"] or None, options["tta"])
        image, faces = await engine.detect(data, detector)  # decoded and detected in a worker thread
        faces = faces[faces.scores >= options["threshold"]]
        crops = await run_in_threadpool(encode_crops, faces, image, options["crop_size"]) if options["crops"] else None
        metrics.faces.inc(len(faces))
        height, width = image.shape[:2]
        return {
            "width": width,
            "height": height,
            "faces": face_records(faces, width, height, options["landmarks"], crops),
            "model": state.model_info(),
            "options": options,
            "time_ms": round(1000 * (time.perf_counter() - start), 2),
        }

    async def read_upload(request: Request) -> tuple[bytes, dict[str, Any]]:
        """The image bytes and the JSON options of a multipart form or a raw body."""
        content_type = request.headers.get("content-type", "")
        extra: dict[str, Any] = {}
        if content_type.startswith("multipart/form-data"):
            form = await request.form(max_files=1, max_fields=4)
            try:
                upload = form.get("image")
                if upload is None or isinstance(upload, str):
                    raise LimitError(400, "missing_image", "the multipart form has no file field 'image'")
                data = await upload.read()
                text = form.get("options")
                if text is not None:
                    extra = parse_json_options(text if isinstance(text, str) else (await text.read()).decode())
            finally:
                await form.close()
        else:
            data = await request.body()
        if len(data) > config.max_upload_bytes:
            raise LimitError(413, "payload_too_large", f"image is larger than {config.max_upload_bytes} bytes")
        return data, extra

    def merge_options(query: DetectOptions, extra: dict[str, Any], align: bool) -> dict[str, Any]:
        merged = {**query.model_dump(exclude_unset=True), **extra}
        try:
            options = DetectOptions.model_validate(merged).model_dump()
        except ValidationError as exc:
            raise ApiError(422, "invalid_option", _describe(exc.errors())) from None
        floor = state.floor()
        if options["threshold"] is None:
            options["threshold"] = max(0.9, floor) if align else config.default_threshold
        if options["threshold"] < floor:
            raise ApiError(422, "invalid_option", f"threshold: the server's lowest threshold is {floor:g}")
        if options["max_side"] is None:
            options["max_side"] = config.default_max_side or 0
        if options["max_side"] and not 32 <= options["max_side"] <= config.max_request_side:
            raise ApiError(
                422, "invalid_option", f"max_side: 0 (original size) or 32 to {config.max_request_side} pixels"
            )
        if align:
            options["crops"] = True
        return options

    upload_route: dict[str, Any] = {
        "response_model": DetectResponse,
        "response_model_exclude_none": True,
        "responses": {**_ERROR_DOCS},
        "openapi_extra": _UPLOAD_DOC,
        "dependencies": [Depends(require_key)],
    }

    @app.post("/v1/detect", summary="Faces in an image: boxes, scores, landmarks, optional crops", **upload_route)
    async def detect(request: Request, options: Annotated[DetectOptions, Query()]) -> dict[str, Any]:
        return await handle(request, options, align=False)

    @app.post("/v1/align", summary="Aligned face crops (ArcFace template) and their faces", **upload_route)
    async def align(request: Request, options: Annotated[DetectOptions, Query()]) -> dict[str, Any]:
        return await handle(request, options, align=True)

    # ------------------------------------------------------------------ operations

    @app.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="The model is loaded and requests are accepted", responses={503: _ERROR_DOCS[503]})
    async def readyz() -> Any:
        if state.detector is None:
            return error_response(503, "not_ready", state.load_error or "the model is still loading")
        return {
            "status": "ready",
            "model": state.model_info(),
            "limits": {
                "max_upload_bytes": config.max_upload_bytes,
                "max_pixels": config.max_pixels,
                "max_queue": config.max_queue,
                "request_timeout_s": config.request_timeout,
                "min_threshold": state.floor(),
            },
            "defaults": {"threshold": config.default_threshold, "max_side": config.default_max_side or 0},
            "auth": config.api_key is not None,
        }

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics_text() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )
    app.add_middleware(BodyLimit, limit=config.max_upload_bytes)
    app.add_middleware(CountRequests, metrics=metrics)
    return app


class CountRequests:
    """ASGI middleware: requests and latency by endpoint and status (a fixed set of endpoint labels)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            path = scope["path"]
            endpoint = path if path in _COUNTED else ("/static" if path.startswith("/static/") else "other")
            self.metrics.requests.inc(endpoint=endpoint, status=str(status[0]))
            self.metrics.latency.observe(time.perf_counter() - start, endpoint=endpoint)


_COUNTED = frozenset({"/", "/v1/detect", "/v1/align", "/healthz", "/readyz", "/metrics"})


def _version() -> str:
    from retinakit import __version__

    return __version__


def _describe(errors: Any) -> str:
    """One line from pydantic's error list: 'threshold: Input should be less than or equal to 1; ...'."""
    parts = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "body")]
        parts.append(f"{'.'.join(loc) or 'options'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid options"


def parse_json_options(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(422, "invalid_option", f"options: not JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ApiError(422, "invalid_option", "options: expected a JSON object")
    return value


def decode(data: bytes) -> np.ndarray:
    """BGR uint8 image of an upload whose header was checked; EXIF orientation is applied (as browsers do)."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise LimitError(400, "bad_image", "the image data is corrupt or truncated and cannot be decoded")
    return image


def encode_crops(faces: Faces, image: np.ndarray, size: int) -> list[str]:
    """Aligned crops of ``faces`` as base64 PNG (RGB as any PNG)."""
    out = []
    for crop in faces.align(image, size=size):
        ok, png = cv2.imencode(".png", crop)
        if not ok:  # pragma: no cover - PNG encoding of a uint8 array does not fail
            raise RuntimeError("PNG encoding failed")
        out.append(base64.b64encode(png.tobytes()).decode("ascii"))
    return out


def face_records(
    faces: Faces, width: int, height: int, landmarks: bool, crops: list[str] | None
) -> list[dict[str, Any]]:
    """JSON faces: box in pixels and relative to the image size, score, named landmarks, crop."""
    from retinakit.io.formats import to_records

    scale = np.array([width, height, width, height], dtype=np.float64)
    records = []
    for i, (record, box) in enumerate(zip(to_records(faces), faces.boxes, strict=True)):
        out: dict[str, Any] = {
            "box": record["box"],
            "box_relative": np.round(box / scale, 5).tolist(),
            "score": record["score"],
        }
        if landmarks:
            out["landmarks"] = dict(zip(LANDMARK_NAMES, record["landmarks"], strict=True))
        if crops is not None:
            out["crop"] = crops[i]
        records.append(out)
    return records
