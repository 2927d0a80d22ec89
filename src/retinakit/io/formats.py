"""Output formats, one place each: JSON records, WIDER submission files, COCO annotations.

Every conversion of a :class:`~retinakit.result.Faces` result to an external format lives here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retinakit.errors import AnnotationError
from retinakit.io.text import parse_floats, read_lines
from retinakit.records import COCO_KEYPOINTS, to_coco, to_records, to_wider_rows

if TYPE_CHECKING:
    from retinakit.result import Faces

__all__ = [
    "COCO_KEYPOINTS",
    "image_record",
    "read_wider_file",
    "to_coco",
    "to_records",
    "to_wider_rows",
    "write_wider_file",
]

# ----------------------------------------------------------------------------- JSON


def image_record(path: str, width: int, height: int, faces: Faces) -> dict[str, Any]:
    """The JSON-lines record of one image: path, width, height and its faces."""
    return {"path": path, "width": int(width), "height": int(height), "faces": to_records(faces)}


# ----------------------------------------------------------------------------- WIDER


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
