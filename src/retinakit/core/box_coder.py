"""Box and landmark coding relative to anchors, shared by the loss (encode) and inference (decode).

The RetinaFace / SSD parameterisation: for an anchor ``(cx_a, cy_a, w_a, h_a)`` and variances
``(v_c, v_s)``, a box ``(cx, cy, w, h)`` is coded as
``((cx - cx_a) / (v_c w_a), (cy - cy_a) / (v_c h_a), log(w / w_a) / v_s, log(h / h_a) / v_s)``
and a landmark point ``(x, y)`` as ``((x - cx_a) / (v_c w_a), (y - cy_a) / (v_c h_a))``.

The functions work on numpy arrays and on torch tensors alike (torch is never imported here), so
training and every inference backend use the very same formulas.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from retinakit.core.boxes import array_module, concat_last

#: Largest size change decoded, ``exp(v_s * delta) <= 1000 / 16``, as torchvision clamps.
MAX_LOG_SCALE = math.log(1000.0 / 16)


def decode_boxes(deltas: Any, anchors: Any, variances: tuple[float, float]) -> Any:
    """Boxes ``(..., 4)`` xyxy from deltas ``(..., 4)`` and anchors ``(..., 4)`` cx, cy, w, h."""
    xp = array_module(deltas)
    v_c, v_s = variances
    centre = anchors[..., :2] + deltas[..., :2] * v_c * anchors[..., 2:]
    log_scale = deltas[..., 2:] * v_s
    log_scale = xp.clip(log_scale, None, MAX_LOG_SCALE) if xp is np else log_scale.clamp(max=MAX_LOG_SCALE)
    size = anchors[..., 2:] * xp.exp(log_scale)
    return concat_last(xp, [centre - size / 2, centre + size / 2])


def encode_boxes(boxes: Any, anchors: Any, variances: tuple[float, float]) -> Any:
    """Deltas ``(..., 4)`` of xyxy boxes ``(..., 4)`` relative to anchors ``(..., 4)``."""
    xp = array_module(boxes)
    v_c, v_s = variances
    size = boxes[..., 2:] - boxes[..., :2]
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2
    d_centre = (centre - anchors[..., :2]) / (v_c * anchors[..., 2:])
    d_size = xp.log(size / anchors[..., 2:]) / v_s
    return concat_last(xp, [d_centre, d_size])


def decode_landmarks(deltas: Any, anchors: Any, variances: tuple[float, float]) -> Any:
    """Landmarks ``(..., K, 2)`` from deltas ``(..., 2K)`` and anchors ``(..., 4)``."""
    v_c = variances[0]
    points = deltas.reshape(*deltas.shape[:-1], -1, 2)
    return anchors[..., None, :2] + points * v_c * anchors[..., None, 2:]


def encode_landmarks(points: Any, anchors: Any, variances: tuple[float, float]) -> Any:
    """Deltas ``(..., 2K)`` of landmarks ``(..., K, 2)`` relative to anchors ``(..., 4)``."""
    v_c = variances[0]
    deltas = (points - anchors[..., None, :2]) / (v_c * anchors[..., None, 2:])
    return deltas.reshape(*deltas.shape[:-2], -1)
