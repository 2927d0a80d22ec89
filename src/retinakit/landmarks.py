"""The five facial landmarks and their one order, used everywhere in retinakit.

Left and right are **as seen in the image** (the WIDER FACE / RetinaFace annotation convention):
``LEFT_EYE`` is the eye nearer the image's left edge in an upright, frontal face, which is the
subject's own right eye. Every ``(N, 5, 2)`` landmark array in retinakit is in this order, with
``(x, y)`` float pixel coordinates in the original image.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class FaceLandmark(IntEnum):
    """Index of each landmark in a ``(N, 5, 2)`` landmark array; left and right as seen in the image.

    >>> import numpy as np
    >>> landmarks = np.arange(20, dtype=np.float32).reshape(2, 5, 2)
    >>> landmarks[:, FaceLandmark.NOSE].tolist()      # (x, y) of each face's nose
    [[4.0, 5.0], [14.0, 15.0]]
    """

    LEFT_EYE = 0
    RIGHT_EYE = 1
    NOSE = 2
    LEFT_MOUTH = 3
    RIGHT_MOUTH = 4


#: Permutation that keeps landmark names correct after a horizontal flip of the image.
HFLIP_PERMUTATION: np.ndarray = np.array(
    [
        FaceLandmark.RIGHT_EYE,
        FaceLandmark.LEFT_EYE,
        FaceLandmark.NOSE,
        FaceLandmark.RIGHT_MOUTH,
        FaceLandmark.LEFT_MOUTH,
    ],
    dtype=np.int64,
)


def hflip_boxes_landmarks(boxes: np.ndarray, landmarks: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``(N, 4)`` xyxy and landmarks ``(N, 5, 2)`` of a left-right mirrored image of ``width``.

    ``x -> width - x``, box corners swap, and landmarks are re-ordered with
    :data:`HFLIP_PERMUTATION` so that ``LEFT_EYE`` is again the image-left eye.
    """
    flipped_boxes = boxes.copy()
    flipped_boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
    points = landmarks.copy()
    points[:, :, 0] = width - points[:, :, 0]
    return flipped_boxes, points[:, HFLIP_PERMUTATION]
