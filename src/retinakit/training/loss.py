"""The multi-task loss of RetinaFace: softmax classification with hard-negative mining (OHEM),
smooth-L1 on encoded boxes and on encoded landmarks, on positive anchors only (PyTorch).

Boxes and landmarks are encoded with :mod:`retinakit.inference.box_coder`, the very coder inference
decodes with. Each loss is returned by name; an image with no faces contributes exactly zero box
and landmark loss, and only mined negatives to the classification loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from retinakit.inference.box_coder import encode_boxes, encode_landmarks
from retinakit.inference.boxes import box_convert
from retinakit.inference.outputs import RawOutputs
from retinakit.training.matching import BETWEEN_THRESHOLDS, Matcher


@dataclass(frozen=True)
class LossConfig:
    """Matching thresholds, OHEM ratio and loss weights. ``min_negatives``: negatives mined in an
    image with no positive anchor (so images without faces still teach the background).
    ``min_best_iou``: a face forces its best anchor positive only if their IoU reaches this."""

    name: str
    positive_iou: float
    negative_iou: float
    neg_pos_ratio: int
    box_weight: float
    landmark_weight: float
    cls_weight: float = 1.0
    min_negatives: int = 16
    min_best_iou: float = 0.0


LOSS_PRESETS = {
    "paper": LossConfig("paper", 0.5, 0.3, 3, box_weight=0.25, landmark_weight=0.1),
    "biubug6": LossConfig("biubug6", 0.35, 0.35, 7, box_weight=2.0, landmark_weight=1.0, min_best_iou=0.2),
}


def get_loss_preset(name: str) -> LossConfig:
    try:
        return LOSS_PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown loss preset {name!r}; known: {', '.join(LOSS_PRESETS)}") from None


class MultiTaskLoss:
    """Callable: ``loss(raw, targets, anchors) -> {"cls", "box", "landmarks", "total"}``.

    ``raw``: network outputs ``(B, A, .)``; ``targets``: one dict per image with ``boxes (N, 4)``
    xyxy, ``landmarks (N, 5, 2)`` and ``has_landmarks (N,)`` in network-input pixels; ``anchors``:
    ``(A, 4)`` cx, cy, w, h for that input size.
    """

    def __init__(
        self,
        config: LossConfig,
        variances: tuple[float, float],
        count: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.config = config
        self.variances = variances
        # maps this batch's positive / landmark counts to the normalisers (the identity here;
        # summed over processes in distributed training, see retinakit.training.distributed)
        self.count = count or (lambda n: n)
        self.matcher = Matcher(config.positive_iou, config.negative_iou, min_best_iou=config.min_best_iou)

    def __call__(
        self, raw: RawOutputs, targets: list[dict[str, torch.Tensor]], anchors: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        deltas, logits, lm_deltas = raw.box_deltas.float(), raw.logits.float(), raw.landmark_deltas.float()
        batch, num_anchors = logits.shape[:2]
        anchors_xyxy = box_convert(anchors, "cxcywh", "xyxy")
        labels = torch.zeros(batch, num_anchors, dtype=torch.int64, device=logits.device)
        ignore = torch.zeros(batch, num_anchors, dtype=torch.bool, device=logits.device)
        box_t = torch.zeros_like(deltas)
        lm_t = torch.zeros_like(lm_deltas)
        lm_mask = torch.zeros(batch, num_anchors, dtype=torch.bool, device=logits.device)
        for i, target in enumerate(targets):
            matches = self.matcher(target["boxes"], anchors_xyxy)
            pos = matches >= 0
            ignore[i] = matches == BETWEEN_THRESHOLDS
            labels[i, pos] = 1
            if pos.any():
                idx = matches[pos]
                box_t[i, pos] = encode_boxes(target["boxes"][idx], anchors[pos], self.variances)
                lm_t[i, pos] = encode_landmarks(target["landmarks"][idx], anchors[pos], self.variances)
                lm_mask[i, pos] = target["has_landmarks"][idx]
        positive = labels == 1
        num_pos = positive.sum()

        # classification with OHEM: all positives, the hardest negatives at neg_pos_ratio : 1
        ce = F.cross_entropy(logits.reshape(-1, 2), labels.reshape(-1), reduction="none").reshape(batch, num_anchors)
        mining = ce.detach().clone()
        mining[positive | ignore] = -1.0  # never mine positives or ignored anchors
        pos_per_image = positive.sum(dim=1, keepdim=True)
        wanted = (pos_per_image * self.config.neg_pos_ratio).clamp(min=self.config.min_negatives)
        available = (mining >= 0).sum(dim=1, keepdim=True)
        wanted = torch.minimum(wanted, available)
        # stable: anchors with equal losses (e.g. on padding) are taken in index order, whatever the batch
        rank = mining.argsort(dim=1, descending=True, stable=True).argsort(dim=1)
        negative = (rank < wanted) & (mining >= 0)
        normaliser = self.count(num_pos).float().clamp(min=1)
        loss_cls = ce[positive | negative].sum() / normaliser

        if num_pos > 0:
            loss_box = F.smooth_l1_loss(deltas[positive], box_t[positive], reduction="sum") / normaliser
        else:
            loss_box = (deltas * 0.0).sum()
        num_lm = lm_mask.sum()
        lm_normaliser = self.count(num_lm).float().clamp(min=1)  # every process calls count, always
        if num_lm > 0:
            loss_lm = F.smooth_l1_loss(lm_deltas[lm_mask], lm_t[lm_mask], reduction="sum") / lm_normaliser
        else:
            loss_lm = (lm_deltas * 0.0).sum()
        c = self.config
        total = c.cls_weight * loss_cls + c.box_weight * loss_box + c.landmark_weight * loss_lm
        return {"cls": loss_cls, "box": loss_box, "landmarks": loss_lm, "total": total}
