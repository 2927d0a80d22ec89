"""Turning an upload into an image and faces into the JSON of an answer."""

from __future__ import annotations

import base64
from typing import Any

import cv2
import numpy as np

from retinakit.apps.serve.limits import LimitError
from retinakit.apps.serve.schemas import LANDMARK_NAMES
from retinakit.result import Faces


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
        if "angle" in record:
            out["angle"] = record["angle"]
        if crops is not None:
            out["crop"] = crops[i]
        records.append(out)
    return records
