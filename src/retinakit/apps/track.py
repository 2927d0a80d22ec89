"""Face tracking: a stable ID per face across video frames (ByteTrack-style, numpy only).

Each track carries a Kalman filter on its box (state ``cx, cy, a, h`` and their velocities,
``a = w / h``, the constant-velocity model and noise weights of ByteTrack / DeepSORT). Every frame:

1. all tracks are predicted one frame ahead;
2. detections scoring at least ``high_threshold`` are matched to confirmed tracks (active or lost)
   by IoU with the predicted boxes;
3. detections between ``low_threshold`` and ``high_threshold`` (blurred, occluded or turned faces)
   are matched to the confirmed tracks that were seen in the previous frame and are still
   unmatched, at the stricter ``low_match_iou`` -- ByteTrack's second stage, which keeps a track
   alive through a dip in score without letting low-score clutter start tracks;
4. tentative tracks (born in the previous frame) are matched to the remaining high detections;
   a tentative track that misses its second frame is dropped;
5. remaining high detections start tentative tracks (confirmed at once in the first frame);
   a track becomes confirmed after ``min_hits`` matched frames and dies after ``max_lost``
   frames without a match.

Assignment is greedy by descending IoU, not Hungarian: scipy is not a base dependency, and with
IoU gating the two differ only when several boxes overlap each other heavily, where the motion
model has already ordered the candidates. Landmarks are smoothed in box-relative coordinates
(an exponential moving average of where the points sit inside the box), so smoothing removes
jitter without lagging behind a moving face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retinakit.core.boxes import box_iou
from retinakit.result import Faces

_STD_POSITION = 1.0 / 20  # ByteTrack's noise weights, relative to the box height
_STD_VELOCITY = 1.0 / 160


@dataclass(frozen=True)
class TrackerConfig:
    """How detections become tracks.

    ``high_threshold``: detections at or above it are matched first and may start tracks.
    ``low_threshold``: detections below it are ignored; those between the two only extend tracks
    that were seen in the previous frame (``low_match_iou``). ``match_iou``: minimum IoU between
    a predicted track box and a detection in the other stages. ``min_hits``: matched frames before
    a new track is confirmed. ``max_lost``: frames a track survives unmatched (its ID is kept if
    the face returns). ``bridge_frames``: frames a lost track's predicted box is still reported
    (``detected=False``), so that a face missed for a few frames stays hidden when anonymizing.
    ``landmark_smoothing``: weight of the new frame's landmarks in the moving average (1 = none).
    """

    high_threshold: float = 0.5
    low_threshold: float = 0.1
    match_iou: float = 0.2
    low_match_iou: float = 0.5
    min_hits: int = 2
    max_lost: int = 30
    bridge_frames: int = 10
    landmark_smoothing: float = 0.6

    def __post_init__(self) -> None:
        if not 0 <= self.low_threshold <= self.high_threshold <= 1:
            raise ValueError(
                f"need 0 <= low_threshold <= high_threshold <= 1, got {self.low_threshold}, {self.high_threshold}"
            )
        if not (0 < self.match_iou <= 1 and 0 < self.low_match_iou <= 1 and 0 < self.landmark_smoothing <= 1):
            raise ValueError("match_iou, low_match_iou and landmark_smoothing must be in (0, 1]")
        if self.min_hits < 1 or self.max_lost < 0 or not 0 <= self.bridge_frames <= self.max_lost:
            raise ValueError("need min_hits >= 1, max_lost >= 0 and 0 <= bridge_frames <= max_lost")


@dataclass(frozen=True, eq=False)
class TrackedFaces:
    """The faces of one frame with their track IDs.

    ``faces``: boxes, scores, landmarks (smoothed) of the tracked faces. ``track_ids``: ``(N,)``
    int64, stable across frames. ``detected``: ``(N,)`` bool, False where the face was not detected
    in this frame and the box is the motion model's prediction (a bridged gap; score is the track's
    last detection score).
    """

    faces: Faces
    track_ids: np.ndarray
    detected: np.ndarray

    def __len__(self) -> int:
        return len(self.faces)


# ---------------------------------------------------------------- Kalman filter on xyah boxes

_F = np.eye(8)
_F[:4, 4:] = np.eye(4)


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    """``(N, 4)`` xyxy -> centre x, centre y, aspect w/h, height."""
    w = boxes[:, 2] - boxes[:, 0]
    h = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-6)
    return np.stack([boxes[:, 0] + w / 2, boxes[:, 1] + h / 2, w / h, h], axis=1).astype(np.float64)


def xyah_to_xyxy(state: np.ndarray) -> np.ndarray:
    """``(N, >=4)`` centre x, centre y, aspect, height -> ``(N, 4)`` xyxy."""
    h = np.maximum(state[:, 3], 0.0)
    w = state[:, 2] * h
    return np.stack([state[:, 0] - w / 2, state[:, 1] - h / 2, state[:, 0] + w / 2, state[:, 1] + h / 2], axis=1)


def kalman_initiate(measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(N, 8)`` and covariance ``(N, 8, 8)`` of new tracks from xyah measurements ``(N, 4)``."""
    n = len(measurements)
    mean = np.concatenate([measurements, np.zeros((n, 4))], axis=1)
    std = _std(measurements[:, 3], 2 * _STD_POSITION, 10 * _STD_VELOCITY)
    return mean, _diag(std**2)


def kalman_predict(mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One constant-velocity step for all tracks at once."""
    std = _std(mean[:, 3], _STD_POSITION, _STD_VELOCITY)
    return mean @ _F.T, _F @ cov @ _F.T + _diag(std**2)


def kalman_update(mean: np.ndarray, cov: np.ndarray, measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correct tracks ``(N, 8)`` with their matched xyah measurements ``(N, 4)``."""
    std = _std(mean[:, 3], _STD_POSITION, 0.0)[:, :4]
    std[:, 2] = 1e-1
    projected_cov = cov[:, :4, :4] + _diag(std**2)
    gain = np.linalg.solve(projected_cov, cov[:, :4, :]).transpose(0, 2, 1)  # cov H^T S^-1 (S symmetric)
    innovation = measurements - mean[:, :4]
    new_mean = mean + np.einsum("nij,nj->ni", gain, innovation)
    new_cov = cov - gain @ projected_cov @ gain.transpose(0, 2, 1)
    return new_mean, new_cov


def _std(height: np.ndarray, position: float, velocity: float) -> np.ndarray:
    """``(N, 8)`` standard deviations proportional to the box height; fixed small ones for the aspect."""
    std = height[:, None] * np.array([position] * 4 + [velocity] * 4)
    std[:, 2], std[:, 6] = 1e-2, 1e-5
    return std


def _diag(values: np.ndarray) -> np.ndarray:
    out = np.zeros((*values.shape, values.shape[-1]))
    idx = np.arange(values.shape[-1])
    out[..., idx, idx] = values
    return out


# ---------------------------------------------------------------- assignment


def greedy_assign(iou: np.ndarray, min_iou: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(rows, cols)`` chosen greedily by descending IoU, each row and column at most once.

    Pairs below ``min_iou`` are never chosen. Ties keep the lower row, then column, first.
    """
    rows, cols = np.nonzero(iou >= min_iou)
    order = np.lexsort((cols, rows, -iou[rows, cols]))
    used_r: set[int] = set()
    used_c: set[int] = set()
    out_r, out_c = [], []
    for r, c in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            out_r.append(r)
            out_c.append(c)
    return np.asarray(out_r, dtype=np.int64), np.asarray(out_c, dtype=np.int64)


# ---------------------------------------------------------------- tracker


class FaceTracker:
    """Stable face IDs across frames; call :meth:`update` once per frame, in order.

    >>> import skimage.data
    >>> from retinakit import Detector
    >>> detector = Detector(score_threshold=TrackerConfig.low_threshold)  # the tracker's second stage
    >>> frames = [skimage.data.astronaut()[:, :, ::-1]] * 3                # BGR frames, in order
    >>> tracker = FaceTracker()
    >>> for frame in frames:
    ...     tracked = tracker.update(detector.detect_bgr([frame])[0])
    >>> tracked.track_ids.tolist(), tracked.detected.tolist()             # the same face, ID 1 throughout
    ([1], [True])
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.reset()

    def reset(self) -> None:
        """Forget all tracks (IDs restart at 1)."""
        self._next_id = 1
        self._frame = 0
        self.ids = np.zeros(0, dtype=np.int64)
        self.mean = np.zeros((0, 8))
        self.cov = np.zeros((0, 8, 8))
        self.hits = np.zeros(0, dtype=np.int64)  # matched frames so far
        self.lost = np.zeros(0, dtype=np.int64)  # frames since the last match (0: matched this frame)
        self.confirmed = np.zeros(0, dtype=bool)
        self.scores = np.zeros(0, dtype=np.float32)
        self.shape = np.zeros((0, 5, 2))  # landmarks relative to the box: (point - top left) / (w, h)

    def __len__(self) -> int:
        return len(self.ids)

    def update(self, faces: Faces) -> TrackedFaces:
        """Match this frame's detections to the tracks; returns the tracked faces of this frame.

        ``faces`` should come from a detector run at ``low_threshold`` or lower. Returned: matched
        and newly born tracks with their detection boxes (``detected=True``), then confirmed tracks
        lost for at most ``bridge_frames`` frames with their predicted boxes (``detected=False``).
        """
        cfg = self.config
        self._frame += 1
        keep = faces.scores >= cfg.low_threshold
        boxes = faces.boxes[keep].astype(np.float64)
        scores = faces.scores[keep]
        points = faces.landmarks[keep].astype(np.float64)
        high = scores >= cfg.high_threshold
        self._predict()
        det_of_track, free_det = self._match(boxes, high)
        det_of_track = self._correct(det_of_track, boxes, scores, points)
        born = np.flatnonzero(high & free_det)
        self._add(boxes[born], scores[born], points[born], confirmed=self._frame == 1 or cfg.min_hits == 1)
        return self._report(np.concatenate([det_of_track, born]), boxes)

    def _predict(self) -> None:
        """Move every track one frame ahead (a lost track keeps its size, as in ByteTrack)."""
        if len(self.ids):
            self.mean[self.lost > 0, 7] = 0.0
            self.mean, self.cov = kalman_predict(self.mean, self.cov)

    def _match(self, boxes: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The three matching stages (module doc, steps 2-4): each track's detection index (-1: none)
        and which detections are still unmatched."""
        cfg = self.config
        predicted = xyah_to_xyxy(self.mean)
        det_of_track = np.full(len(self.ids), -1, dtype=np.int64)
        free_det = np.ones(len(boxes), dtype=bool)

        def stage(tracks: np.ndarray, dets: np.ndarray, min_iou: float) -> None:
            if not len(tracks) or not len(dets):
                return
            r, c = greedy_assign(box_iou(predicted[tracks], boxes[dets]), min_iou)
            det_of_track[tracks[r]] = dets[c]
            free_det[dets[c]] = False

        stage(np.flatnonzero(self.confirmed), np.flatnonzero(high), cfg.match_iou)
        recent = self.confirmed & (self.lost == 0) & (det_of_track < 0)  # seen in the previous frame
        stage(np.flatnonzero(recent), np.flatnonzero(~high), cfg.low_match_iou)
        stage(np.flatnonzero(~self.confirmed), np.flatnonzero(high & free_det), cfg.match_iou)
        return det_of_track, free_det

    def _correct(
        self, det_of_track: np.ndarray, boxes: np.ndarray, scores: np.ndarray, points: np.ndarray
    ) -> np.ndarray:
        """Update the matched tracks with their detections, count hits and misses, drop dead tracks;
        returns ``det_of_track`` of the surviving ones."""
        cfg = self.config
        matched = det_of_track >= 0
        t, d = np.flatnonzero(matched), det_of_track[matched]
        if len(t):
            self.mean[t], self.cov[t] = kalman_update(self.mean[t], self.cov[t], xyxy_to_xyah(boxes[d]))
            a = cfg.landmark_smoothing
            self.shape[t] = a * _to_box_frame(points[d], boxes[d]) + (1 - a) * self.shape[t]
            self.scores[t] = scores[d]
        self.hits[matched] += 1
        self.lost[matched] = 0
        self.lost[~matched] += 1
        self.confirmed |= self.hits >= cfg.min_hits
        alive = (self.confirmed & (self.lost <= cfg.max_lost)) | (~self.confirmed & matched)
        self._select(alive)
        return det_of_track[alive]

    def _report(self, det_of_track: np.ndarray, boxes: np.ndarray) -> TrackedFaces:
        """The seen tracks with their detection boxes, then the bridged ones with their predicted boxes."""
        seen = det_of_track >= 0
        bridged = ~seen & self.confirmed & (self.lost <= self.config.bridge_frames)
        shown = np.concatenate([np.flatnonzero(seen), np.flatnonzero(bridged)])
        shown_boxes = np.concatenate([boxes[det_of_track[seen]], xyah_to_xyxy(self.mean[bridged])])
        out = Faces(shown_boxes, self.scores[shown], _from_box_frame(self.shape[shown], shown_boxes))
        detected = np.arange(len(shown)) < seen.sum()
        return TrackedFaces(out, self.ids[shown].copy(), detected)

    def _select(self, mask: np.ndarray) -> None:
        for name in ("ids", "mean", "cov", "hits", "lost", "confirmed", "scores", "shape"):
            setattr(self, name, getattr(self, name)[mask])

    def _add(self, boxes: np.ndarray, scores: np.ndarray, points: np.ndarray, confirmed: bool) -> None:
        n = len(boxes)
        mean, cov = kalman_initiate(xyxy_to_xyah(boxes))
        new = {
            "ids": np.arange(self._next_id, self._next_id + n, dtype=np.int64),
            "mean": mean,
            "cov": cov,
            "hits": np.ones(n, dtype=np.int64),
            "lost": np.zeros(n, dtype=np.int64),
            "confirmed": np.full(n, confirmed),
            "scores": scores.astype(np.float32),
            "shape": _to_box_frame(points, boxes),
        }
        self._next_id += n
        for name, values in new.items():
            setattr(self, name, np.concatenate([getattr(self, name), values]))


def _to_box_frame(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    wh = np.maximum(boxes[:, None, 2:4] - boxes[:, None, 0:2], 1e-6)
    return (points - boxes[:, None, 0:2]) / wh


def _from_box_frame(shape: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    return boxes[:, None, 0:2] + shape * (boxes[:, None, 2:4] - boxes[:, None, 0:2])
