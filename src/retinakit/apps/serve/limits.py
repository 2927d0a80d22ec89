"""Request limits checked before any decoding: upload size, image format, pixel counts.

:func:`image_header` reads the format and the width and height from the first bytes of a JPEG, PNG,
WebP or BMP file, so that a decompression bomb (a small file that decodes to a huge image) is refused
before the decoder allocates anything; :func:`pass_pixels` gives, from that header, the network-input
pixels of the largest forward pass a detector will run on the image (its resize policy and TTA passes),
which the service bounds too. :class:`BodyLimit` is an ASGI middleware that stops reading a request body
past a byte limit, whether or not the client sent a Content-Length.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from retinakit.apps.serve.errors import ApiError
from retinakit.core.headers import FORMATS, ImageHeader, image_header, sniff_format
from retinakit.inference.preprocess import ResizePolicy
from retinakit.inference.tta import TTAConfig


class LimitError(ApiError, ValueError):
    """A request refused by a limit: ``status`` (HTTP), ``code`` (machine-readable) and the message."""


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
