"""Anonymization masks: blur, pixelate or paint over face regions of a numpy image.

:func:`anonymize_image` hides the faces of ``(N, 4)`` xyxy boxes; :func:`hide_mask` gives the pixels it
changes. Used by ``retinakit anonymize`` (:mod:`retinakit.apps.anonymize`) and ``Faces.anonymize``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

Method = Literal["blur", "pixelate", "solid"]
Shape = Literal["ellipse", "rectangle"]


@dataclass(frozen=True)
class AnonymizeConfig:
    """How a face is hidden.

    ``method``: ``blur`` (Gaussian), ``pixelate`` or ``solid`` (filled with ``color``, in the image's
    channel order). ``shape``: ``ellipse`` (inscribed in the enlarged box) or ``rectangle``.
    ``margin``: fraction of the box width / height added on each side (0.25: the ellipse still
    contains the corners of the face box, which an ellipse inscribed in the box itself would
    leave visible). ``blur_sigma``: Gaussian sigma as a fraction of the region's longer side.
    ``blocks``: pixelation cells across the region's longer side.
    """

    method: Method = "blur"
    shape: Shape = "ellipse"
    margin: float = 0.25
    blur_sigma: float = 0.125
    blocks: int = 8
    color: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self) -> None:
        if self.method not in ("blur", "pixelate", "solid") or self.shape not in ("ellipse", "rectangle"):
            raise ValueError(f"unknown method {self.method!r} or shape {self.shape!r}")
        if self.margin < 0 or self.blur_sigma <= 0 or self.blocks < 1:
            raise ValueError("need margin >= 0, blur_sigma > 0 and blocks >= 1")


def face_regions(boxes: np.ndarray, margin: float) -> np.ndarray:
    """``(N, 4)`` xyxy boxes enlarged by ``margin`` times their width / height on each side."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    pad = (boxes[:, 2:4] - boxes[:, 0:2]) * margin
    return np.concatenate([boxes[:, 0:2] - pad, boxes[:, 2:4] + pad], axis=1)


def _pixel_window(region: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
    """Integer pixel window ``x0, y0, x1, y1`` (exclusive ends) covering ``region``, clipped to the image."""
    x0, y0 = max(0, int(np.floor(region[0]))), max(0, int(np.floor(region[1])))
    x1, y1 = min(width, int(np.ceil(region[2]))), min(height, int(np.ceil(region[3])))
    return x0, y0, x1, y1


def _shape_mask(region: np.ndarray, window: tuple[int, int, int, int], shape: Shape) -> np.ndarray:
    """Bool mask of the window: every pixel for a rectangle, pixels whose centre is inside the ellipse."""
    x0, y0, x1, y1 = window
    if shape == "rectangle":
        return np.ones((y1 - y0, x1 - x0), dtype=bool)
    cx, cy = (region[0] + region[2]) / 2, (region[1] + region[3]) / 2
    ax, ay = max((region[2] - region[0]) / 2, 0.5), max((region[3] - region[1]) / 2, 0.5)
    xs = (np.arange(x0, x1) + 0.5 - cx) / ax
    ys = (np.arange(y0, y1) + 0.5 - cy) / ay
    return ys[:, None] ** 2 + xs[None, :] ** 2 <= 1.0


def hide_mask(boxes: np.ndarray, height: int, width: int, config: AnonymizeConfig | None = None) -> np.ndarray:
    """``(height, width)`` bool: the pixels :func:`anonymize_image` changes for these boxes."""
    config = config or AnonymizeConfig()
    mask = np.zeros((height, width), dtype=bool)
    for region in face_regions(boxes, config.margin):
        window = _pixel_window(region, height, width)
        x0, y0, x1, y1 = window
        if x1 > x0 and y1 > y0:
            mask[y0:y1, x0:x1] |= _shape_mask(region, window, config.shape)
    return mask


def _hidden(crop: np.ndarray, config: AnonymizeConfig) -> np.ndarray:
    """The crop with its content destroyed by ``config.method`` (same shape and dtype)."""
    h, w = crop.shape[:2]
    if config.method == "solid":
        out = np.empty_like(crop)
        out[...] = np.asarray(config.color, dtype=crop.dtype)[: crop.shape[2]] if crop.ndim == 3 else config.color[0]
        return out
    if config.method == "pixelate":
        cells = max(1, config.blocks)
        small_w, small_h = max(1, round(cells * w / max(h, w))), max(1, round(cells * h / max(h, w)))
        small = cv2.resize(crop, (small_w, small_h), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    # Gaussian blur with sigma = blur_sigma * longer side, computed at most 64 px across (a large
    # blur keeps no detail finer than that), then enlarged back smoothly
    factor = min(1.0, 64.0 / max(h, w))
    small = crop if factor == 1.0 else cv2.resize(crop, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    sigma = config.blur_sigma * max(small.shape[:2])
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)
    return small if factor == 1.0 else cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def anonymize_image(image: np.ndarray, boxes: np.ndarray, config: AnonymizeConfig | None = None) -> np.ndarray:
    """A copy of ``image`` (``(H, W)`` or ``(H, W, C)`` uint8) with the faces in ``boxes`` ``(N, 4)`` hidden.

    Only the pixels of :func:`hide_mask` change. The effect of each face is computed from that
    face's region alone, so nothing of one face leaks into another's.
    """
    config = config or AnonymizeConfig()
    out = image.copy()
    height, width = image.shape[:2]
    for region in face_regions(boxes, config.margin):
        window = _pixel_window(region, height, width)
        x0, y0, x1, y1 = window
        if x1 <= x0 or y1 <= y0:
            continue
        mask = _shape_mask(region, window, config.shape)
        view = out[y0:y1, x0:x1]
        view[mask] = _hidden(view, config)[mask]
    return out


#: The spellings of earlier releases, kept for one release.
AnonymiseConfig = AnonymizeConfig
anonymise_image = anonymize_image
