"""Vectorised box operations: format conversion, area and pairwise IoU for numpy arrays and torch
tensors alike (the array's own library is used; torch is never imported here), and NMS (numpy).

Formats: ``xyxy`` (corners, retinakit's convention), ``xywh`` (top-left corner and size, WIDER and
COCO files), ``cxcywh`` (centre and size, anchors). Coordinates are continuous float pixels.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

import numpy as np

BoxFormat = Literal["xyxy", "xywh", "cxcywh"]


def array_module(array: Any) -> Any:
    """numpy or torch, whichever ``array`` belongs to."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(array, torch.Tensor):
        return torch
    return np


def concat_last(xp: Any, parts: list[Any]) -> Any:
    """Concatenate along the last axis with numpy or torch."""
    return xp.concatenate(parts, axis=-1) if xp is np else xp.cat(parts, dim=-1)


def _clip_min0(xp: Any, values: Any) -> Any:
    return np.clip(values, 0, None) if xp is np else values.clamp(min=0)


def box_convert(boxes: Any, in_fmt: BoxFormat, out_fmt: BoxFormat) -> Any:
    """Boxes ``(..., 4)`` from ``in_fmt`` to ``out_fmt`` (``xyxy``, ``xywh``, ``cxcywh``); numpy or torch."""
    formats = ("xyxy", "xywh", "cxcywh")
    if in_fmt not in formats or out_fmt not in formats:
        raise ValueError(f"box formats are {formats}, got {in_fmt!r} -> {out_fmt!r}")
    if in_fmt == out_fmt:
        return boxes
    xp = array_module(boxes)
    a, b = boxes[..., :2], boxes[..., 2:4]
    if in_fmt == "xywh":
        xy1, xy2 = a, a + b
    elif in_fmt == "cxcywh":
        xy1, xy2 = a - b / 2, a + b / 2
    else:
        xy1, xy2 = a, b
    if out_fmt == "xyxy":
        return concat_last(xp, [xy1, xy2])
    if out_fmt == "xywh":
        return concat_last(xp, [xy1, xy2 - xy1])
    return concat_last(xp, [(xy1 + xy2) / 2, xy2 - xy1])


def box_area(boxes: Any) -> Any:
    """Areas ``(N,)`` of xyxy boxes ``(N, 4)``; degenerate boxes have area 0."""
    wh = _clip_min0(array_module(boxes), boxes[:, 2:4] - boxes[:, 0:2])
    return wh[:, 0] * wh[:, 1]


def box_intersection(a: Any, b: Any) -> Any:
    """Pairwise intersection areas ``(N, M)`` of xyxy boxes ``a (N, 4)`` and ``b (M, 4)`` (numpy or torch)."""
    xp = array_module(a)
    lt = xp.maximum(a[:, None, :2], b[None, :, :2])
    rb = xp.minimum(a[:, None, 2:4], b[None, :, 2:4])
    wh = _clip_min0(xp, rb - lt)
    return wh[..., 0] * wh[..., 1]


def box_iou(a: Any, b: Any) -> Any:
    """Pairwise IoU ``(N, M)`` of xyxy boxes ``a (N, 4)`` and ``b (M, 4)`` (continuous coordinates).

    numpy arrays or torch tensors (differentiable); pairs whose union is empty have IoU 0.
    """
    xp = array_module(a)
    inter = box_intersection(a, b)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    if xp is np:
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    return inter / union.clamp(min=1e-9)


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU ``(M,)`` of one xyxy box ``(4,)`` with boxes ``(M, 4)``."""
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = w * h
    union = box_area(box[None])[0] + box_area(boxes) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, highest score first.

    A box is suppressed when its IoU with a kept, higher-scoring box is above ``iou_threshold``.
    Each round suppresses a whole row of the IoU against the current best box at once.
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    boxes = boxes[order].astype(np.float32, copy=False)
    keep = []
    alive = np.arange(len(boxes))
    while alive.size:
        i = alive[0]
        keep.append(i)
        rest = alive[1:]
        if rest.size == 0:
            break
        alive = rest[iou_one_to_many(boxes[i], boxes[rest]) <= iou_threshold]
    return order[np.asarray(keep, dtype=np.int64)]
