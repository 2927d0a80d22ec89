"""The types and checks every label reader shares: annotations, options, problems, boxes, image sizes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retinakit.core.images import image_size
from retinakit.errors import AnnotationError, ImageError
from retinakit.landmarks import FaceLandmark

FORMATS = ("retinaface", "wider", "coco", "yolo")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
#: Keypoint names written by retinakit (:func:`retinakit.io.formats.to_coco`), in FaceLandmark order.
LANDMARK_NAMES = tuple(m.name.lower() for m in FaceLandmark)
#: Other spellings of the five names that annotation tools use (image left/right, as retinakit).
KEYPOINT_SYNONYMS = {
    "left_eye": FaceLandmark.LEFT_EYE,
    "eye_left": FaceLandmark.LEFT_EYE,
    "right_eye": FaceLandmark.RIGHT_EYE,
    "eye_right": FaceLandmark.RIGHT_EYE,
    "nose": FaceLandmark.NOSE,
    "nose_tip": FaceLandmark.NOSE,
    "left_mouth": FaceLandmark.LEFT_MOUTH,
    "mouth_left": FaceLandmark.LEFT_MOUTH,
    "left_mouth_corner": FaceLandmark.LEFT_MOUTH,
    "right_mouth": FaceLandmark.RIGHT_MOUTH,
    "mouth_right": FaceLandmark.RIGHT_MOUTH,
    "right_mouth_corner": FaceLandmark.RIGHT_MOUTH,
}
#: How far (pixels) a box may extend past the image border before it counts as outside.
BORDER_TOLERANCE = 1.0
MAX_MESSAGE = 200


@dataclass(frozen=True)
class ImageAnnotation:
    """Faces of one image; ``image`` is relative to the dataset's image root.

    ``boxes (N, 4)`` xyxy float32, ``landmarks (N, 5, 2)`` float32 (zeros where ``has_landmarks``
    is False), ``ignore (K, 4)`` xyxy regions that neither train nor count in evaluation (COCO
    ``iscrowd``), ``size`` ``(width, height)`` when known.
    """

    image: str
    boxes: np.ndarray
    landmarks: np.ndarray
    has_landmarks: np.ndarray
    ignore: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.float32))
    size: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass(frozen=True)
class LabelOptions:
    """How to read a label set. ``format``: one of :data:`FORMATS` or None to recognise it.
    ``images``: image root (default: the COCO file's folder; YOLO: the dataset's ``images``;
    required for ``retinaface`` and ``wider`` when images are checked). ``category``: COCO category
    or YOLO class, by name or id (default: the only one, else the one named ``face``).
    ``keypoints``: the file's keypoint names in retinakit's terms, in file order, overriding the
    file's own (see :func:`keypoint_order`). ``split``: the ``data.yaml`` split (``train``, ``val``).
    ``check_images``: check that every image exists and every box lies inside it. ``keep_invalid``:
    keep the faces a WIDER ``bbx_gt`` file flags invalid (dropped by default, as the official tools do)."""

    format: str | None = None
    images: str | None = None
    category: str | None = None
    keypoints: tuple[str, ...] | None = None
    split: str = "train"
    check_images: bool = True
    keep_invalid: bool = False


@dataclass(frozen=True)
class LabelSet:
    """A read label set: its images' annotations, the image root, and the problems found."""

    source: Path
    format: str
    root: Path
    images: list[ImageAnnotation]
    problems: list[str] = field(default_factory=list)
    skipped_faces: int = 0

    def counts(self) -> dict[str, int]:
        """Images, faces, faces with landmarks, ignore regions, problems."""
        return {
            "images": len(self.images),
            "faces": sum(len(a) for a in self.images),
            "faces_with_landmarks": sum(int(a.has_landmarks.sum()) for a in self.images),
            "ignore_regions": sum(len(a.ignore) for a in self.images),
            "problems": len(self.problems),
        }


def short(value: Any, limit: int = 40) -> str:
    """``repr`` of a value cut to ``limit`` characters, so a message never echoes a file."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Problems:
    """Where readers report bad labels: raised at once (``collect=False``) or collected."""

    def __init__(self, collect: bool = False) -> None:
        self.collect = collect
        self.messages: list[str] = []
        self.skipped_faces = 0

    def error(self, message: str) -> None:
        """A bad label: raise, or record and let the reader skip it."""
        message = message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."
        if not self.collect:
            raise AnnotationError(message)
        self.messages.append(message)

    def face(self, message: str) -> None:
        """A face whose box cannot be used (non-positive size, outside the image): always skipped."""
        self.skipped_faces += 1
        self.messages.append(message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "...")


def check_box(box: np.ndarray, size: tuple[int, int] | None, where: str, problems: Problems) -> bool:
    """True if an xyxy box is usable; else reports why at ``where`` (``file:line`` or ``file: annotation id``)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if not np.isfinite([x1, y1, x2, y2]).all():
        problems.error(f"{where}: box coordinates are not finite numbers")
        return False
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        problems.face(f"{where}: box of non-positive size {x2 - x1:g} x {y2 - y1:g}")
        return False
    if size is not None:
        w, h = size
        t = BORDER_TOLERANCE
        if x1 < -t or y1 < -t or x2 > w + t or y2 > h + t:
            problems.face(
                f"{where}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) (x1, y1, x2, y2) lies outside the {w} x {h} image"
            )
            return False
    return True


class Builder:
    """Collects the faces of one image, validating each box; :meth:`build` makes the annotation."""

    def __init__(self, image: str, size: tuple[int, int] | None, problems: Problems) -> None:
        self.image, self.size, self.problems = image, size, problems
        self.boxes: list[np.ndarray] = []
        self.points: list[np.ndarray | None] = []
        self.ignore: list[np.ndarray] = []

    def add(self, xyxy: np.ndarray, points: np.ndarray | None, where: str, crowd: bool = False) -> None:
        """One face (or crowd region); ``points (5, 2)`` or None."""
        if not check_box(xyxy, self.size, where, self.problems):
            return
        if points is not None and not np.isfinite(points).all():
            self.problems.error(f"{where}: landmark coordinates are not finite numbers")
            return
        if crowd:
            self.ignore.append(xyxy)
        else:
            self.boxes.append(xyxy)
            self.points.append(points)

    def build(self) -> ImageAnnotation:
        n = len(self.boxes)
        landmarks = np.zeros((n, 5, 2), dtype=np.float32)
        has = np.array([p is not None for p in self.points], dtype=bool)
        for i, p in enumerate(self.points):
            if p is not None:
                landmarks[i] = p
        return ImageAnnotation(
            self.image,
            np.asarray(self.boxes, dtype=np.float32).reshape(n, 4),
            landmarks,
            has,
            np.asarray(self.ignore, dtype=np.float32).reshape(-1, 4),
            self.size,
        )


class ImageRoot:
    """An image root that looks up image sizes (and whether images exist) when asked to."""

    def __init__(self, root: Path | None, check: bool) -> None:
        self.root, self.check = root, check

    def size(self, name: str, where: str, problems: Problems) -> tuple[int, int] | bool | None:
        """``(w, h)``; None when not checked; False (reported) when the image is missing or unreadable."""
        if not self.check or self.root is None:
            return None
        try:
            return image_size(self.root / name)
        except ImageError as exc:
            problems.error(f"{where}: image {short(name)} listed but {exc.reason} under {self.root}")
            return False


def text_root(path: Path, options: LabelOptions) -> Path:
    """Image root of a line-based label file: ``--images``, else an ``images`` folder beside it, else its folder."""
    if options.images is not None:
        return Path(options.images)
    return path.parent / "images" if (path.parent / "images").is_dir() else path.parent


def choose_category(categories: dict[Any, str], wanted: str | None, where: str) -> Any:
    """The id of the face category: ``wanted`` by name (case-insensitive) or id; else the only one,
    else the one named ``face``. Raises naming the categories there are."""
    listing = ", ".join(f"{short(name, 30)} ({short(key, 12)})" for key, name in list(categories.items())[:10])
    if wanted is not None:
        for key, name in categories.items():
            if name.lower() == wanted.lower():
                return key
        for key in categories:
            if str(key) == wanted:
                return key
        raise AnnotationError(f"{where}: no category {short(wanted)}; categories: {listing or 'none'}")
    if len(categories) == 1:
        return next(iter(categories))
    faces = [key for key, name in categories.items() if name.lower() == "face"]
    if len(faces) == 1:
        return faces[0]
    if not categories:
        raise AnnotationError(f"{where}: no categories")
    raise AnnotationError(f"{where}: {len(categories)} categories ({listing}); choose one with --category")


def _landmark_of(name: Any) -> FaceLandmark | None:
    key = str(name).strip().lower().replace(" ", "_").replace("-", "_")
    return KEYPOINT_SYNONYMS.get(key)


def keypoint_order(names: Any, count: int, override: tuple[str, ...] | None, where: str) -> np.ndarray | None:
    """``(5,)`` index of each landmark (FaceLandmark order) among a file's ``count`` keypoints, or None.

    Names (``override``, else the file's, e.g. a COCO category's ``keypoints``) are matched through
    :data:`KEYPOINT_SYNONYMS` in retinakit's image left/right convention. Documented default: five
    keypoints whose names are missing or not recognised are taken in FaceLandmark order (left eye,
    right eye, nose, left mouth corner, right mouth corner).
    """
    if count == 0:
        return None
    labels = list(override) if override is not None else (list(names) if isinstance(names, list) else [])
    if labels and len(labels) != count:
        raise AnnotationError(f"{where}: {len(labels)} keypoint names for {count} keypoints per face")
    if labels:
        mapped = [_landmark_of(n) for n in labels]
        if all(m in mapped for m in FaceLandmark) and len({m for m in mapped if m is not None}) == len(
            [m for m in mapped if m is not None]
        ):
            return np.array([mapped.index(m) for m in FaceLandmark], dtype=np.int64)
        if override is not None:
            raise AnnotationError(f"{where}: --keypoints must name each of {', '.join(LANDMARK_NAMES)} once")
    if count == 5:
        return np.arange(5, dtype=np.int64)
    shown = ", ".join(short(n, 20) for n in labels[:8])
    raise AnnotationError(
        f"{where}: cannot map {count} keypoints ({shown or 'no names'}) onto the five landmarks; "
        "name them with --keypoints"
    )
