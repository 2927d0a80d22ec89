"""Drawing detections on images (boxes, scores, landmarks) for annotated outputs."""

from __future__ import annotations

import cv2
import numpy as np

from retinakit.result import Faces

#: BGR colours per landmark, in FaceLandmark order (left eye, right eye, nose, left/right mouth).
LANDMARK_COLORS = ((255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 0, 255), (0, 255, 255))
BOX_COLOR = (0, 255, 0)


def draw_faces(image_bgr: np.ndarray, faces: Faces, show_scores: bool = True) -> np.ndarray:
    """A copy of a BGR image with each face's box, score and five landmarks drawn."""
    canvas = image_bgr.copy()
    scale = max(1, round(max(canvas.shape[:2]) / 800))
    for box, score, points in zip(faces.boxes, faces.scores, faces.landmarks, strict=True):
        x1, y1, x2, y2 = (round(v) for v in box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), BOX_COLOR, scale, cv2.LINE_AA)
        if show_scores:
            cv2.putText(
                canvas,
                f"{score:.2f}",
                (x1, max(0, y1 - 3)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.4 * scale,
                BOX_COLOR,
                max(1, scale // 2),
                cv2.LINE_AA,
            )
        radius = max(1, round(min(x2 - x1, y2 - y1) / 30), scale)
        for (x, y), color in zip(points, LANDMARK_COLORS, strict=True):
            cv2.circle(canvas, (round(x), round(y)), radius, color, -1, cv2.LINE_AA)
    return canvas
