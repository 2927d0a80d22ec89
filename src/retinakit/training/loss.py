"""The multi-task loss of RetinaFace: softmax classification with hard-negative mining (OHEM),
smooth-L1 on encoded boxes and on encoded landmarks, on positive anchors only (PyTorch).

Boxes and landmarks are encoded with :mod:`retinakit.core.box_coder`, the very coder inference
decodes with. Each loss is returned by name; an image with no faces contributes exactly zero box
and landmark loss, and only mined negatives to the classification loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from retinakit.config import InputConfig
from retinakit.core.box_coder import encode_boxes, encode_landmarks
from retinakit.core.boxes import box_convert, box_iou
from retinakit.core.outputs import DenseRawOutputs, RawOutputs, dense_params_of
from retinakit.models.dense.pixel_loss import crop_boxes, pixel_loss, to_rgb01
from retinakit.training.matching import BETWEEN_THRESHOLDS, Matcher

if TYPE_CHECKING:
    from retinakit.models.dense.branch import DenseBranch


@dataclass(frozen=True)
class LossConfig:
    """Matching thresholds, OHEM ratio and loss weights. ``min_negatives``: negatives mined in an
    image with no positive anchor (so images without faces still teach the background).
    ``min_best_iou``: a face forces its best anchor positive only if their IoU reaches this.
    ``pixel_weight`` (the paper's λ3) and ``pixel_faces``: weight of the dense branch's pixel loss
    and the most faces per image it is computed on (see :func:`select_faces`); used only when the
    model has the dense branch."""

    name: str
    positive_iou: float
    negative_iou: float
    neg_pos_ratio: int
    box_weight: float
    landmark_weight: float
    cls_weight: float = 1.0
    min_negatives: int = 16
    min_best_iou: float = 0.0
    pixel_weight: float = 0.001
    pixel_faces: int = 8


LOSS_PRESETS = {
    "paper": LossConfig("paper", 0.5, 0.3, 3, box_weight=0.25, landmark_weight=0.1),
    "biubug6": LossConfig("biubug6", 0.35, 0.35, 7, box_weight=2.0, landmark_weight=1.0, min_best_iou=0.2),
}


def get_loss_preset(name: str) -> LossConfig:
    try:
        return LOSS_PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown loss preset {name!r}; known: {', '.join(LOSS_PRESETS)}") from None


def select_faces(
    matches: torch.Tensor, anchors_xyxy: torch.Tensor, boxes: torch.Tensor, max_faces: int
) -> torch.Tensor:
    """Anchors that train the dense branch in one image: for each face with a positive anchor,
    its best-overlapping positive anchor; the largest faces first, at most ``max_faces``.

    ``matches (A,)`` face index per anchor (negative: not positive); returns anchor indices.
    """
    positive = torch.nonzero(matches >= 0).squeeze(1)
    if len(positive) == 0 or max_faces <= 0:
        return positive[:0]
    face = matches[positive]
    iou = box_iou(boxes, anchors_xyxy[positive])[face, torch.arange(len(positive), device=face.device)]
    area_b = (boxes[:, 2:] - boxes[:, :2]).prod(1)[face]
    # sort by (face area desc, face, iou desc); keep the first anchor of each face
    order = torch.argsort(iou, descending=True, stable=True)
    order = order[torch.argsort(face[order], stable=True)]
    order = order[torch.argsort(area_b[order], descending=True, stable=True)]
    face_sorted = face[order]
    first = torch.ones_like(face_sorted, dtype=torch.bool)
    first[1:] = face_sorted[1:] != face_sorted[:-1]
    return positive[order[first][:max_faces]]


class MultiTaskLoss:
    """Callable: ``loss(raw, targets, anchors) -> {"cls", "box", "landmarks", "total"}``.

    ``raw``: network outputs ``(B, A, .)``; ``targets``: one dict per image with ``boxes (N, 4)``
    xyxy, ``landmarks (N, 5, 2)`` and ``has_landmarks (N,)`` in network-input pixels; ``anchors``:
    ``(A, 4)`` cx, cy, w, h for that input size.

    With ``dense`` (the model's :class:`~retinakit.models.dense.branch.DenseBranch`) and
    ``raw.dense_params``, pass the network ``images`` too: the result gains ``"pixel"``, the mean
    L1 between rendered faces and the image crops of their boxes (eq. 3), weighted by
    ``config.pixel_weight`` in the total. ``input_config`` undoes the input normalisation.
    """

    def __init__(
        self,
        config: LossConfig,
        variances: tuple[float, float],
        dense: DenseBranch | None = None,
        input_config: InputConfig | None = None,
        count: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.config = config
        self.variances = variances
        # maps this batch's positive / landmark counts to the normalisers (the identity here;
        # summed over processes in distributed training, see retinakit.training.distributed)
        self.count = count or (lambda n: n)
        self.matcher = Matcher(config.positive_iou, config.negative_iou, min_best_iou=config.min_best_iou)
        self.dense = dense
        self.input_config = input_config or InputConfig()

    def __call__(
        self,
        raw: RawOutputs | DenseRawOutputs,
        targets: list[dict[str, torch.Tensor]],
        anchors: torch.Tensor,
        images: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        deltas, logits, lm_deltas = raw.box_deltas.float(), raw.logits.float(), raw.landmark_deltas.float()
        batch, num_anchors = logits.shape[:2]
        anchors_xyxy = box_convert(anchors, "cxcywh", "xyxy")
        labels = torch.zeros(batch, num_anchors, dtype=torch.int64, device=logits.device)
        ignore = torch.zeros(batch, num_anchors, dtype=torch.bool, device=logits.device)
        box_t = torch.zeros_like(deltas)
        lm_t = torch.zeros_like(lm_deltas)
        lm_mask = torch.zeros(batch, num_anchors, dtype=torch.bool, device=logits.device)
        params = dense_params_of(raw)
        use_dense = self.dense is not None and params is not None and images is not None
        dense_picks: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        for i, target in enumerate(targets):
            matches = self.matcher(target["boxes"], anchors_xyxy)
            if use_dense:
                picked = select_faces(matches, anchors_xyxy, target["boxes"], self.config.pixel_faces)
                dense_picks.append((i, picked, target["boxes"][matches[picked]]))
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

        normaliser = self.count(num_pos).float().clamp(min=1)
        loss_cls = self._classification(logits, labels, positive, ignore) / normaliser
        if num_pos > 0:
            loss_box = F.smooth_l1_loss(deltas[positive], box_t[positive], reduction="sum") / normaliser
        else:
            loss_box = (deltas * 0.0).sum()
        loss_lm = self._landmarks(lm_deltas, lm_t, lm_mask)
        c = self.config
        total = c.cls_weight * loss_cls + c.box_weight * loss_box + c.landmark_weight * loss_lm
        losses = {"cls": loss_cls, "box": loss_box, "landmarks": loss_lm}
        if use_dense:
            losses["pixel"] = self.pixel_loss(params, images, dense_picks)  # type: ignore[arg-type]
            total = total + c.pixel_weight * losses["pixel"]
        return {**losses, "total": total}

    def _classification(
        self, logits: torch.Tensor, labels: torch.Tensor, positive: torch.Tensor, ignore: torch.Tensor
    ) -> torch.Tensor:
        """Summed cross-entropy with OHEM: all positives, the hardest negatives at ``neg_pos_ratio`` : 1."""
        batch, num_anchors = logits.shape[:2]
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
        return ce[positive | negative].sum()

    def _landmarks(self, lm_deltas: torch.Tensor, lm_t: torch.Tensor, lm_mask: torch.Tensor) -> torch.Tensor:
        """Smooth-L1 landmark loss over the positives that carry landmarks."""
        num_lm = lm_mask.sum()
        lm_normaliser = self.count(num_lm).float().clamp(min=1)  # every process calls count, always
        if num_lm > 0:
            return F.smooth_l1_loss(lm_deltas[lm_mask], lm_t[lm_mask], reduction="sum") / lm_normaliser
        return (lm_deltas * 0.0).sum()

    def pixel_loss(
        self, params: torch.Tensor, images: torch.Tensor, picks: list[tuple[int, torch.Tensor, torch.Tensor]]
    ) -> torch.Tensor:
        """L_pixel over the picked anchors: ``(image index, anchor indices, their face boxes)``."""
        if self.dense is None:
            raise ValueError("the pixel loss needs the model's dense branch (MultiTaskLoss(..., dense=model.dense))")
        image_index = torch.cat([torch.full_like(a, i) for i, a, _ in picks])
        anchor_index = torch.cat([a for _, a, _ in picks])
        boxes = torch.cat([b for _, _, b in picks])
        if len(boxes) == 0:
            return params.float().sum() * 0.0
        with torch.no_grad():
            crops = crop_boxes(
                to_rgb01(images.float(), self.input_config), image_index, boxes, self.dense.render_config.size
            )
        rendered, _ = self.dense.render(params[image_index, anchor_index].float(), crops.mean(dim=(2, 3)))
        return pixel_loss(rendered, crops)
