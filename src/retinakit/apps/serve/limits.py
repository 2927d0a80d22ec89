"""Request limits checked before any decoding: upload size, image format, pixel counts.

:func:`image_header` reads the format and the width and height from the first bytes of a JPEG, PNG,
WebP or BMP file, so that a decompression bomb (a small file that decodes to a huge image) is refused
before the decoder allocates anything; :func:`pass_pixels` gives, from that header, the network-input
pixels of the largest forward pass a detector will run on the image (its resize policy and TTA passes),
which the service bounds too. :class:`BodyLimit` is an ASGI middleware that stops reading a request body
past a byte limit, whether or not the client sent a Content-Length.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from retinakit.apps.serve.errors import ApiError
from retinakit.inference.preprocess import ResizePolicy
from retinakit.inference.tta import TTAConfig

#: Formats whose size :func:`image_header` can read (and so the only ones the service accepts).
FORMATS = ("jpeg", "png", "webp", "bmp")

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_NO_LENGTH = {0x01, *range(0xD0, 0xD9)}  # TEM, RST0-7, SOI


class LimitError(ApiError, ValueError):
    """A request refused by a limit: ``status`` (HTTP), ``code`` (machine-readable) and the message."""


@dataclass(frozen=True)
class ImageHeader:
    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def sniff_format(data: bytes) -> str | None:
    """The format named by the file's signature (its first bytes), or None for any other data."""
    if data.startswith(b"\xff\xd8"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith(b"BM"):
        return "bmp"
    return None


def image_header(data: bytes) -> ImageHeader | None:
    """Format, width and height read from the file header; None when the format is not one of :data:`FORMATS`
    or the header is truncated or invalid."""
    try:
        if data.startswith(b"\xff\xd8"):
            size = _jpeg_size(data)
            fmt = "jpeg"
        elif data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            size = struct.unpack(">II", data[16:24])
            fmt = "png"
        elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            size = _webp_size(data)
            fmt = "webp"
        elif data.startswith(b"BM"):
            size = _bmp_size(data)
            fmt = "bmp"
        else:
            return None
    except (struct.error, IndexError):
        return None
    if size is None or size[0] <= 0 or size[1] <= 0:
        return None
    return ImageHeader(fmt, int(size[0]), int(size[1]))


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the first start-of-frame segment, walking the marker segments."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _JPEG_NO_LENGTH:
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        if length < 2:
            return None
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":  # lossy: frame tag (3 bytes), start code 9d 01 2a, 14-bit sizes
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":  # lossless: signature 0x2f, then 14-bit width-1 and height-1
        if data[20] != 0x2F:
            return None
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: 24-bit canvas width-1 and height-1
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    (header_size,) = struct.unpack("<I", data[14:18])
    if header_size == 12:  # OS/2 BITMAPCOREHEADER
        return struct.unpack("<HH", data[18:22])
    if header_size < 40:
        return None
    width, height = struct.unpack("<ii", data[18:26])
    return width, abs(height)


def check_image(data: bytes, max_pixels: int) -> ImageHeader:
    """The header of an upload that may be decoded; raises :class:`LimitError` otherwise."""
    if not data:
        raise LimitError(400, "missing_image", "no image in the request body")
    header = image_header(data)
    if header is None:
        fmt = sniff_format(data)
        if fmt is not None:  # the right signature, then a header cut short or broken
            raise LimitError(400, "bad_image", f"the {fmt.upper()} header is truncated or invalid (no image size)")
        raise LimitError(415, "unsupported_image", f"not a {', '.join(FORMATS[:-1])} or {FORMATS[-1]} image")
    if header.pixels > max_pixels:
        raise LimitError(
            413,
            "too_many_pixels",
            f"image is {header.width} x {header.height} = {header.pixels} pixels; the limit is {max_pixels}",
        )
    return header


def _resized_pixels(height: int, width: int, policy: ResizePolicy) -> int:
    factor = policy.scale(height, width)
    if factor == 1.0:
        return height * width
    return max(1, round(width * factor)) * max(1, round(height * factor))


def pass_pixels(header: ImageHeader, resize: ResizePolicy, tta: TTAConfig) -> int:
    """Network-input pixels of the largest forward pass on this image: its resized size, or with TTA the
    largest scale's (twice that with the flip, which shares the pass), as :class:`~retinakit.Detector` runs it."""
    h, w = header.height, header.width
    if not tta.enabled:
        return _resized_pixels(h, w, resize)
    policies = [ResizePolicy(short_side=s, max_side=tta.max_side) for s in tta.scales] if tta.scales else [resize]
    return max(_resized_pixels(h, w, p) for p in policies) * (2 if tta.flip else 1)


def check_pass(header: ImageHeader, pixels: int, limit: int) -> None:
    """Refuse (413) an image whose largest forward pass needs more than ``limit`` network-input pixels."""
    if pixels > limit:
        raise LimitError(
            413,
            "too_many_pixels",
            f"a {header.width} x {header.height} image with these options needs a forward pass of {pixels} pixels; "
            f"the server's limit is {limit} (ask a smaller max_side, or no tta)",
        )


def check_crops(faces: int, size: int, limit: int) -> None:
    """Refuse (413) a response whose aligned crops would hold more than ``limit`` pixels in all."""
    if faces * size * size > limit:
        raise LimitError(
            413,
            "too_many_crops",
            f"{faces} crops of {size} x {size} = {faces * size * size} pixels; the server's limit is {limit} "
            "(ask a smaller crop_size or a higher threshold)",
        )


# ----------------------------------------------------------------------------- body size

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(LimitError):
    def __init__(self, limit: int) -> None:
        message = f"request body is larger than {limit} bytes"
        super().__init__(413, "payload_too_large", message, {"Connection": "close"})


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes raises :class:`BodyTooLarge` while it is read.

    A Content-Length over the limit is refused before reading; a chunked body is counted as it arrives.
    ``overhead`` allows for multipart framing around an upload of ``limit`` bytes.
    """

    def __init__(self, app: ASGIApp, limit: int, overhead: int = 64 * 1024) -> None:
        self.app = app
        self.limit = limit
        self.total_limit = limit + overhead

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.total_limit:
                scope["retinakit.body_too_large"] = self.limit
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if "retinakit.body_too_large" in scope:
                raise BodyTooLarge(self.limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.total_limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, limited_receive, send)
