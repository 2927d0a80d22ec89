"""Where the shared data lives, and the photos the benchmarks run on."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

#: the repository root (the folder holding ``benchmarks/`` and ``src/``)
REPO = Path(__file__).resolve().parents[2]
#: the shared data folder: ``$RETINAKIT_SHARED``, else ``shared/`` beside the repository
SHARED = Path(os.environ.get("RETINAKIT_SHARED", REPO.parent / "shared"))
WIDER = SHARED / "data" / "widerface"
VALDEV = WIDER / "val-dev"
VALDEV_IMAGES = VALDEV / "images"
TRAIN_SUBSET = WIDER / "train-subset"

#: named input sizes (width, height)
SIZES = {"vga": (640, 480), "hd": (1280, 720), "4k": (3840, 2160)}


def valdev_files(n: int, step: int | None = None) -> list[Path]:
    """``n`` val-dev photos spread over the events (every ``step``-th in name order; default 1096 // n)."""
    files = sorted(VALDEV_IMAGES.glob("*/*.jpg"))
    return files[:: step or max(1, 1096 // max(n, 1))][:n]


def fallback_photos(n: int) -> list[np.ndarray]:
    """``n`` BGR photos from scikit-image (astronaut, cat, coffee in turn), for machines without the data."""
    import skimage.data

    photos = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee()]
    return [np.ascontiguousarray(photos[i % 3][:, :, ::-1]) for i in range(n)]


def load_photos(n: int, step: int | None = None) -> list[np.ndarray]:
    """``n`` BGR photos: val-dev photos (see :func:`valdev_files`) when present, else scikit-image ones."""
    if VALDEV_IMAGES.is_dir():
        return [cv2.imread(str(f)) for f in valdev_files(n, step)]
    return fallback_photos(n)


def at_size(photos: list[np.ndarray], size: str | tuple[int, int]) -> list[np.ndarray]:
    """The photos resized to a named size (:data:`SIZES`) or ``(width, height)``."""
    w, h = SIZES[size] if isinstance(size, str) else size
    return [cv2.resize(p, (w, h), interpolation=cv2.INTER_AREA) for p in photos]


def jpeg_blobs(images: list[np.ndarray], quality: int = 90) -> list[bytes]:
    """The images encoded as JPEG at ``quality``."""
    return [cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes() for im in images]
