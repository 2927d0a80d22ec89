"""Face labels in the formats people have, read by one reader and written by one writer per format.

Formats (:data:`FORMATS`), recognised from the file (:func:`detect_format`) or named:

- ``retinaface``: a RetinaFace ``label.txt``: ``# event/file.jpg`` then ``x y w h`` and optionally the
  five landmarks ``lx ly v`` (``-1`` when a face has none) and a blur value per face;
- ``wider``: the official ``wider_face_*_bbx_gt.txt`` (name, count, ``x y w h blur expression
  illumination invalid occlusion pose``; invalid and zero-size faces are dropped, as the official
  tools do), or a folder of WIDER submission files (``event/name.txt``: name, count, ``x y w h score``);
- ``coco``: a COCO JSON file (``images``, ``annotations``, ``categories``): ``bbox`` ``[x, y, w, h]``,
  ``keypoints`` ``[x, y, v] * K`` mapped onto the five landmarks by the category's keypoint names
  (:func:`keypoint_order`), ``iscrowd`` faces kept as ignore regions;
- ``yolo``: a YOLO (pose) dataset, a folder or its ``data.yaml``: one ``labels/**/name.txt`` per
  ``images/**/name.jpg`` with ``class cx cy w h`` normalised to [0, 1], optionally followed by
  ``kpt_shape`` keypoints ``x y [v]``.

Every face ends up as :class:`ImageAnnotation` arrays: boxes ``(N, 4)`` xyxy float pixels,
landmarks ``(N, 5, 2)`` in :class:`~retinakit.FaceLandmark` order (image left/right), ``has_landmarks
(N,)`` (True only when all five points are labelled), ``ignore (K, 4)`` crowd regions. A bad label
raises :class:`~retinakit.errors.AnnotationError` naming the file and the line or annotation id, in
one line whatever the file holds; :func:`check_labels` collects every problem instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from retinakit.errors import AnnotationError
from retinakit.io.labels.coco import read_coco
from retinakit.io.labels.core import (
    FORMATS,
    IMAGE_SUFFIXES,
    LANDMARK_NAMES,
    ImageAnnotation,
    LabelOptions,
    LabelSet,
    Problems,
    short,
)
from retinakit.io.labels.text import read_retinaface, read_wider
from retinakit.io.labels.write import write_labels
from retinakit.io.labels.yolo import read_yolo

__all__ = [
    "FORMATS",
    "LANDMARK_NAMES",
    "ImageAnnotation",
    "LabelOptions",
    "LabelSet",
    "check_labels",
    "detect_format",
    "read_labels",
    "write_labels",
]

Reader = Callable[[Path, LabelOptions, Problems], tuple[Path, list[ImageAnnotation]]]
READERS: dict[str, Reader] = {
    "retinaface": read_retinaface,
    "wider": read_wider,
    "coco": read_coco,
    "yolo": read_yolo,
}


def detect_format(path: str | os.PathLike) -> str:
    """The format of a label file or folder (see :data:`FORMATS`), from its name and first bytes."""
    path = Path(path)
    if path.is_dir():
        if (path / "data.yaml").is_file() or (path / "labels").is_dir():
            return "yolo"
        if any(path.glob("*/*.txt")):
            return "wider"
        raise AnnotationError(f"{path}: a folder that is neither a YOLO dataset (labels/) nor WIDER submission files")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: label file not found")
    if path.suffix.lower() in (".yaml", ".yml"):
        return "yolo"
    with path.open("rb") as f:
        head = f.read(4096).lstrip()
    if head.startswith((b"{", b"[")):
        return "coco"
    if head.startswith(b"#"):
        return "retinaface"
    first = head.split(b"\n", 1)[0].strip()
    if first.lower().endswith(tuple(s.encode() for s in IMAGE_SUFFIXES)):
        return "wider"
    raise AnnotationError(
        f"{path}: not a recognised label file (expected RetinaFace label.txt, WIDER bbx_gt, COCO JSON or YOLO "
        f"data.yaml; first line {short(first.decode('utf-8', 'replace'))}); name the format with --format"
    )


def read_labels(path: str | os.PathLike, options: LabelOptions | None = None, collect: bool = False) -> LabelSet:
    """Read a label set in any of :data:`FORMATS`.

    Without ``collect`` the first bad label raises :class:`AnnotationError` (faces with unusable
    boxes are skipped and counted in ``skipped_faces``, their reasons in ``problems``); with it,
    every problem is recorded in ``problems`` and reading goes on.
    """
    options = options or LabelOptions()
    path = Path(path)
    fmt = options.format or detect_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown label format {fmt!r}; known: {', '.join(FORMATS)}")
    problems = Problems(collect)
    reader = READERS[fmt]
    root, images = reader(path, options, problems)
    return LabelSet(path, fmt, root, images, problems.messages, problems.skipped_faces)


def check_labels(path: str | os.PathLike, options: LabelOptions | None = None) -> LabelSet:
    """Read a label set collecting every problem (``retinakit labels check``)."""
    try:
        return read_labels(path, options, collect=True)
    except AnnotationError as exc:  # the file cannot be read at all
        options = options or LabelOptions()
        return LabelSet(Path(path), options.format or "?", Path("."), [], [str(exc)])
