"""Conversion to the `supervision` toolkit (optional extra): its annotators, trackers and slicers on our faces."""

from __future__ import annotations

from typing import Any

import numpy as np

from retinakit.result import Faces

_MISSING = "needs the 'supervision' extra: pip install 'retinakit[supervision]'"


def _supervision() -> Any:
    try:
        import supervision
    except ImportError:
        raise ImportError(f"Faces.to_supervision() {_MISSING}") from None
    return supervision


def to_detections(faces: Faces, track_ids: np.ndarray | None = None) -> Any:
    """``supervision.Detections``: ``xyxy``, ``confidence``, ``class_id`` 0 (face), optional
    ``tracker_id``, and the landmarks ``(N, 5, 2)`` in ``data["landmarks"]`` (kept by its indexing)."""
    sv = _supervision()
    return sv.Detections(
        xyxy=faces.boxes.copy(),
        confidence=faces.scores.copy(),
        class_id=np.zeros(len(faces), dtype=int),
        tracker_id=None if track_ids is None else np.asarray(track_ids, dtype=int),
        data={"landmarks": faces.landmarks.copy()},
    )


def to_keypoints(faces: Faces) -> Any:
    """``supervision.KeyPoints`` of the five landmarks (``xy`` ``(N, 5, 2)`` in FaceLandmark order)."""
    sv = _supervision()
    return sv.KeyPoints(xy=faces.landmarks.copy(), class_id=np.zeros(len(faces), dtype=int))
