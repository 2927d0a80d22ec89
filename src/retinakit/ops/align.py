"""Face alignment for recognition: a similarity transform of the five landmarks onto a template.

The template is ArcFace's five-point 112 x 112 template (insightface), in :class:`FaceLandmark`
order; for another crop size it is scaled uniformly by ``size / 112``. The transform is the
least-squares similarity (rotation, uniform scale, translation) of Umeyama (1991), and each face
needs one ``cv2.warpAffine``.
"""

from __future__ import annotations

import cv2
import numpy as np

#: ArcFace template for 112 x 112 crops: left eye, right eye, nose, left and right mouth corner.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


#: Crop sizes accepted: a crop is ``size`` x ``size`` pixels per face, so the bound keeps memory sane.
MIN_SIZE, MAX_SIZE = 16, 4096


def template(size: int = 112) -> np.ndarray:
    """The ``(5, 2)`` template for ``size`` x ``size`` crops (the 112 template scaled by size/112)."""
    if not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"crop size must be an integer from {MIN_SIZE} to {MAX_SIZE}, got {size!r}")
    return ARCFACE_TEMPLATE * (size / 112.0)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``(2, 3)`` matrix ``M`` of the similarity minimising ``sum |M [src; 1] - dst|^2`` (Umeyama).

    ``src``, ``dst``: ``(K, 2)`` corresponding points, ``K >= 2``. Reflections are excluded.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need matching (K, 2) point sets with K >= 2, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    sc, dc = src - mu_s, dst - mu_d
    var_s = (sc**2).sum() / len(src)
    if var_s <= 0:
        raise ValueError("source points are all identical")
    cov = dc.T @ sc / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rotation = u @ np.diag(d) @ vt
    scale = (s * d).sum() / var_s
    translation = mu_d - scale * rotation @ mu_s
    return np.hstack([scale * rotation, translation[:, None]])


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """One ``(size, size, C)`` crop warping ``landmarks (5, 2)`` onto the template (same channel order)."""
    matrix = similarity_transform(landmarks, template(size))
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def align_faces(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """``(N, size, size, C)`` aligned crops of every face (``landmarks (N, 5, 2)``) of one image."""
    landmarks = np.asarray(landmarks).reshape(-1, 5, 2)
    template(size)  # checks the size before allocating
    channels = () if image.ndim == 2 else (image.shape[2],)
    out = np.zeros((len(landmarks), size, size, *channels), dtype=image.dtype)
    for i, points in enumerate(landmarks):
        out[i] = align_face(image, points, size)
    return out
