"""Decoding image files into ``(H, W, 3)`` uint8 BGR arrays (OpenCV's order)."""

from __future__ import annotations

import os
import sys
from typing import Any

import cv2
import numpy as np

from retinakit.core.headers import image_header
from retinakit.errors import ImageError

#: The name :func:`read_image` reads standard input from (one image, any format it decodes).
STDIN = "-"
#: ISO base media file brands (the ``ftyp`` box) of AVIF and of HEIF/HEIC images (HEIC: iPhone photos).
AVIF_BRANDS = frozenset({b"avif", b"avis"})
HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
HEIF_EXTRA = "pip install 'retinakit[heif]'"


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file into a ``(H, W, 3)`` uint8 BGR array; raises :class:`ImageError`.

    ``"-"`` reads one image from standard input. HEIC/HEIF photos need the ``heif`` extra
    (pillow-heif); AVIF decodes with OpenCV where its build can, else with Pillow (the same extra).

    >>> import cv2, numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "grey.png")
    >>> _ = cv2.imwrite(path, np.full((48, 64), 128, np.uint8))
    >>> read_image(path).shape, read_image(path).dtype
    ((48, 64, 3), dtype('uint8'))
    """
    name = os.fspath(path)
    if name == STDIN:
        return decode_image(np.frombuffer(sys.stdin.buffer.read(), np.uint8), "standard input")
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
    return decode_image(data, name)


def decode_image(data: np.ndarray, name: str) -> np.ndarray:
    """Decode the bytes of an image file (a uint8 array) into BGR; ``name`` is used in errors."""
    if data.size == 0:
        raise ImageError(name, "empty file")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is not None:
        return image
    kind = heif_kind(data[:64].tobytes())
    if kind is not None:
        return _decode_with_pillow(data.tobytes(), name, kind)
    raise ImageError(name, "not a decodable image (unknown format or corrupt data)")


def heif_kind(head: bytes) -> str | None:
    """``"AVIF"`` or ``"HEIC/HEIF"`` from a file's first bytes (its ``ftyp`` box), else None."""
    if len(head) < 16 or head[4:8] != b"ftyp":
        return None
    size = int.from_bytes(head[:4], "big")
    brands = {head[8:12]} | {head[i : i + 4] for i in range(16, min(size, len(head)) - 3, 4)}
    if brands & AVIF_BRANDS:
        return "AVIF"
    return "HEIC/HEIF" if brands & HEIF_BRANDS else None


def _decode_with_pillow(data: bytes, name: str, kind: str) -> np.ndarray:
    """HEIC/HEIF through pillow-heif, AVIF through Pillow; EXIF orientation applied (as OpenCV does for JPEG)."""
    import io

    try:
        from PIL import Image, ImageOps, features
    except ImportError:
        raise ImageError(name, f"{kind} image: reading it needs the heif extra: {HEIF_EXTRA}") from None
    if kind == "HEIC/HEIF":
        try:
            import pillow_heif
        except ImportError:
            raise ImageError(name, f"{kind} image: reading it needs the heif extra: {HEIF_EXTRA}") from None
        pillow_heif.register_heif_opener()
    elif not features.check("avif"):
        raise ImageError(name, f"AVIF image: this Pillow cannot read AVIF (Pillow >= 11.3 can): {HEIF_EXTRA}")
    try:
        with Image.open(io.BytesIO(data)) as opened:
            rgb = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))
    except Exception as exc:  # Pillow's decoders raise several kinds
        raise ImageError(name, f"not a decodable {kind} image ({exc})") from None
    return np.ascontiguousarray(rgb[:, :, ::-1])


def as_array(image: Any) -> np.ndarray:
    """A numpy array as it is, a path read as BGR (:func:`read_image`), a PIL image as RGB.

    For functions that give back an image in the caller's channel order (aligned crops, anonymized copies).
    """
    if isinstance(image, np.ndarray):
        return image
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    return np.asarray(image.convert("RGB"))


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image file, read from its JPEG, PNG, WebP or BMP header (decoding other formats).

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
    header = image_header(head)
    if header is None:
        height, width = read_image(name).shape[:2]
        return width, height
    return header.width, header.height
