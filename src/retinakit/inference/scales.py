"""Faces of every size in one image: the ``auto`` resize policy, and rotated passes.

**Why.** The anchors of the built-in model span 16 to 512 pixels at the network's input. At the
original size a small face is found, but a face much larger than the largest anchors is not: the
network sees only its parts, and reports eyes, mouths and cheeks as faces of their own (on a 12 MP
phone photo: none of the big faces found, and about ten such fragments a photo). Shrinking every
image (``max_side``) finds the big faces but loses the small ones.

**What ``auto`` does.** The first pass runs at the size the resize policy gives (the original size by
default), which small faces need. When the image's short side at that pass is above
:attr:`ScaleConfig.trigger` (a face larger than the anchors can represent would fit in it),
coarser passes follow, each :attr:`ScaleConfig.step` times smaller, until the short side fits. Each
pass keeps only the face sizes it represents well (a finer pass those below the largest anchor, a
coarser pass those too big for the finer one). A face of a finer pass that lies mostly inside a much
larger confident face of a coarser pass is a fragment of it and is dropped. In very large images
(12 MP and more) a face of a finer pass must also be seen, even faintly, by each coarser view in
which it is large enough to be seen (the next pass, and for the first pass's faces too small for
the next pass to check, an extra view at half its size): at a resolution several times the one it
was trained at, the network takes textures (dotted fabric, a mesh sweater) for faces, which the
coarser views do not. Then NMS over the union removes
the duplicates at the hand-over sizes (see :class:`ScaleConfig`). The coarser passes cost
little: each has 1/16 of the pixels of the one before. An image whose short side is within
``trigger`` at the first pass (VGA, for instance) runs one pass, exactly as before.

**Upscaled photos.** A photo whose detail is coarser than its pixels (upscaled, digitally zoomed)
is a case of its own: there the network takes blurred textures for faces and scores blurred faces
low. From a 2048 px long side on, :func:`detail_scale` measures how far the photo can be shrunk
before it loses detail; one upscaled 4 or 8 times runs its first pass at twice its detail scale
instead of the original size, checks its faces against a view at the detail scale, keeps only
faces of at least ``detail_face`` pixels at that scale, and adds the faces that view sees clearly
and no pass returned (:func:`add_lone_faces`). A sharp photo is not affected.

**Rotations.** :func:`rotate_image` and :func:`faces_to_original` run a pass on the image turned by
a multiple of 90 degrees and map its faces back (boxes and landmarks in the input's frame, the
landmark order unchanged: it still names the subject's features).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from retinakit.core.boxes import box_area, box_intersection, box_iou, nms
from retinakit.result import Faces

#: Rotations a detector may try, in degrees counter-clockwise.
ANGLES = (0, 90, 180, 270)


@dataclass(frozen=True)
class ScaleConfig:
    """The ``auto`` policy's sizes, in pixels at the network input (a face's size: its longer side).

    - ``trigger``: a coarser pass is added while the image's short side is above this (512, the
      largest anchor, keeps VGA-sized images at one pass); ``step``: each coarser pass is this many
      times smaller.
    - ``keep_max``: a pass followed by a coarser one keeps faces smaller than this (450: near the
      largest anchor, 512, its boxes are less reliable than the coarser pass's); ``handover``: a
      coarser pass keeps the faces of at least this size in the finer pass before it. Between the
      two both passes keep a face and NMS keeps the better box.
    - ``inside``, ``container_ratio``, ``container_score``: a face with at least ``inside`` of its area
      inside a face of a coarser pass that is ``container_ratio`` times its area and scores at least
      ``container_score`` is a fragment of it (an eye, a mouth, half a face). The score matters at low
      thresholds, as in evaluation, where a faint large box can cover a crowd.
    - ``verify_passes``, ``verify_size``, ``verify_score``, ``verify_iou``: in an image that needs at
      least ``verify_passes`` coarser passes (its short side above ``step`` x ``trigger`` = 2048 px, far
      finer than the photos the network was trained on), a face of a finer pass whose size would be at
      least ``verify_size`` in the next coarser pass (16, the smallest anchor: a view where the face
      can be seen at all) is kept only if that pass has a detection of at least ``verify_score``
      overlapping it by IoU ``verify_iou``; the first pass's faces too small for the next pass to check
      are checked so in a view at half its size (from ``2 x verify_size`` pixels). ``verify_size``
      holds for upscaled photos (see ``detail_from``); a photo with detail down to its pixels is
      checked with ``sharp_verify_size`` (32) instead: there a face seen at 16 px in a coarser view is
      at the edge of what the network finds at all, and requiring it lost real faces.
    - ``detail_from``, ``detail_face``, ``detail_ratio``: an image whose long side is at least
      ``detail_from`` has its detail scale estimated (:func:`detail_scale`, which ``detail_ratio``
      tunes); one whose detail is 4 or 8 times coarser than its
      pixels (upscaled, digitally zoomed) runs its first pass at twice its detail scale, is checked
      against a view at its detail scale, and keeps only faces at least ``detail_face`` pixels across at
      that scale (12: smaller ones have too little detail to tell a face from a texture).
    - ``lone_score``, ``lone_iou``: on an upscaled photo, a face of the view at the detail scale that
      no returned face overlaps (IoU below ``lone_iou``), from the hand-over size up (150 px in the
      view: 300 at the first pass) and smaller than ``keep_max``, is returned too when it scores at
      least ``lone_score`` (:func:`add_lone_faces`): the passes that should have it (the first pass
      for it is too large, the next one too coarse) can miss a face the view sees clearly.
    - ``check_share``: the half-size view that checks the first pass's faces runs only on windows
      around the faces it checks (:func:`check_windows`) while they cover at most this share of the
      image, else on the whole view (0: always the whole view).

    Measured on photos of the WIDER FACE *training* subset, never on the validation set: one
    original-size pass finds faces up to 350 px with almost no fragments; at 450 px some are missed and
    fragments appear; beyond 550 px most detections are fragments. Among the variants tried, these
    values kept the AP of large faces (>= 64 px) of one pass on ordinary photos and removed most
    fragments and texture false positives on upscaled ones. The second round (40 training photos
    built as 12 MP, 48 MP and close-up photos, faces >= 200 px found / false faces per photo):
    ``verify_size`` 32 -> 16, ``verify_score`` 0.1 -> 0.2 and ``keep_max`` 512 -> 450 took the false
    faces from 1.02 / 2.50 / 0.62 to 0.42 / 0.93 / 0.25 with found 97.3 / 94.1 / 96.4 % -> 98.7 /
    94.1 / 96.4 %; ``verify_score`` 0.3 lost faces, ``keep_max`` 400 lost AP on ordinary photos.
    The third round (the detail scale; 230 training photos, in two halves of 120 and 110, with every
    pass cached and the rules re-merged offline): the first pass at twice the detail scale, checked at
    the detail scale, took the false faces from 0.87 / 1.26 / 0.21 and 0.32 / 0.78 / 0.21 per photo to
    0.26 / 0.28 / 0.09 and 0.15 / 0.16 / 0.06 with found 95.0 / 90.9 / 93.1 -> 94.6 / 91.2 / 93.6 % and
    93.8 / 89.0 / 93.7 -> 94.2 / 90.4 / 92.4 %; the first pass at the detail scale itself lost faces
    (the network scores blurred faces higher at twice their size); ``detail_face`` 16 removed more
    false faces (0.22 / 0.21 and 0.14 / 0.14 at 12 and 48 MP) but lost a third of the faces of 48 to
    200 px that 12 keeps (at 12 that share is today's). Sharp photos (12 mosaics of 16 native
    1000 x 750 crops of training photos, faces >= 32 px found / false faces a mosaic): checks from 16
    px 78.6 % / 11.25, from 32 px (``sharp_verify_size``) 85.9 % / 12.00, no checks 87.5 % / 13.00;
    the half-size view only for the faces the next pass cannot check: 85.9 % / 12.17 in 1.21x the
    time of one pass (1.45x when it checked every face). The fourth round (the same 230 training
    photos in two halves, 12 MP / 48 MP / close-ups, every pass cached and the rules re-merged):
    returning the detail view's lone faces took found from 94.6 / 91.2 / 93.6 to 95.4 / 91.7 / 94.2 %
    and from 94.2 / 90.4 / 92.9 to 94.7 / 91.9 / 93.5 %, the false faces a photo from 0.39 / 0.29 /
    0.10 to 0.39 / 0.29 / 0.10 and from 0.18 / 0.16 / 0.05 to 0.18 / 0.17 / 0.05; at ``lone_score``
    0.6 they rose to 0.41 / 0.32 / 0.10 and 0.18 / 0.19 / 0.06, at 0.9 faces were lost; faces from 16
    px in the view instead of 150 added false faces and no found ones. ``detail_ratio`` 0.1 (before:
    the lowest ratio alone) moved 12 of the 360 and 5 of the 330 built photos to a coarser detail and
    took the false faces from 0.39 / 0.29 / 0.10 to 0.33 / 0.23 / 0.10 and from 0.18 / 0.17 / 0.05 to
    0.16 / 0.17 / 0.04 (found 95.4 -> 95.0 % at 12 MP on the first half, otherwise unchanged); at 0.12
    fewer still (0.25 / 0.23 on the first half), but the lowest ratio at 4 of 30 sharp mosaics
    upscaled 2x was 0.121, too close: at 0.1 none of them, and none of 30 sharp mosaics, changes.
    The fifth round (the 230 training photos, 12 MP / 48 MP / close-ups, against the same photos and
    faces before upscaling): the rule gives 94.9 / 91.8 / 93.7 % found and 0.25 / 0.20 / 0.07 false
    faces a photo where the model gives 95.5 / 89.9 / 92.8 % and 0.23 / 0.23 / 0.06 on the photos as
    given, so the rest is the model's. Mirrored views did not pay as a default: every pass voted with
    its mirror (what ``flip=True`` now does) 94.7 / 89.9 / 92.5 % and 0.15 / 0.13 / 0.03 in twice the
    time; only the coarser passes and views mirrored, 94.7 / 91.2 / 93.1 % and 0.23 / 0.19 / 0.06; the
    mirror as a second opinion on the faces returned (unconfirmed ones kept as evidence only), 94.9 /
    91.7 / 93.1 % and 0.21 / 0.18 / 0.06 in 2.4 times the time.
    """

    handover: float = 300.0
    keep_max: float = 450.0
    trigger: float = 512.0
    step: float = 4.0
    inside: float = 0.5
    container_ratio: float = 2.0
    container_score: float = 0.5
    verify_passes: int = 2
    verify_size: float = 16.0
    sharp_verify_size: float = 32.0
    verify_score: float = 0.2
    verify_iou: float = 0.4
    detail_from: float = 2048.0
    detail_face: float = 12.0
    detail_ratio: float = 0.1
    check_share: float = 0.25
    lone_score: float = 0.8
    lone_iou: float = 0.3

    def __post_init__(self) -> None:
        if not (16 <= self.handover <= self.keep_max and self.step > 1 and 0 < self.inside <= 1):
            raise ValueError(f"need 16 <= handover <= keep_max, step > 1 and inside in (0, 1]: {self}")
        if not (0 <= self.verify_score < 1 and 0 < self.verify_iou <= 1 and self.verify_passes >= 1):
            raise ValueError(f"need verify_score in [0, 1), verify_iou in (0, 1], verify_passes >= 1: {self}")
        if not (0 < self.lone_iou <= 1 and 0 <= self.detail_ratio < 1 and self.detail_face >= 0):
            raise ValueError(f"need lone_iou in (0, 1], detail_ratio in [0, 1), detail_face >= 0: {self}")


def pass_factors(height: int, width: int, factor: float, config: ScaleConfig) -> list[float]:
    """Resize factors of every pass for a ``height`` x ``width`` image whose first pass is at ``factor``."""
    factors = [factor]
    short = min(height, width)
    while short * factors[-1] > config.trigger and short * factors[-1] / config.step >= 16:
        factors.append(factors[-1] / config.step)
    return factors


def merge_scales(
    passes: Sequence[tuple[float, Faces]],
    config: ScaleConfig,
    score_threshold: float,
    nms_threshold: float,
    max_detections: int,
    evidence: tuple[float, Faces] | None = None,
) -> Faces:
    """One result from ``(factor, faces in original pixels)`` passes, finest first (see the module docstring).

    The coarser passes' faces may go down to ``config.verify_score`` (they serve as evidence); only
    faces scoring at least ``score_threshold`` are returned. ``evidence``: a pass at half the first
    pass's size (see :func:`needs_verification`; for an upscaled photo, at its detail scale), against
    which the first pass's faces from twice ``verify_size`` up are checked where the next pass is too
    coarse to check them; with evidence, even a single pass is checked.
    """
    if len(passes) == 1 and evidence is None:
        return passes[0][1]
    kept: list[Faces] = []
    for i, (factor, faces) in enumerate(passes):
        size = np.maximum(faces.widths, faces.heights)
        keep = faces.scores >= score_threshold
        checks_next = i < len(passes) - 1 and len(passes) - 1 - i >= config.verify_passes
        if i < len(passes) - 1:
            keep &= size * factor < config.keep_max
        if checks_next:  # seen in every coarser view large enough to show it
            keep &= ~(size * passes[i + 1][0] >= config.verify_size) | _seen(
                faces.boxes, passes[i + 1][1].boxes, config.verify_iou
            )
        if i == 0 and evidence is not None:  # the faces the next pass is too coarse to check
            checked = evidence_checks(size, [f for f, _ in passes], evidence[0], config)
            keep &= ~checked | _seen(faces.boxes, evidence[1].boxes, config.verify_iou)
        if i > 0:
            keep &= size * passes[i - 1][0] >= config.handover
        kept.append(faces[keep])
    for i in range(len(kept) - 1):
        containers = Faces.merge(kept[i + 1 :])
        containers = containers[containers.scores >= config.container_score]
        kept[i] = kept[i][~_inside_any(kept[i].boxes, containers.boxes, config.inside, config.container_ratio)]
    return nms_merge(kept, nms_threshold, max_detections)


def detail_scale(image: np.ndarray, config: ScaleConfig) -> int:
    """How many pixels of ``image`` one pixel of its detail spans: 1, 4 or 8 (see :class:`ScaleConfig`).

    Measured on nine 512-pixel tiles of the grey image (about 30 ms on a 48 MP photo): for each ``k``
    of 2, 4 and 8, the energy a shrink by ``k`` and back loses, over what a shrink by ``2k`` loses. A
    photo with detail down to its pixels loses the most, relative to the next size, already at ``k =
    2``; one upscaled ``k`` times loses almost nothing at ``k`` and much at ``2k``, so its ratio is
    lowest at ``k``. A ratio lowest at 2 (a sharp photo, or one upscaled only 2x) gives 1: only
    clearly upscaled photos are treated as such. A ratio at 4 or 8 below ``detail_ratio`` (the shrink
    loses under a tenth of what the next one loses: almost no detail finer than ``k`` pixels) gives at
    least that ``k`` wherever the lowest ratio lies (photos upscaled 3 to 4 times, or soft before they
    were, whose lowest ratio is at 2). Images with a long side below ``detail_from``, and flat ones
    (a black frame: a shrink by 16 loses under one grey level squared a pixel), give 1.
    """
    h, w = image.shape[:2]
    if max(h, w) < config.detail_from or min(h, w) < 3 * 64:
        return 1
    side = min(512, h // 3 // 16 * 16, w // 3 // 16 * 16)
    lost = dict.fromkeys((2, 4, 8, 16), 0.0)
    for ty in range(3):
        for tx in range(3):
            y, x = int((h - side) * (ty + 0.5) / 3), int((w - side) * (tx + 0.5) / 3)
            tile = image[y : y + side, x : x + side]
            grey = (cv2.cvtColor(tile, cv2.COLOR_BGR2GRAY) if tile.ndim == 3 else tile).astype(np.float32)
            for k in lost:
                small = cv2.resize(grey, (side // k, side // k), interpolation=cv2.INTER_AREA)
                back = cv2.resize(small, (side, side), interpolation=cv2.INTER_CUBIC)
                lost[k] += float(np.square(grey[4:-4, 4:-4] - back[4:-4, 4:-4]).sum())
    if lost[16] < 1.0 * 9 * (side - 8) ** 2:  # under one grey level squared a pixel: flat, nothing to measure
        return 1
    ratios = {k: lost[k] / max(lost[2 * k], 1e-6) for k in (2, 4, 8)}
    best = min(ratios, key=lambda k: ratios[k])
    detail = best if best >= 4 else 1
    for k in (4, 8):
        if ratios[k] < config.detail_ratio:
            detail = max(detail, k)
    return detail


def add_lone_faces(
    merged: Faces, view: tuple[float, Faces], config: ScaleConfig, score_threshold: float, max_detections: int
) -> Faces:
    """``merged`` (best first) with the faces of ``view`` (``(factor, faces in original pixels)``, the
    upscaled photo's view at its detail scale) that no face of ``merged`` overlaps, from half the
    hand-over size to ``keep_max`` in the view and scoring at least ``lone_score`` (see :class:`ScaleConfig`).

    Overlapping means an IoU of at least ``lone_iou``, or one lying mostly (``inside``) in the other:
    a lone face around a returned one is a head or a group, one inside it a fragment."""
    factor, faces = view
    size = np.maximum(faces.widths, faces.heights) * factor
    keep = (faces.scores >= max(score_threshold, config.lone_score)) & (size >= config.handover / 2)
    lone = faces[keep & (size < config.keep_max)]
    if len(lone) and len(merged):
        apart = box_iou(lone.boxes, merged.boxes).max(axis=1) < config.lone_iou
        apart &= ~_inside_any(lone.boxes, merged.boxes, config.inside)
        apart &= ~_holds_any(lone.boxes, merged.boxes, config.inside)
        lone = lone[apart]
    if len(lone) == 0:
        return merged
    union = Faces.merge([merged, lone])
    return union[np.argsort(-union.scores, kind="stable")[:max_detections]]


def check_windows(
    boxes: np.ndarray, factor: float, height: int, width: int, config: ScaleConfig
) -> list[tuple[int, int, int, int]] | None:
    """Windows ``(x0, y0, x1, y1)`` of the original image in which a view at ``factor`` shows what it
    needs to check ``boxes``, or None when they would cover more than ``config.check_share`` of it.

    Each box grown by its size on every side (the context the network sees around a face), on the
    grid of the view's coarsest stride (32 view pixels, so the window's anchors are the whole view's),
    clipped to the image; overlapping windows become one.
    """
    if len(boxes) == 0:
        return []
    grid = 32 / factor
    size = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])[:, None]
    low = np.floor((boxes[:, :2] - size) / grid) * grid
    high = np.ceil((boxes[:, 2:] + size) / grid) * grid
    windows = np.clip(np.concatenate([low, high], axis=1), 0, [width, height, width, height]).tolist()
    merged: list[list[float]] = []
    while windows:  # union of overlapping windows, until none overlap
        window = windows.pop()
        for i, other in enumerate(merged):
            if window[0] < other[2] and other[0] < window[2] and window[1] < other[3] and other[1] < window[3]:
                windows.append([*np.minimum(window[:2], other[:2]), *np.maximum(window[2:], other[2:])])
                del merged[i]
                break
        else:
            merged.append(window)
    area = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in merged)
    if area > config.check_share * height * width:
        return None
    return [(int(x0), int(y0), int(x1), int(y1)) for x0, y0, x1, y1 in merged if x1 > x0 and y1 > y0]


def evidence_checks(size: np.ndarray, factors: Sequence[float], view_factor: float, config: ScaleConfig) -> np.ndarray:
    """``(N,)`` bool: which first-pass faces of ``size`` (original pixels) a view at ``view_factor`` checks
    in :func:`merge_scales`: those of at least ``verify_size`` there that the next pass (when it checks
    at all) is too coarse to check."""
    checked = size * view_factor >= config.verify_size
    if len(factors) - 1 >= config.verify_passes:
        checked &= size * factors[1] < config.verify_size
    return checked


def needs_verification(factors: Sequence[float], config: ScaleConfig) -> bool:
    """Whether an image with these pass factors is checked against coarser views (12 MP and more)."""
    return len(factors) - 1 >= config.verify_passes


def _seen(boxes: np.ndarray, evidence: np.ndarray, iou: float) -> np.ndarray:
    """``(N,)`` bool: boxes overlapping one of ``evidence`` by at least ``iou``."""
    if len(boxes) == 0 or len(evidence) == 0:
        return np.zeros(len(boxes), dtype=bool)
    return (box_iou(boxes, evidence) >= iou).any(axis=1)


def _inside_any(boxes: np.ndarray, containers: np.ndarray, share: float, ratio: float = 1.0) -> np.ndarray:
    """``(N,)`` bool: boxes with at least ``share`` of their area inside one of ``containers`` that is at
    least ``ratio`` times their area."""
    if len(boxes) == 0 or len(containers) == 0:
        return np.zeros(len(boxes), dtype=bool)
    overlap = box_intersection(boxes, containers)
    area = np.maximum(box_area(boxes), 1e-6)
    larger = box_area(containers)[None, :] >= ratio * area[:, None]
    return ((overlap / area[:, None] >= share) & larger).any(axis=1)


def _holds_any(boxes: np.ndarray, inner: np.ndarray, share: float) -> np.ndarray:
    """``(N,)`` bool: boxes that hold at least ``share`` of the area of one of ``inner``."""
    if len(boxes) == 0 or len(inner) == 0:
        return np.zeros(len(boxes), dtype=bool)
    overlap = box_intersection(boxes, inner)
    return (overlap / np.maximum(box_area(inner), 1e-6)[None, :] >= share).any(axis=1)


def rotate_image(image: np.ndarray, angle: int) -> np.ndarray:
    """``image`` turned ``angle`` degrees counter-clockwise (a multiple of 90), contiguous."""
    if angle % 90:
        raise ValueError(f"orientation angles are multiples of 90 degrees, got {angle}")
    k = (angle // 90) % 4
    return image if k == 0 else np.ascontiguousarray(np.rot90(image, k))


def points_to_original(points: np.ndarray, angle: int, height: int, width: int) -> np.ndarray:
    """``(..., 2)`` points of the image turned by ``angle`` mapped back onto the ``height`` x ``width`` original."""
    x, y = points[..., 0], points[..., 1]
    k = (angle // 90) % 4
    if k == 0:
        return points
    if k == 1:  # turned counter-clockwise: its (x, y) is the original's (W - y, x)
        mapped = (width - y, x)
    elif k == 2:
        mapped = (width - x, height - y)
    else:
        mapped = (y, height - x)
    return np.stack(mapped, axis=-1).astype(points.dtype)


def faces_to_original(faces: Faces, angle: int, height: int, width: int) -> Faces:
    """Faces found in the image turned by ``angle``, in the original's frame and tagged with ``angle``."""
    corners = faces.boxes.reshape(-1, 2, 2)
    mapped = points_to_original(corners, angle, height, width)
    boxes = np.concatenate([mapped.min(axis=1), mapped.max(axis=1)], axis=1)
    landmarks = points_to_original(faces.landmarks, angle, height, width)
    angles = np.full(len(faces), angle % 360, dtype=np.int64)
    return Faces(boxes, faces.scores, landmarks, faces.meshes if angle % 360 == 0 else None, angles)


def nms_merge(parts: Sequence[Faces], nms_threshold: float, max_detections: int) -> Faces:
    """One result from the faces of several passes (scales or orientations): NMS over their union, best first."""
    union = Faces.merge(list(parts))
    return union[nms(union.boxes, union.scores, nms_threshold)[:max_detections]]
