"""Training augmentation (paper section 4.2), seeded and reproducible.

Random square crop with side in ``[min_crop, 1]`` of the image's short side (retried until a face
centre falls inside; faces whose centre is inside are kept, clipped to the crop), photometric
distortion, resize to ``size`` x ``size`` with a random interpolation, horizontal flip with the
left/right landmarks swapped. Boxes are xyxy float pixels; landmarks ``(N, 5, 2)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from retinakit.landmarks import hflip_boxes_landmarks

INTERPOLATIONS = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA, cv2.INTER_NEAREST, cv2.INTER_LANCZOS4)


@dataclass(frozen=True)
class AugmentConfig:
    """``size``: training input side. ``min_crop``: smallest crop side / short side. ``flip``,
    ``photometric``: switch those parts. ``crop``: False resizes the whole image (no crop)."""

    size: int = 640
    min_crop: float = 0.3
    crop: bool = True
    flip: bool = True
    photometric: bool = True
    max_tries: int = 250


@dataclass(frozen=True)
class Sample:
    """An image with its faces: ``image (H, W, 3)`` uint8 BGR, ``boxes (N, 4)``, ``landmarks
    (N, 5, 2)``, ``has_landmarks (N,)``."""

    image: np.ndarray
    boxes: np.ndarray
    landmarks: np.ndarray
    has_landmarks: np.ndarray


def hflip(sample: Sample) -> Sample:
    """Mirror the image left-right; boxes and landmarks follow, left/right landmarks swap names."""
    boxes, points = hflip_boxes_landmarks(sample.boxes, sample.landmarks, sample.image.shape[1])
    points[~sample.has_landmarks] = 0
    return Sample(np.ascontiguousarray(sample.image[:, ::-1]), boxes, points, sample.has_landmarks.copy())


def random_square_crop(sample: Sample, rng: np.random.Generator, config: AugmentConfig) -> Sample:
    """A square crop keeping faces whose centre lies inside (see module docstring)."""
    h, w = sample.image.shape[:2]
    short = min(h, w)
    centres = (sample.boxes[:, :2] + sample.boxes[:, 2:]) / 2
    for _ in range(config.max_tries):
        side = int(short * rng.uniform(config.min_crop, 1.0))
        side = max(side, 1)
        x0 = int(rng.integers(0, w - side + 1))
        y0 = int(rng.integers(0, h - side + 1))
        inside = (
            (centres[:, 0] >= x0) & (centres[:, 0] < x0 + side) & (centres[:, 1] >= y0) & (centres[:, 1] < y0 + side)
        )
        if inside.any() or len(sample.boxes) == 0:
            break
    else:  # no crop kept a face: the largest square around the first face instead
        side = short
        cx, cy = centres[0]
        x0 = int(np.clip(cx - side / 2, 0, w - side))
        y0 = int(np.clip(cy - side / 2, 0, h - side))
        inside = (
            (centres[:, 0] >= x0) & (centres[:, 0] < x0 + side) & (centres[:, 1] >= y0) & (centres[:, 1] < y0 + side)
        )
    offset = np.array([x0, y0, x0, y0], dtype=np.float32)
    boxes = np.clip(sample.boxes[inside] - offset, 0, side)
    points = sample.landmarks[inside] - offset[:2]
    has = sample.has_landmarks[inside]
    points[~has] = 0
    image = sample.image[y0 : y0 + side, x0 : x0 + side]
    return Sample(image, boxes, points, has)


def photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast, saturation and hue changes (each with probability 1/2)."""
    pixels = image.astype(np.float32)
    if rng.random() < 0.5:
        pixels += rng.uniform(-32, 32)
    if rng.random() < 0.5:
        pixels *= rng.uniform(0.5, 1.5)
    out = np.clip(pixels, 0, 255).astype(np.uint8)
    if rng.random() < 0.5 or rng.random() < 0.5:
        hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV).astype(np.float32)
        if rng.random() < 0.5:
            hsv[..., 1] *= rng.uniform(0.5, 1.5)
        if rng.random() < 0.5:
            hsv[..., 0] = (hsv[..., 0] + rng.uniform(-18, 18)) % 180
        return cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)
    return out


def augment(sample: Sample, rng: np.random.Generator, config: AugmentConfig) -> Sample:
    """The full training augmentation; output image is ``size`` x ``size``."""
    if config.crop:
        sample = random_square_crop(sample, rng, config)
    image = photometric(sample.image, rng) if config.photometric else sample.image
    h, w = image.shape[:2]
    interp = INTERPOLATIONS[int(rng.integers(len(INTERPOLATIONS)))] if config.crop else cv2.INTER_LINEAR
    image = cv2.resize(image, (config.size, config.size), interpolation=interp)
    sx, sy = config.size / w, config.size / h
    boxes = sample.boxes * np.array([sx, sy, sx, sy], dtype=np.float32)
    points = sample.landmarks * np.array([sx, sy], dtype=np.float32)
    keep = ((boxes[:, 2] - boxes[:, 0]) > 0.5) & ((boxes[:, 3] - boxes[:, 1]) > 0.5)
    out = Sample(image, boxes[keep], points[keep], sample.has_landmarks[keep])
    if config.flip and rng.random() < 0.5:
        out = hflip(out)
    return out
