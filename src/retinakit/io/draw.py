"""Drawing detections on images (boxes, scores, landmarks) for annotated outputs."""

from __future__ import annotations

import cv2
import numpy as np

from retinakit.result import Faces

#: BGR colours per landmark, in FaceLandmark order (left eye, right eye, nose, left/right mouth).
LANDMARK_COLORS = ((255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 0, 255), (0, 255, 255))
BOX_COLOR = (0, 255, 0)


def draw_meshes(image_bgr: np.ndarray, faces: Faces, alpha: float = 0.6) -> np.ndarray:
    """A copy of a BGR image with each face's dense mesh (if any) painted in its colours, far
    triangles first, blended with weight ``alpha``."""
    canvas = image_bgr.copy()
    if faces.meshes is None or len(faces) == 0:
        return canvas
    layer, covered = canvas.copy(), np.zeros(canvas.shape[:2], np.uint8)
    tris = faces.meshes.triangles
    for vertices, colours in zip(faces.meshes.vertices, faces.meshes.colors, strict=True):
        corners = vertices[tris]  # (F, 3, 3)
        order = np.argsort(-corners[:, :, 2].mean(1))  # far to near
        rgb = np.clip(colours[tris].mean(1) * 255, 0, 255).astype(int)
        for t in order:
            points = np.round(corners[t, :, :2] * 16).astype(np.int32)  # 4 fractional bits
            colour = (int(rgb[t, 2]), int(rgb[t, 1]), int(rgb[t, 0]))
            cv2.fillConvexPoly(layer, points, colour, cv2.LINE_AA, 4)
            cv2.fillConvexPoly(covered, points, 255, cv2.LINE_8, 4)
    blend = cv2.addWeighted(layer, alpha, canvas, 1 - alpha, 0)
    canvas[covered > 0] = blend[covered > 0]
    return canvas


def draw_faces(image_bgr: np.ndarray, faces: Faces, show_scores: bool = True) -> np.ndarray:
    """A copy of a BGR image with each face's box, score and five landmarks drawn (and its dense
    mesh first, when the faces carry meshes)."""
    canvas = draw_meshes(image_bgr, faces) if faces.meshes is not None else image_bgr.copy()
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
