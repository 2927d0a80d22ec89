"""Vectorised box operations on xyxy float boxes (numpy): area, pairwise IoU, NMS."""

from __future__ import annotations

import numpy as np


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Areas ``(N,)`` of xyxy boxes ``(N, 4)``; degenerate boxes have area 0."""
    wh = np.clip(boxes[:, 2:4] - boxes[:, 0:2], 0, None)
    return wh[:, 0] * wh[:, 1]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU ``(N, M)`` of xyxy boxes ``a (N, 4)`` and ``b (M, 4)`` (continuous coordinates)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:4], b[None, :, 2:4])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


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
