"""Decoding image files into ``(H, W, 3)`` uint8 BGR arrays (OpenCV's order)."""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np

from retinakit.errors import ImageError


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file into a ``(H, W, 3)`` uint8 BGR array; raises :class:`ImageError`."""
    name = os.fspath(path)
    try:
        data = np.fromfile(name, dtype=np.uint8)
    except FileNotFoundError:
        raise ImageError(name, "no such file") from None
    except IsADirectoryError:
        raise ImageError(name, "is a directory, not an image") from None
    except PermissionError:
        raise ImageError(name, "permission denied") from None
    except OSError as exc:
        raise ImageError(name, f"cannot be read ({exc.strerror or exc})") from None
    if data.size == 0:
        raise ImageError(name, "empty file")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(name, "not a decodable image (unknown format or corrupt data)")
    return image


def as_array(image: Any) -> np.ndarray:
    """A numpy array as it is, a path read as BGR (:func:`read_image`), a PIL image as RGB.

    For functions that give back an image in the caller's channel order (aligned crops, anonymised copies).
    """
    if isinstance(image, np.ndarray):
        return image
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    return np.asarray(image.convert("RGB"))
