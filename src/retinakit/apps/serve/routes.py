"""The endpoints as two FastAPI routers (detection, operations) and the dependencies they share."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from retinakit.apps.serve.engine import Job, Overloaded
from retinakit.apps.serve.errors import ERRORS, ApiError, ClientGone
from retinakit.apps.serve.limits import check_crops, check_image, check_pass, pass_pixels
from retinakit.apps.serve.metrics import CONTENT_TYPE
from retinakit.apps.serve.output import encode_crops, face_records
from retinakit.apps.serve.schemas import DetectOptions, DetectResponse, ErrorResponse
from retinakit.apps.serve.state import ServiceState
from retinakit.apps.serve.upload import merge_options, read_upload
from retinakit.detector import Outcome
from retinakit.errors import DetectionError

T = TypeVar("T")
STATIC = Path(__file__).resolve().parent / "static"
log = logging.getLogger("retinakit.serve")

_UNDOCUMENTED = ("not_found", "method_not_allowed", "client_closed")  # any path / not sent
ERROR_DOCS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": ", ".join(c for c, s in ERRORS.items() if s == status)}
    for status in sorted({s for c, s in ERRORS.items() if c not in _UNDOCUMENTED})
}

UPLOAD_DOC = {
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


# ----------------------------------------------------------------------------- dependencies


def service(request: Request) -> ServiceState:
    """The app's :class:`ServiceState`."""
    state: ServiceState = request.app.state.service
    return state


Service = Annotated[ServiceState, Depends(service)]


def require_key(request: Request, state: Service) -> None:
    """401 unless the request carries the API key (when one is set): ``X-API-Key`` or ``Authorization: Bearer``.

    An empty header counts as absent, so an empty ``X-API-Key`` does not hide a valid Bearer key."""
    key = state.config.api_key
    if key is None:
        return
    auth = request.headers.get("authorization", "")
    given = [request.headers.get("x-api-key", "").strip(), auth[7:].strip() if auth[:7].lower() == "bearer " else ""]
    if not any(g and hmac.compare_digest(g.encode(), key.encode()) for g in given):
        raise ApiError(
            401,
            "unauthorized",
            "a valid API key is needed: 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
            {"WWW-Authenticate": "Bearer"},
        )


def require_ready(state: Service) -> None:
    """503 while the model is loading (or failed to load)."""
    if state.detector is None:
        reason = state.load_error or "the model is still loading"
        raise ApiError(503, "not_ready", reason, {"Retry-After": str(state.config.retry_after)})


# ----------------------------------------------------------------------------- detection

detection = APIRouter(dependencies=[Depends(require_key), Depends(require_ready)])
UPLOAD_ROUTE: dict[str, Any] = {
    "response_model": DetectResponse,
    "response_model_exclude_none": True,
    "responses": {**ERROR_DOCS},
    "openapi_extra": UPLOAD_DOC,
}


@detection.post("/v1/detect", summary="Faces in an image: boxes, scores, landmarks, optional crops", **UPLOAD_ROUTE)
async def detect(request: Request, options: Annotated[DetectOptions, Query()], state: Service) -> dict[str, Any]:
    return await handle(request, options, state, align=False)


@detection.post("/v1/align", summary="Aligned face crops (ArcFace template) and their faces", **UPLOAD_ROUTE)
async def align(request: Request, options: Annotated[DetectOptions, Query()], state: Service) -> dict[str, Any]:
    return await handle(request, options, state, align=True)


async def handle(request: Request, query: DetectOptions, state: ServiceState, align: bool) -> dict[str, Any]:
    """Read and check the upload (no queue place yet), then detect, then build the answer."""
    start = time.perf_counter()
    config = state.config
    upload = await read_upload(request, config)
    options = merge_options(query, upload.options, align, config, state.floor())
    header = check_image(upload.data, config.max_pixels)
    detector = state.detector_for(
        options["max_side"] or None, options["tta"], options["threshold"], options["orientations"]
    )
    cost = pass_pixels(header, detector.config.resize_policy, detector.config.tta_config)
    check_pass(header, cost, config.max_pass_pixels)
    outcome = await run_job(request, state, Job(upload.data, detector, (header.height, header.width), cost))
    return await answer(state, outcome, options, start)


async def run_job(request: Request, state: ServiceState, job: Job) -> Outcome[Job]:
    """The job's outcome, holding a queue place; 503 when the queue is full, 504 past the request timeout."""
    config = state.config
    try:
        with state.engine.admit():
            outcome = await until_answered(request, state.engine.detect(job), config.request_timeout)
    except Overloaded as exc:
        raise ApiError(503, "overloaded", str(exc), {"Retry-After": str(config.retry_after)}) from None
    except asyncio.TimeoutError:
        raise ApiError(504, "timeout", f"no result within {config.request_timeout:g} s") from None
    if isinstance(outcome.error, ApiError):  # e.g. bad_image: the data could not be decoded
        raise outcome.error
    if isinstance(outcome.error, DetectionError):
        cause = outcome.error.__cause__ or outcome.error
        log.error("detection failed: %s", outcome.reason, exc_info=cause)
        raise ApiError(500, "internal_error", f"internal error ({type(cause).__name__}); see the server log")
    if outcome.error is not None:
        raise outcome.error
    return outcome


async def until_answered(request: Request, work: Awaitable[T], timeout: float) -> T:
    """``work``'s result; cancelled (and :class:`ClientGone` raised) as soon as the client disconnects,
    ``asyncio.TimeoutError`` after ``timeout`` seconds."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({task, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():
            task.cancel()  # abandons the job: not run if it has not started
    if task in done:
        return task.result()
    if gone in done:
        raise ClientGone()
    raise asyncio.TimeoutError


async def _disconnected(request: Request) -> None:
    """Returns when the client closes the connection (the body has been read: nothing else can arrive)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def answer(state: ServiceState, outcome: Outcome[Job], options: dict[str, Any], start: float) -> dict[str, Any]:
    """The JSON answer: the faces (found at the request's threshold), with crops when asked (bounded in pixels)."""
    image, faces = outcome.image, outcome.faces
    assert image is not None and faces is not None
    state.metrics.images.inc()
    crops = None
    if options["crops"]:
        check_crops(len(faces), options["crop_size"], state.config.max_crop_pixels)
        crops = await run_in_threadpool(encode_crops, faces, image, options["crop_size"])
    state.metrics.faces.inc(len(faces))
    height, width = image.shape[:2]
    return {
        "width": width,
        "height": height,
        "faces": face_records(faces, width, height, options["landmarks"], crops),
        "model": state.model_info(),
        "options": options,
        "time_ms": round(1000 * (time.perf_counter() - start), 2),
    }


# ----------------------------------------------------------------------------- operations

operations = APIRouter()


@operations.get("/healthz", summary="The process is up")
@operations.head("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@operations.get("/readyz", summary="The model is loaded and requests are accepted", responses={503: ERROR_DOCS[503]})
async def readyz(state: Service) -> Any:
    config = state.config
    if state.detector is None:
        return JSONResponse(
            {"error": {"code": "not_ready", "message": state.load_error or "the model is still loading"}}, 503
        )
    return {
        "status": "ready",
        "model": state.model_info(),
        "limits": {
            "max_upload_bytes": config.max_upload_bytes,
            "max_pixels": config.max_pixels,
            "max_pass_pixels": config.max_pass_pixels,
            "max_crop_pixels": config.max_crop_pixels,
            "max_queue": config.max_queue,
            "request_timeout_s": config.request_timeout,
            "read_timeout_s": config.read_timeout,
            "min_threshold": state.floor(),
        },
        "defaults": {"threshold": config.default_threshold, "max_side": config.default_max_side or 0},
        "auth": config.api_key is not None,
    }


@operations.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics_text(state: Service) -> Response:
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)


@operations.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")
