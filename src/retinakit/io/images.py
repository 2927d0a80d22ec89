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


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image file, read from the JPEG or PNG header (decoding other formats).

    Raises :class:`ImageError` for a missing or unreadable file.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            head = f.read(64 * 1024)
    except FileNotFoundError:
        raise ImageError(name, "no such file") from None
    except OSError as exc:
        raise ImageError(name, f"cannot be read ({exc.strerror or exc})") from None
    size = _png_size(head) or _jpeg_size(head)
    if size is None:
        height, width = read_image(name).shape[:2]
        return width, height
    return size


def _png_size(head: bytes) -> tuple[int, int] | None:
    if head[:8] != b"\x89PNG\r\n\x1a\n" or len(head) < 24:
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    """Width and height from the first SOF marker within ``head``, or None."""
    if head[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 <= len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(head[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(head[i + 7 : i + 9], "big"), int.from_bytes(head[i + 5 : i + 7], "big")
        i += 2 + length
    return None
