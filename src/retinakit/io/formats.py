"""Output formats, one place each: JSON records, WIDER submission files, COCO annotations.

Every conversion of a :class:`~retinakit.result.Faces` result to an external format lives here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retinakit.errors import AnnotationError
from retinakit.inference.boxes import box_convert
from retinakit.io.text import parse_floats, read_lines
from retinakit.landmarks import FaceLandmark

if TYPE_CHECKING:
    from retinakit.result import Faces

#: COCO keypoint names, in FaceLandmark order.
COCO_KEYPOINTS = [m.name.lower() for m in FaceLandmark]


# ----------------------------------------------------------------------------- JSON


def to_records(faces: Faces, decimals: int | None = 2) -> list[dict[str, Any]]:
    """One dict per face: ``box`` [x1, y1, x2, y2], ``score``, ``landmarks`` [[x, y] x 5]."""

    def rnd(a: np.ndarray) -> Any:
        a = a.astype(np.float64)
        return (np.round(a, decimals) if decimals is not None else a).tolist()

    return [
        {
            "box": rnd(box),
            "score": round(float(score), 5) if decimals is not None else float(score),
            "landmarks": rnd(points),
        }
        for box, score, points in zip(faces.boxes, faces.scores, faces.landmarks, strict=True)
    ]


def image_record(path: str, width: int, height: int, faces: Faces) -> dict[str, Any]:
    """The JSON-lines record of one image: path, width, height and its faces."""
    return {"path": path, "width": int(width), "height": int(height), "faces": to_records(faces)}


# ----------------------------------------------------------------------------- WIDER


def to_wider_rows(faces: Faces) -> np.ndarray:
    """``(N, 5)`` float64 ``x, y, w, h, score`` rows, highest score first (WIDER submission order)."""
    order = np.argsort(-faces.scores, kind="stable")
    xywh = box_convert(faces.boxes[order].astype(np.float64), "xyxy", "xywh")
    return np.concatenate([xywh, faces.scores[order, None].astype(np.float64)], axis=1)


def write_wider_file(directory: str | os.PathLike, key: str, rows: np.ndarray) -> Path:
    """Write ``directory/event/name.txt`` for key ``event/name``: name, count, ``x y w h score`` lines.

    Coordinates are written as floats (3 decimals), never truncated to integers.
    """
    event, name = key.split("/")
    path = Path(directory) / event / f"{name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [name, str(len(rows))]
    lines += [f"{x:.3f} {y:.3f} {w:.3f} {h:.3f} {s:.6f}" for x, y, w, h, s in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_wider_file(path: str | os.PathLike) -> np.ndarray:
    """``(P, 5)`` float64 rows of one submission file; :class:`AnnotationError` names the file and line."""
    path = Path(path)
    lines = read_lines(path)
    if len(lines) < 2:
        raise AnnotationError(f"{path}: expected a name line and a count line")
    try:
        count = int(lines[1].strip())
    except ValueError:
        raise AnnotationError(f"{path}:2: expected the number of faces, got {lines[1]!r}") from None
    rows = []
    for n, line in enumerate(lines[2:], start=3):
        if line.strip():
            rows.append(parse_floats(line, path, n, 5, "'x y w h score'")[:5])
    if len(rows) != count:
        raise AnnotationError(f"{path}: says {count} faces but lists {len(rows)}")
    return np.asarray(rows, dtype=np.float64).reshape(-1, 5)


# ----------------------------------------------------------------------------- COCO


def to_coco(images: Sequence[tuple[str, int, int, Faces]], decimals: int = 2) -> dict[str, Any]:
    """A COCO-style detection dataset of ``(file_name, width, height, faces)`` entries.

    Boxes become ``bbox`` ``[x, y, w, h]``; landmarks ``keypoints`` ``[x, y, 2] * 5`` (visibility 2) in
    FaceLandmark order; ``score`` is kept. One category, ``face``, with the keypoint names.
    """
    out_images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, (file_name, width, height, faces) in enumerate(images, start=1):
        out_images.append({"id": image_id, "file_name": file_name, "width": int(width), "height": int(height)})
        for box, score, points in zip(faces.boxes, faces.scores, faces.landmarks, strict=True):
            x1, y1, x2, y2 = (round(float(v), decimals) for v in box)
            w, h = round(x2 - x1, decimals), round(y2 - y1, decimals)
            keypoints: list[float] = []
            for x, y in points:
                keypoints += [round(float(x), decimals), round(float(y), decimals), 2]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "bbox": [x1, y1, w, h],
                    "area": round(w * h, decimals),
                    "iscrowd": 0,
                    "score": round(float(score), 5),
                    "keypoints": keypoints,
                    "num_keypoints": len(points),
                }
            )
    return {
        "images": out_images,
        "annotations": annotations,
        "categories": [
            {
                "id": 1,
                "name": "face",
                "supercategory": "face",
                "keypoints": COCO_KEYPOINTS,
                "skeleton": [[1, 2], [1, 3], [2, 3], [3, 4], [3, 5], [4, 5]],
            }
        ],
    }
