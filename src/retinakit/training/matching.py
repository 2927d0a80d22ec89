"""Anchor matching: which ground-truth face (if any) each anchor is trained to predict (PyTorch)."""

from __future__ import annotations

import torch

from retinakit.core.boxes import box_iou

#: Sentinels of :meth:`Matcher.__call__`: IoU below the negative threshold (background) ...
BELOW_LOW_THRESHOLD = -1
#: ... and between the two thresholds (ignored by the loss).
BETWEEN_THRESHOLDS = -2


class Matcher:
    """IoU >= ``positive`` -> that face; IoU < ``negative`` -> background; else ignored.

    Every ground-truth face also keeps the anchor(s) that overlap it best, so that small or oddly
    shaped faces get a positive anchor (``keep_best=True``) — only if that best IoU is at least
    ``min_best_iou`` (biubug6 uses 0.2, so faces far smaller than any anchor force nothing).
    """

    def __init__(self, positive: float, negative: float, keep_best: bool = True, min_best_iou: float = 0.0) -> None:
        if negative > positive:
            raise ValueError(f"negative threshold {negative} above positive threshold {positive}")
        self.positive = positive
        self.negative = negative
        self.keep_best = keep_best
        self.min_best_iou = min_best_iou

    def __call__(self, gt_boxes: torch.Tensor, anchors_xyxy: torch.Tensor) -> torch.Tensor:
        """``(A,)`` int64: index of the matched face, or one of the two sentinels."""
        matches = torch.full((len(anchors_xyxy),), BELOW_LOW_THRESHOLD, dtype=torch.int64, device=anchors_xyxy.device)
        if len(gt_boxes) == 0:
            return matches
        iou = box_iou(gt_boxes, anchors_xyxy)  # (G, A)
        best_iou, best_gt = iou.max(dim=0)
        matches = best_gt.clone()
        matches[best_iou < self.positive] = BETWEEN_THRESHOLDS
        matches[best_iou < self.negative] = BELOW_LOW_THRESHOLD
        if self.keep_best:
            # anchors that are the best for some face (ties included) take that face
            best_for_gt = iou.max(dim=1, keepdim=True).values
            forced = (iou == best_for_gt) & (best_for_gt > 0) & (best_for_gt >= self.min_best_iou)
            gt_idx, anchor_idx = torch.nonzero(forced, as_tuple=True)
            matches[anchor_idx] = gt_idx
        return matches
