"""Reading a request: its body (bounded in size and time, before any queue place is taken) and its options."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from retinakit.apps.serve.config import ServeConfig
from retinakit.apps.serve.errors import ApiError, ClientGone
from retinakit.apps.serve.limits import LimitError
from retinakit.apps.serve.schemas import DetectOptions

CLOSE = {"Connection": "close"}  # the rest of an unread body is not worth reading


@dataclass(frozen=True)
class Upload:
    data: bytes
    options: dict[str, Any]  # the JSON options of a multipart form ({} for a raw body)


async def read_upload(request: Request, config: ServeConfig) -> Upload:
    """The image bytes and JSON options of a multipart form or a raw body, read within ``config.read_timeout``
    (408 past it; the size limit is :class:`~retinakit.apps.serve.limits.BodyLimit`'s)."""
    try:
        await asyncio.wait_for(request.body(), config.read_timeout)
    except asyncio.TimeoutError:
        message = f"the body did not arrive within {config.read_timeout:g} s"
        raise ApiError(408, "upload_timeout", message, CLOSE) from None
    except ClientDisconnect:
        raise ClientGone() from None
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await _read_form(request)  # parses the body read above
    return Upload(await request.body(), {})


async def _read_form(request: Request) -> Upload:
    form = await request.form(max_files=1, max_fields=4)
    try:
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            raise LimitError(400, "missing_image", "the multipart form has no file field 'image'")
        data = await upload.read()
        text = form.get("options")
        extra: dict[str, Any] = {}
        if text is not None:
            extra = parse_json_options(text if isinstance(text, str) else (await text.read()).decode())
    finally:
        await form.close()
    return Upload(data, extra)


def parse_json_options(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(422, "invalid_option", f"options: not JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ApiError(422, "invalid_option", "options: expected a JSON object")
    return value


def merge_options(
    query: DetectOptions, extra: dict[str, Any], align: bool, config: ServeConfig, floor: float
) -> dict[str, Any]:
    """The options in effect: the query's, then the form's JSON, then the server's defaults and bounds."""
    merged = {**query.model_dump(exclude_unset=True), **extra}
    try:
        options = DetectOptions.model_validate(merged).model_dump()
    except ValidationError as exc:
        raise ApiError(422, "invalid_option", describe(exc.errors())) from None
    if options["threshold"] is None:
        options["threshold"] = max(0.9, floor) if align else config.default_threshold
    if options["threshold"] < floor:
        raise ApiError(422, "invalid_option", f"threshold: the server's lowest threshold is {floor:g}")
    if options["max_side"] is None:
        options["max_side"] = config.default_max_side or 0
    if options["max_side"] and not 32 <= options["max_side"] <= config.max_request_side:
        raise ApiError(422, "invalid_option", f"max_side: 0 (original size) or 32 to {config.max_request_side} pixels")
    options["orientations"] = _orientations(options["orientations"])
    if align:
        options["crops"] = True
    return options


def _orientations(text: str | None) -> tuple[int, ...] | str:
    """``orientations`` as the detector takes it: ``(0,)`` when not given, ``"auto"``, or distinct angles."""
    if text is None or not text.strip():
        return (0,)
    if text.strip().lower() == "auto":
        return "auto"
    try:
        angles = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        angles = ()
    if not angles or any(a not in (0, 90, 180, 270) for a in angles) or len(set(angles)) != len(angles):
        raise ApiError(422, "invalid_option", "orientations: 'auto' or distinct angles among 0, 90, 180, 270")
    return angles


def describe(errors: Any) -> str:
    """One line from pydantic's error list: 'threshold: Input should be less than or equal to 1; ...'."""
    parts = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "body")]
        parts.append(f"{'.'.join(loc) or 'options'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid options"
