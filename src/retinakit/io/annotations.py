"""The RetinaFace ``label.txt`` and official WIDER FACE readers under their old names.

Kept for existing code; :mod:`retinakit.io.labels` is the one reader of every label format. Both
give :class:`ImageAnnotation` records: boxes ``(N, 4)`` xyxy float pixels, landmarks ``(N, 5, 2)``
in :class:`~retinakit.FaceLandmark` order, ``has_landmarks (N,)``. A malformed line raises
:class:`AnnotationError` naming the file and line number.
"""

from __future__ import annotations

import os

from retinakit.errors import AnnotationError
from retinakit.io.labels import ImageAnnotation, LabelOptions, read_labels

__all__ = ["AnnotationError", "ImageAnnotation", "parse_label_txt", "parse_wider_gt"]


def parse_label_txt(path: str | os.PathLike) -> list[ImageAnnotation]:
    """Parse a RetinaFace ``label.txt`` (images are not opened; unusable boxes are dropped)."""
    return read_labels(path, LabelOptions(format="retinaface", check_images=False)).images


def parse_wider_gt(path: str | os.PathLike, skip_invalid: bool = True) -> list[ImageAnnotation]:
    """Parse the official ``wider_face_*_bbx_gt.txt``; faces flagged invalid and zero-size boxes are
    dropped (``skip_invalid=False`` keeps the invalid ones that have a usable box)."""
    options = LabelOptions(format="wider", check_images=False, keep_invalid=not skip_invalid)
    return read_labels(path, options).images
