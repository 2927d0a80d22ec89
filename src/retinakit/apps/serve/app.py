"""The FastAPI application: ``create_app(config, detector=None)``.

Endpoints (:mod:`retinakit.apps.serve.routes`): ``POST /v1/detect``, ``POST /v1/align``, ``GET|HEAD /healthz``,
``GET /readyz``, ``GET /metrics``, the page at ``/`` (with its assets under ``/static``) and the OpenAPI docs
at ``/docs``. Every error is JSON ``{"error": {"code", "message"}}`` with the status listed in :data:`ERRORS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from retinakit.apps.serve.config import ServeConfig
from retinakit.apps.serve.errors import ERRORS, ApiError, ClientGone, code_of_status
from retinakit.apps.serve.guard import RequestCap
from retinakit.apps.serve.limits import BodyLimit
from retinakit.apps.serve.metrics import Metrics
from retinakit.apps.serve.routes import STATIC, detection, operations
from retinakit.apps.serve.state import ServiceState
from retinakit.apps.serve.upload import describe
from retinakit.detector import Detector

__all__ = ["ERRORS", "ApiError", "create_app", "error_response"]


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def create_app(config: ServeConfig | None = None, detector: Detector | None = None) -> FastAPI:
    """The service. ``detector``: an already loaded detector (tests); None loads ``config.detector`` at start-up
    in a thread, and ``/readyz`` answers 503 until it is ready."""
    config = config or ServeConfig()
    state = ServiceState(config, detector)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.engine.start()
        loading = None if state.detector is not None else asyncio.create_task(asyncio.to_thread(state.load))
        try:
            yield
        finally:
            if loading is not None:
                await loading
            await state.engine.stop()

    app = FastAPI(
        title="retinakit",
        summary="RetinaFace face detection: boxes, scores, five landmarks and aligned crops",
        version=_version(),
        lifespan=lifespan,
        redoc_url=None,  # ReDoc's page loads its script from a CDN; /docs and /openapi.json stay
    )
    app.state.service = state
    app.state.engine = state.engine
    app.state.metrics = state.metrics
    add_error_handlers(app)
    app.include_router(detection)
    app.include_router(operations)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_middleware(app, config, state.metrics)
    return app


def add_error_handlers(app: FastAPI) -> None:
    """Every error as JSON with a code of :data:`ERRORS`; a client that left gets nothing (counted as 499)."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_option", describe(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 400 and request.headers.get("content-type", "").startswith("multipart/"):
            message = f"the multipart form cannot be read: {message}"
        return error_response(exc.status_code, code_of_status(exc.status_code), message)

    @app.exception_handler(ClientGone)
    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, exc: Exception) -> Response:
        return Response(status_code=ERRORS["client_closed"])  # not sent: the connection is closed

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
        # the details go to the server's log (the exception is re-raised there), not to the client
        return error_response(500, "internal_error", f"internal error ({type(exc).__name__}); see the server log")


def add_middleware(app: FastAPI, config: ServeConfig, metrics: Metrics) -> None:
    """CORS when asked, the body size limit, the cap on requests at once, the request metrics (outermost)."""
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )
    app.add_middleware(BodyLimit, limit=config.max_upload_bytes)
    app.add_middleware(RequestCap, limit=config.request_cap, retry_after=config.retry_after)
    app.add_middleware(CountRequests, metrics=metrics)


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
