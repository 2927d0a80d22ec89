"""Anchor generation: square anchors centred on every feature-map cell of every pyramid level."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from retinakit.config import AnchorConfig


def feature_map_size(height: int, width: int, stride: int) -> tuple[int, int]:
    """Size of the feature map of ``stride`` for a ``height`` x ``width`` input.

    Every down-sampling layer of the supported backbones (3x3 or 1x1, stride 2, "same" padding)
    gives ``ceil(size / 2)``, so a level of stride ``s`` is ``ceil(size / s)`` cells.
    """
    return math.ceil(height / stride), math.ceil(width / stride)


def generate_anchors(config: AnchorConfig, height: int, width: int) -> np.ndarray:
    """Anchors for an input of ``height`` x ``width`` pixels as ``(A, 4)`` float32 ``cx, cy, w, h``.

    Order (the order the heads emit predictions): level, then row, then column, then anchor size.
    Centres sit at ``(col + 0.5) * stride, (row + 0.5) * stride`` in input pixels.
    """
    return _cached_anchors(config, int(height), int(width))


@lru_cache(maxsize=32)
def _cached_anchors(config: AnchorConfig, height: int, width: int) -> np.ndarray:
    levels = []
    for stride, sizes in zip(config.strides, config.sizes, strict=True):
        rows, cols = feature_map_size(height, width, stride)
        cy, cx = np.meshgrid(
            (np.arange(rows, dtype=np.float64) + 0.5) * stride,
            (np.arange(cols, dtype=np.float64) + 0.5) * stride,
            indexing="ij",
        )
        k = len(sizes)
        centres = np.stack([cx.ravel(), cy.ravel()], axis=1)  # (rows*cols, 2)
        centres = np.repeat(centres, k, axis=0)
        side = np.tile(np.asarray(sizes, dtype=np.float64), rows * cols)[:, None]
        levels.append(np.concatenate([centres, side, side], axis=1))
    anchors = np.concatenate(levels, axis=0).astype(np.float32)
    anchors.setflags(write=False)
    return anchors
