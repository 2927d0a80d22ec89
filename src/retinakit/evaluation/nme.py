"""Landmark accuracy as in the RetinaFace paper (section 4.5).

NME of a face: mean Euclidean distance over the five points divided by ``sqrt(w * h)`` of the
ground-truth box. Each annotated face is matched to the detection of highest IoU (>= 0.5); a face
with no such detection counts as a failure (NME = inf). Reported: mean NME over matched faces,
the cumulative error distribution, and the failure rate at NME 10% (unmatched faces included).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from retinakit.core.boxes import box_iou
from retinakit.result import Faces


@dataclass(frozen=True)
class LandmarkGroundTruth:
    """Annotated faces of one image: boxes ``(M, 4)`` xyxy and landmarks ``(M, 5, 2)`` (all present)."""

    boxes: np.ndarray
    landmarks: np.ndarray


def face_nme(faces: Faces, truth: LandmarkGroundTruth, match_iou: float = 0.5) -> np.ndarray:
    """NME ``(M,)`` of each annotated face; ``inf`` where no detection overlaps it by ``match_iou``."""
    if len(truth.boxes) == 0:
        return np.zeros(0)
    nme = np.full(len(truth.boxes), np.inf)
    if len(faces) == 0:
        return nme
    iou = box_iou(truth.boxes.astype(np.float32), faces.boxes)
    best = iou.argmax(axis=1)
    ok = iou[np.arange(len(best)), best] >= match_iou
    wh = truth.boxes[:, 2:] - truth.boxes[:, :2]
    norm = np.sqrt(np.clip(wh[:, 0] * wh[:, 1], 1e-12, None))
    dist = np.linalg.norm(faces.landmarks[best] - truth.landmarks, axis=2).mean(axis=1)
    nme[ok] = (dist / norm)[ok]
    return nme


@dataclass(frozen=True)
class LandmarkResult:
    """Landmark figures over all annotated faces (NME as fractions of sqrt(w h))."""

    num_faces: int
    num_matched: int
    mean_nme: float
    failure_rate_10: float
    ced: dict[str, list[float]] = field(repr=False)  # thresholds -> fraction of faces below

    def to_dict(self) -> dict[str, object]:
        return {
            "num_faces": self.num_faces,
            "num_matched": self.num_matched,
            "mean_nme": self.mean_nme,
            "failure_rate_at_0.10": self.failure_rate_10,
            "ced": self.ced,
        }


def summarize_nme(nme: np.ndarray, max_threshold: float = 0.2, steps: int = 201) -> LandmarkResult:
    """Mean NME of matched faces, failure rate at 10% and the CED curve up to ``max_threshold``."""
    matched = np.isfinite(nme)
    thresholds = np.linspace(0, max_threshold, steps)
    fractions = (nme[None, :] <= thresholds[:, None]).mean(axis=1) if len(nme) else np.zeros(steps)
    return LandmarkResult(
        num_faces=len(nme),
        num_matched=int(matched.sum()),
        mean_nme=float(nme[matched].mean()) if matched.any() else float("nan"),
        failure_rate_10=float((nme > 0.10).mean()) if len(nme) else float("nan"),
        ced={"threshold": thresholds.tolist(), "fraction": fractions.tolist()},
    )
