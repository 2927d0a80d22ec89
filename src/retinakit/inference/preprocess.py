"""Image input for the network: colour order, resizing, normalisation and batching with padding.

Internally every image is a ``(H, W, 3)`` uint8 array in **BGR** order (OpenCV's order, so a decoded
file needs no conversion). The model's :class:`~retinakit.config.InputConfig` then says which order,
mean and std the network wants.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np

from retinakit.config import InputConfig
from retinakit.core.images import read_image
from retinakit.errors import ImageError

ColorOrder = Literal["rgb", "bgr"]
ImageInput = str | os.PathLike | np.ndarray | Any  # Any: a PIL image


def to_bgr(image: ImageInput, color: ColorOrder | None = None) -> np.ndarray:
    """Any supported input as a ``(H, W, 3)`` uint8 BGR array.

    Paths are decoded; PIL images are converted (16-bit and float modes by the array rule below);
    numpy arrays must be ``(H, W)`` grayscale or ``(H, W, 3|4)`` with ``color`` saying whether the
    channels are ``"rgb"`` or ``"bgr"`` (an alpha channel is dropped). Values: see :func:`to_uint8`.
    """
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if not isinstance(image, np.ndarray):
        if hasattr(image, "convert") and hasattr(image, "size"):  # PIL.Image.Image
            if image.mode in ("I", "F") or image.mode.startswith("I;16"):  # 16/32-bit or float: the array rule
                return to_bgr(np.asarray(image))
            rgb = np.asarray(image.convert("RGB"))
            return np.ascontiguousarray(rgb[:, :, ::-1])
        raise ImageError(repr(type(image).__name__), "expected a path, a numpy array or a PIL image")
    array = image
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError("array", f"expected shape (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageError("array", f"empty image of shape {array.shape}")
    if array.dtype != np.uint8:
        array = to_uint8(array)
    if array.ndim == 2:
        return cv2.cvtColor(array, cv2.COLOR_GRAY2BGR)
    if color is None:
        raise ImageError("array", "a colour array needs color='rgb' or color='bgr' (PIL/skimage give RGB, OpenCV BGR)")
    if color not in ("rgb", "bgr"):
        raise ImageError("array", f"color must be 'rgb' or 'bgr', got {color!r}")
    array = array[:, :, :3]
    if color == "rgb":
        array = array[:, :, ::-1]
    return np.ascontiguousarray(array)


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Pixel values of any numeric dtype as uint8 0-255, by one documented rule; never a silent guess.

    - ``uint8``: as is. ``uint16`` (16-bit PNG/TIFF, PIL ``I;16``): ``value >> 8`` (0-65535 -> 0-255).
    - floats: NaN or infinity is an error; values all in ``[0, 1]`` (matplotlib, scikit-image) are
      multiplied by 255; otherwise they must lie in ``[0, 255]``. Rounded to the nearest integer.
    - other integers (``int32`` ...): must lie in ``[0, 255]``.
    - anything else (bool, complex, object ...), or values outside these ranges: :class:`ImageError`.
    """
    dtype = array.dtype
    if dtype == np.uint16:
        return (array >> 8).astype(np.uint8)
    if np.issubdtype(dtype, np.floating):
        if not np.isfinite(array).all():
            raise ImageError("array", f"{dtype} image contains NaN or infinity")
        low, high = float(array.min()), float(array.max())
        if low >= 0 and high <= 1:
            return np.rint(array * np.float32(255)).astype(np.uint8)
        if low < 0 or high > 255:
            raise ImageError("array", f"{dtype} values must lie in [0, 1] or [0, 255], got [{low:g}, {high:g}]")
        return np.rint(array).astype(np.uint8)
    if np.issubdtype(dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise ImageError(
                "array", f"{dtype} values must lie in [0, 255] (only uint16 is rescaled), got [{low}, {high}]"
            )
        return array.astype(np.uint8)
    raise ImageError("array", f"unsupported dtype {dtype} (use uint8, uint16, another integer type or a float)")


@dataclass(frozen=True)
class ImageFrame:
    """Where one image sits in a network input: its original size and the resize factors.

    A point ``(x, y)`` of the network input maps to ``(x / scale_x, y / scale_y)`` in the original.
    """

    height: int
    width: int
    scale_x: float = 1.0
    scale_y: float = 1.0


@dataclass(frozen=True)
class ResizePolicy:
    """How an image is resized before the network.

    Default (both ``None``): original size, which small faces need. ``short_side``: scale so the
    short side has this many pixels (up or down). ``max_side``: then, if the long side would exceed
    this, scale down so it fits. Only ``max_side``: shrink large images, never enlarge.
    """

    short_side: int | None = None
    max_side: int | None = None

    def __post_init__(self) -> None:
        for name in ("short_side", "max_side"):
            value = getattr(self, name)
            if value is not None and value < 16:
                raise ValueError(f"{name} must be >= 16 pixels, got {value}")

    def scale(self, height: int, width: int) -> float:
        """The resize factor for an image of ``height`` x ``width``."""
        factor = 1.0
        if self.short_side is not None:
            factor = self.short_side / min(height, width)
        if self.max_side is not None and max(height, width) * factor > self.max_side:
            factor = self.max_side / max(height, width)
        return factor


def resize(image: np.ndarray, policy: ResizePolicy) -> tuple[np.ndarray, ImageFrame]:
    """Resize a BGR image by ``policy``; returns it with its :class:`ImageFrame`."""
    h, w = image.shape[:2]
    return resize_by(image, policy.scale(h, w))


def resize_by(image: np.ndarray, factor: float) -> tuple[np.ndarray, ImageFrame]:
    """Resize a BGR image by ``factor`` (bilinear); returns it with its :class:`ImageFrame`."""
    h, w = image.shape[:2]
    if factor == 1.0:
        return image, ImageFrame(h, w)
    new_w, new_h = max(1, round(w * factor)), max(1, round(h * factor))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return resized, ImageFrame(h, w, scale_x=new_w / w, scale_y=new_h / h)


def normalize_into(out: np.ndarray, image: np.ndarray, config: InputConfig) -> None:
    """Write BGR uint8 ``image (H, W, 3)`` normalised for the network into ``out[:, :H, :W]`` (CHW)."""
    h, w = image.shape[:2]
    channels = image if config.channel_order == "BGR" else image[:, :, ::-1]
    mean = np.asarray(config.mean, dtype=np.float32)
    std = np.asarray(config.std, dtype=np.float32)
    for c in range(3):
        plane = out[c, :h, :w]
        np.subtract(channels[:, :, c], mean[c], out=plane, casting="unsafe")
        if std[c] != 1.0:
            plane /= std[c]


def make_batch(images: Sequence[np.ndarray], config: InputConfig, multiple: int = 1) -> np.ndarray:
    """Stack BGR images into one ``(B, 3, H, W)`` float32 network input.

    Mixed sizes are padded at the bottom and right to the largest size (rounded up to ``multiple``);
    padding is zero after normalisation, i.e. the mean colour. Anchors of the padded size cover each
    image's own anchors at the same positions, so one decode serves the whole batch.
    """
    height = max(im.shape[0] for im in images)
    width = max(im.shape[1] for im in images)
    height = -(-height // multiple) * multiple
    width = -(-width // multiple) * multiple
    batch = np.zeros((len(images), 3, height, width), dtype=np.float32)
    for i, image in enumerate(images):
        normalize_into(batch[i], image, config)
    return batch


def make_uint8_batch(images: Sequence[np.ndarray], config: InputConfig) -> np.ndarray:
    """Stack BGR images into one ``(B, H, W, 3)`` uint8 batch for a graph that preprocesses itself.

    The input of models made by :func:`retinakit.onnx.fused_input.fuse_preprocessing`. Mixed sizes
    are padded at the bottom and right with the mean colour (rounded), which the graph turns into
    (almost) zero as :func:`make_batch` pads. One image of its own size is passed without a copy.
    """
    if len(images) == 1:
        return np.ascontiguousarray(images[0])[None]
    height = max(im.shape[0] for im in images)
    width = max(im.shape[1] for im in images)
    bgr_mean = config.mean if config.channel_order == "BGR" else config.mean[::-1]
    batch = np.empty((len(images), height, width, 3), dtype=np.uint8)
    batch[:] = np.clip(np.round(np.asarray(bgr_mean)), 0, 255).astype(np.uint8)
    for i, image in enumerate(images):
        batch[i, : image.shape[0], : image.shape[1]] = image
    return batch


def plan_batches(
    shapes: Sequence[tuple[int, int]], max_images: int, max_pixels: int, max_padding: float = 1 / 3
) -> list[list[int]]:
    """Group images of ``(height, width)`` ``shapes`` into forward passes; returns lists of indices.

    Images are taken largest first (area, then height and width), so similar sizes meet. A pass
    holds at most ``max_images`` images and at most ``max_pixels`` padded input pixels
    (``images x max height x max width``), and pads no image by more than ``max_padding`` of its own
    area. An image above the pixel budget runs alone: the budget bounds memory, never refuses.
    """
    order = sorted(range(len(shapes)), key=lambda i: (shapes[i][0] * shapes[i][1], shapes[i]), reverse=True)
    groups: list[list[int]] = []
    height = width = 0
    for i in order:
        h, w = shapes[i]
        if groups:
            group = groups[-1]
            ph, pw = max(height, h), max(width, w)
            fits = len(group) < max_images and (len(group) + 1) * ph * pw <= max_pixels
            # the new image is the smallest so far: its padding is the largest of the group
            if fits and ph * pw <= (1 + max_padding) * h * w:
                group.append(i)
                height, width = ph, pw
                continue
        groups.append([i])
        height, width = h, w
    return groups
