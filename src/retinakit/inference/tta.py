"""The paper's test-time strategy: multi-scale and flipped passes merged by box voting.

Each pass runs the shared post-processing (threshold, top-k, NMS, keep-k) in original-image
coordinates; flipped passes are mapped back (``x -> W - x``) with left and right landmarks
swapped. The passes of one scale (plain and flipped) share one forward pass as a batch of two.
Merging:

- ``"vote"`` (paper section 4.2, box voting): take the best remaining detection, gather every
  detection with IoU >= ``vote_iou`` with it, and replace the cluster by the score-weighted mean of
  its boxes **and landmarks**; the cluster score follows ``vote_score``:
  ``max`` (best member), ``mean`` (mean member), ``consensus`` (sum of member scores divided by the
  number of passes, at most 1: a face found in every pass keeps its score, one found in a single
  pass is discounted; the default: on WIDER FACE val-dev it beat ``max`` and ``mean``, see the
  README). Single-member clusters are kept.
- ``"nms"``: plain NMS over the union of all passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from retinakit.core.boxes import iou_one_to_many, nms
from retinakit.inference.preprocess import ImageFrame, ResizePolicy, resize
from retinakit.landmarks import hflip_boxes_landmarks
from retinakit.result import Faces

MergeRule = Literal["vote", "nms"]
VoteScore = Literal["max", "mean", "consensus"]


@dataclass(frozen=True)
class TTAConfig:
    """Test-time augmentation: short-side ``scales`` (empty: the detector's own resize policy),
    ``flip``, the long-side cap ``max_side`` that bounds memory, and the merge rule."""

    scales: tuple[int, ...] = ()
    flip: bool = False
    max_side: int = 2600
    merge: MergeRule = "vote"
    vote_iou: float = 0.4
    vote_score: VoteScore = "consensus"

    @property
    def enabled(self) -> bool:
        return bool(self.scales) or self.flip


def flip_faces(faces: Faces, width: int) -> Faces:
    """Faces of a horizontally flipped image mapped back onto the original image."""
    boxes, points = hflip_boxes_landmarks(faces.boxes, faces.landmarks, width)
    return Faces(boxes, faces.scores, points)


def box_vote(faces: Faces, iou_threshold: float, score: VoteScore, num_passes: int) -> Faces:
    """Box voting over detections of several passes (see the module docstring)."""
    if len(faces) == 0:
        return faces
    order = np.argsort(-faces.scores, kind="stable")
    boxes = faces.boxes[order].astype(np.float64)
    scores = faces.scores[order].astype(np.float64)
    points = faces.landmarks[order].astype(np.float64)
    out_boxes, out_scores, out_points = [], [], []
    alive = np.arange(len(boxes))
    while alive.size:
        i = alive[0]
        iou = iou_one_to_many(boxes[i], boxes[alive])
        members = alive[iou >= iou_threshold]
        alive = alive[iou < iou_threshold]
        weights = scores[members]
        total = weights.sum()
        out_boxes.append((weights[:, None] * boxes[members]).sum(0) / total)
        out_points.append((weights[:, None, None] * points[members]).sum(0) / total)
        if score == "max":
            out_scores.append(weights.max())
        elif score == "mean":
            out_scores.append(weights.mean())
        else:
            out_scores.append(min(1.0, total / num_passes))
    merged = Faces(np.array(out_boxes), np.array(out_scores), np.array(out_points))
    return merged[np.argsort(-merged.scores, kind="stable")]


def merge_passes(passes: Sequence[Faces], config: TTAConfig, max_detections: int) -> Faces:
    """One result from the faces of every pass, by ``config.merge``."""
    union = Faces.merge(list(passes))
    if config.merge == "nms":
        keep = nms(union.boxes, union.scores, config.vote_iou)
        merged = union[keep]
    elif config.merge == "vote":
        merged = box_vote(union, config.vote_iou, config.vote_score, max(1, len(passes)))
    else:
        raise ValueError(f"unknown merge rule {config.merge!r}; choose 'vote' or 'nms'")
    return merged[:max_detections]


class PassRunner(Protocol):
    """What TTA needs from a detector (:class:`~retinakit.detector.Detector` is one)."""

    @property
    def resize_policy(self) -> ResizePolicy:
        """The resize used when no TTA scales are given."""
        ...

    def infer(self, resized: Sequence[np.ndarray], frames: Sequence[ImageFrame]) -> list[Faces]:
        """One forward pass plus post-processing over resized BGR images."""
        ...


def tta_passes(detector: PassRunner, image: np.ndarray, config: TTAConfig) -> list[Faces]:
    """The faces of every pass (each scale, plain and flipped) in original-image coordinates.

    ``detector`` runs each pass (its backend, post-processing and, when ``scales`` is empty, its
    resize policy are used).
    """
    policies = (
        [ResizePolicy(short_side=s, max_side=config.max_side) for s in config.scales]
        if config.scales
        else [detector.resize_policy]
    )
    width = image.shape[1]
    out: list[Faces] = []
    for policy in policies:
        resized, frame = resize(image, policy)
        views = [resized, np.ascontiguousarray(resized[:, ::-1])] if config.flip else [resized]
        results = detector.infer(views, [frame] * len(views))
        out.append(results[0])
        if config.flip:
            out.append(flip_faces(results[1], width))
    return out
