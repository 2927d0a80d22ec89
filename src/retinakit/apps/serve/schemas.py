"""Request options and response bodies of the HTTP API (pydantic models: validation and OpenAPI docs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from retinakit.landmarks import FaceLandmark

#: Landmark names in the JSON, in FaceLandmark order (left/right as seen in the image).
LANDMARK_NAMES = tuple(m.name.lower() for m in FaceLandmark)


class DetectOptions(BaseModel):
    """Options of ``/v1/detect`` and ``/v1/align``: query parameters, or a JSON object in the ``options``
    field of a multipart upload (its values win over the query's)."""

    model_config = ConfigDict(extra="forbid")

    threshold: float | None = Field(
        None, ge=0, le=1, description="minimum face score (default: the server's; not below its floor)"
    )
    max_side: int | None = Field(
        None, ge=0, description="shrink images whose long side exceeds this many pixels; 0 = original size"
    )
    landmarks: bool = Field(True, description="include the five landmarks of each face")
    tta: bool = Field(False, description="test-time augmentation (several scales and a flip: slower, finds more)")
    orientations: str | None = Field(
        None,
        max_length=32,
        description="also detect with the image turned by these angles, e.g. '0,90,180,270', or 'auto' "
        "(default: upright only); each face then carries its angle",
    )
    crops: bool = Field(False, description="include aligned 112 x 112 crops (ArcFace template) as base64 PNG")
    crop_size: int = Field(112, ge=16, le=512, description="side of the aligned crops in pixels")


class ErrorBody(BaseModel):
    code: str = Field(description="machine-readable reason, e.g. too_many_pixels, overloaded, unauthorized")
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class ModelInfo(BaseModel):
    name: str = Field(description="model preset, e.g. mobilenet0.25")
    weights: str = Field(description="'built-in' or the weights file name")
    backend: str
    version: str = Field(description="retinakit version that answered")


class FaceOut(BaseModel):
    box: list[float] = Field(description="x1, y1, x2, y2 in pixels of the uploaded image")
    box_relative: list[float] = Field(description="the box divided by width and height (0-1)")
    score: float
    landmarks: dict[str, list[float]] | None = Field(
        None, description=f"(x, y) in pixels by name: {', '.join(LANDMARK_NAMES)} (left/right as seen in the image)"
    )
    angle: int | None = Field(
        None, description="with orientations: the rotation (degrees counter-clockwise) that made the face upright"
    )
    crop: str | None = Field(None, description="aligned crop, base64-encoded PNG (when crops=true)")


class DetectResponse(BaseModel):
    width: int
    height: int
    faces: list[FaceOut]
    model: ModelInfo
    options: dict[str, Any] = Field(description="the options in effect")
    time_ms: float = Field(description="server time for this request, in milliseconds")
