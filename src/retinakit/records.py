"""A :class:`~retinakit.result.Faces` result in other shapes, one place each: JSON records, WIDER submission
rows, COCO annotations, and the `supervision` toolkit's objects (optional extra).

The writers that put these into files live in :mod:`retinakit.io.formats`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from retinakit.core.boxes import box_convert
from retinakit.landmarks import FaceLandmark

if TYPE_CHECKING:
    from retinakit.result import Faces

#: COCO keypoint names, in FaceLandmark order.
COCO_KEYPOINTS = [m.name.lower() for m in FaceLandmark]


def to_records(faces: Faces, decimals: int | None = 2) -> list[dict[str, Any]]:
    """One dict per face: ``box`` [x1, y1, x2, y2], ``score``, ``landmarks`` [[x, y] x 5], and ``angle``
    (degrees) when the faces carry the orientation they were found at."""

    def rnd(a: np.ndarray) -> Any:
        a = a.astype(np.float64)
        return (np.round(a, decimals) if decimals is not None else a).tolist()

    records = [
        {
            "box": rnd(box),
            "score": round(float(score), 5) if decimals is not None else float(score),
            "landmarks": rnd(points),
        }
        for box, score, points in zip(faces.boxes, faces.scores, faces.landmarks, strict=True)
    ]
    if faces.angles is not None:
        for record, angle in zip(records, faces.angles.tolist(), strict=True):
            record["angle"] = angle
    return records


def to_wider_rows(faces: Faces) -> np.ndarray:
    """``(N, 5)`` float64 ``x, y, w, h, score`` rows, highest score first (WIDER submission order)."""
    order = np.argsort(-faces.scores, kind="stable")
    xywh = box_convert(faces.boxes[order].astype(np.float64), "xyxy", "xywh")
    return np.concatenate([xywh, faces.scores[order, None].astype(np.float64)], axis=1)


def to_coco(images: Sequence[tuple[str, int, int, Faces]], decimals: int = 2) -> dict[str, Any]:
    """A COCO-style detection dataset of ``(file_name, width, height, faces)`` entries.

    Boxes become ``bbox`` ``[x, y, w, h]``; landmarks ``keypoints`` ``[x, y, 2] * 5`` (visibility 2) in
    FaceLandmark order; ``score`` is kept. One category, ``face``, with the keypoint names.
    """
    out_images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, (file_name, width, height, faces) in enumerate(images, start=1):
        out_images.append({"id": image_id, "file_name": file_name, "width": int(width), "height": int(height)})
        for box, score, points in zip(faces.boxes, faces.scores, faces.landmarks, strict=True):
            x1, y1, x2, y2 = (round(float(v), decimals) for v in box)
            w, h = round(x2 - x1, decimals), round(y2 - y1, decimals)
            keypoints: list[float] = []
            for x, y in points:
                keypoints += [round(float(x), decimals), round(float(y), decimals), 2]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "bbox": [x1, y1, w, h],
                    "area": round(w * h, decimals),
                    "iscrowd": 0,
                    "score": round(float(score), 5),
                    "keypoints": keypoints,
                    "num_keypoints": len(points),
                }
            )
    return {
        "images": out_images,
        "annotations": annotations,
        "categories": [
            {
                "id": 1,
                "name": "face",
                "supercategory": "face",
                "keypoints": COCO_KEYPOINTS,
                "skeleton": [[1, 2], [1, 3], [2, 3], [3, 4], [3, 5], [4, 5]],
            }
        ],
    }


# ----------------------------------------------------------------------------- supervision

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
