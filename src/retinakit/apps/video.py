"""Detection over a video or camera: every processed frame through the detector's stream, one record each."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from retinakit.detector import Detector
from retinakit.errors import VideoError
from retinakit.io.batching import Progress
from retinakit.io.draw import draw_faces
from retinakit.io.formats import to_records
from retinakit.io.video import Frame, camera_index, frame_image, open_capture, open_writer, read_frames

if TYPE_CHECKING:
    from retinakit.apps.track import FaceTracker


def detect_video(
    source: str | os.PathLike,
    detector: Detector,
    every: int = 1,
    annotated: str | os.PathLike | None = None,
    progress: Progress | None = None,
    tracker: FaceTracker | None = None,
) -> Iterator[dict[str, Any]]:
    """One record per processed frame: ``source, frame, time, width, height, faces``.

    Frames are sent to the detector ``batch_size`` at a time. ``annotated``: write an annotated
    MP4 there (at the source frame rate divided by ``every``). A video file that ends before the
    frame count its header gives (truncated or corrupt) raises :class:`VideoError` after the
    records of the frames it had, so no partial run passes for a complete one. ``tracker``: a
    :class:`~retinakit.apps.track.FaceTracker` fed every processed frame; the faces are then the
    tracked faces detected in that frame, each with its ``track_id`` (run the detector at the
    tracker's ``low_threshold``). A frame whose detection fails gives a record with ``error``
    instead of ``faces``; a frame that cannot be decoded is skipped. With the detector's ``detail`` at
    ``"auto"``, the detail scale is measured once, on the first decodable frame, and held for the whole
    video.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    capture = open_capture(source)
    writer = None
    try:
        expected = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if camera_index(source) is None else 0
        total = -(-expected // every) if expected > 0 else 0
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        frames: Iterable[Frame] = read_frames(capture, every)
        if progress is not None:
            frames = progress(frames, total)
        name = os.fspath(source)
        detector, frames = per_video_detail(detector, frames)
        last = -1
        for outcome in detector.stream(frames, frame_image, readahead=0):
            if outcome.error is not None or outcome.image is None or outcome.faces is None:
                if not isinstance(outcome.error, VideoError):  # its detection failed: that frame's error
                    yield {
                        "source": name,
                        "frame": outcome.item[0],
                        "time": round(outcome.item[1], 4),
                        "error": outcome.reason,
                    }
                continue  # a frame that cannot be decoded: skipped, the end check below still holds
            index, seconds, frame = outcome.item[0], outcome.item[1], outcome.image
            faces, ids = outcome.faces, None
            if tracker is not None:
                tracked = tracker.update(faces)
                faces, ids = tracked.faces[tracked.detected], tracked.track_ids[tracked.detected]
            if annotated is not None:
                writer = writer or open_writer(annotated, fps / every, (frame.shape[1], frame.shape[0]))
                writer.write(draw_faces(frame, faces))
            last = index
            yield _frame_record(name, index, seconds, frame, faces, ids)
        # header frame counts of some containers are estimates: allow two frames of slack
        if expected > 0 and last + every + 2 < expected:
            raise VideoError(f"{name}: the video ends after frame {last + 1} of {expected} (truncated or corrupt file)")
    finally:
        capture.release()
        if writer is not None:
            writer.release()


def per_video_detail(detector: Detector, frames: Iterable[Frame]) -> tuple[Detector, Iterator[Frame]]:
    """With ``detail="auto"``, the detector fixed at the detail scale of the video's first decodable frame,
    so that every frame takes the same passes (a borderline source measured frame by frame could switch
    between the sharp and the upscaled paths); the frames unchanged. A flat first frame (black) gives 1,
    the sharp path, which loses no face; a frame that cannot be measured leaves the detector as it is
    (each frame then measured, and a failure that frame's error)."""
    frames = iter(frames)
    if detector.config.detail != "auto":
        return detector, frames
    head: list[Frame] = []
    for frame in frames:
        head.append(frame)
        if frame[2] is not None:
            try:
                detail = detector.detail_scale(frame[2])
            except Exception:  # an odd frame: the stream reports it, with the frame's index
                return detector, itertools.chain(head, frames)
            return detector.with_options(detail=detail), itertools.chain(head, frames)
    return detector, iter(head)


def _frame_record(
    name: str, index: int, seconds: float, frame: np.ndarray, faces: Any, ids: np.ndarray | None
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "source": name,
        "frame": index,
        "time": round(seconds, 4),
        "width": int(frame.shape[1]),
        "height": int(frame.shape[0]),
        "faces": to_records(faces),
    }
    if ids is not None:
        for face_record, track_id in zip(record["faces"], ids.tolist(), strict=True):
            face_record["track_id"] = track_id
    return record
