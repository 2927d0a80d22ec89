"""Face annotation files: the RetinaFace ``label.txt`` format and the official WIDER FACE format.

Both give, per image, boxes ``(N, 4)`` xyxy float pixels and landmarks ``(N, 5, 2)`` in
:class:`~retinakit.FaceLandmark` order, with ``has_landmarks (N,)`` False where a face has none
(``-1`` in ``label.txt``; always False for the official format). Images with no faces are allowed.
A malformed line raises :class:`AnnotationError` naming the file and line number.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retinakit.core.boxes import box_convert
from retinakit.errors import AnnotationError
from retinakit.io.text import parse_floats, read_lines


@dataclass(frozen=True)
class ImageAnnotation:
    """Faces of one image; ``image`` is relative to the dataset's image directory."""

    image: str
    boxes: np.ndarray  # (N, 4) xyxy float32
    landmarks: np.ndarray  # (N, 5, 2) float32, zeros where has_landmarks is False
    has_landmarks: np.ndarray  # (N,) bool

    def __len__(self) -> int:
        return len(self.boxes)


def _make(image: str, rows: list[list[float]], points: list[list[float] | None]) -> ImageAnnotation:
    boxes = box_convert(np.asarray(rows, dtype=np.float32).reshape(-1, 4), "xywh", "xyxy")
    has = np.array([p is not None for p in points], dtype=bool)
    landmarks = np.zeros((len(rows), 5, 2), dtype=np.float32)
    for i, p in enumerate(points):
        if p is not None:
            landmarks[i] = np.asarray(p, dtype=np.float32).reshape(5, 2)
    return ImageAnnotation(image, boxes, landmarks, has)


def parse_label_txt(path: str | os.PathLike) -> list[ImageAnnotation]:
    """Parse a RetinaFace ``label.txt``: ``# event/file.jpg`` then ``x y w h [l0x l0y v0 ... l4x l4y v4 [blur]]``."""
    path = Path(path)
    out: list[ImageAnnotation] = []
    image: str | None = None
    rows: list[list[float]] = []
    points: list[list[float] | None] = []
    for n, raw in enumerate(read_lines(path), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if image is not None:
                out.append(_make(image, rows, points))
            image, rows, points = line[1:].strip(), [], []
            if not image:
                raise AnnotationError(f"{path}:{n}: '#' line without an image name")
            continue
        if image is None:
            raise AnnotationError(f"{path}:{n}: face line before any '# image' line")
        values = parse_floats(raw, path, n)
        if len(values) not in (4, 5, 19, 20):
            raise AnnotationError(
                f"{path}:{n}: expected 4 box values and optionally 15 landmark values, got {len(values)}"
            )
        x, y, w, h = values[:4]
        if w < 0 or h < 0:
            raise AnnotationError(f"{path}:{n}: negative box size {w} x {h}")
        rows.append([x, y, w, h])
        if len(values) >= 19 and values[4] >= 0:
            lm = values[4:19]
            points.append([lm[0], lm[1], lm[3], lm[4], lm[6], lm[7], lm[9], lm[10], lm[12], lm[13]])
        else:
            points.append(None)
    if image is not None:
        out.append(_make(image, rows, points))
    return out


def parse_wider_gt(path: str | os.PathLike, skip_invalid: bool = True) -> list[ImageAnnotation]:
    """Parse the official ``wider_face_*_bbx_gt.txt``: name, count, ``x y w h blur ... pose`` lines.

    Faces flagged invalid, and boxes of zero size, are dropped when ``skip_invalid``.
    """
    path = Path(path)
    lines = read_lines(path)
    out: list[ImageAnnotation] = []
    i = 0
    while i < len(lines):
        name = lines[i].strip()
        if not name:
            i += 1
            continue
        if i + 1 >= len(lines):
            raise AnnotationError(f"{path}:{i + 1}: image {name!r} has no face count line")
        try:
            count = int(lines[i + 1].strip())
        except ValueError:
            raise AnnotationError(f"{path}:{i + 2}: expected a face count, got {lines[i + 1]!r}") from None
        body = lines[i + 2 : i + 2 + max(count, 1)]
        rows: list[list[float]] = []
        for k, raw in enumerate(body[:count]):
            n = i + 3 + k
            values = parse_floats(raw, path, n, 4, "'x y w h ...'")
            invalid = len(values) >= 8 and values[7] == 1
            if skip_invalid and (invalid or values[2] <= 0 or values[3] <= 0):
                continue
            rows.append(values[:4])
        out.append(_make(name, rows, [None] * len(rows)))
        i += 2 + max(count, 1)
    return out
