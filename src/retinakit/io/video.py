"""Video and camera input: frames decoded with OpenCV, batched through the detector, one record each."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from retinakit.detector import Detector
from retinakit.errors import VideoError
from retinakit.io.draw import draw_faces
from retinakit.io.formats import to_records
from retinakit.io.readahead import Progress, same_shape_batches

if TYPE_CHECKING:
    from retinakit.apps.track import FaceTracker

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})


def camera_index(source: str | os.PathLike) -> int | None:
    """The camera a source names: ``"camera:N"``, or a bare ``"N"`` when no file or folder ``N`` exists; else None.

    Existing paths win, so a folder named ``2023`` is read as a folder, never opened as a camera.
    """
    text = os.fspath(source)
    if text.lower().startswith("camera:") and text[7:].isdigit():
        return int(text[7:])
    if text.isdigit() and not Path(text).exists():
        return int(text)
    return None


def is_video_source(source: str | os.PathLike) -> bool:
    """True for a camera (see :func:`camera_index`) or a name with a video extension that is not a folder."""
    text = os.fspath(source)
    if camera_index(text) is not None:
        return True
    return Path(text).suffix.lower() in VIDEO_SUFFIXES and not Path(text).is_dir()


def open_capture(source: str | os.PathLike) -> cv2.VideoCapture:
    """An opened ``cv2.VideoCapture`` for a file or camera (``camera:N``); raises :class:`VideoError`."""
    text = os.fspath(source)
    camera = camera_index(text)
    if camera is None and not Path(text).is_file():
        raise VideoError(f"{text}: no such video file")
    capture = cv2.VideoCapture(text if camera is None else camera)
    if not capture.isOpened():
        what = "video (unsupported codec or corrupt file)" if camera is None else f"camera {camera}"
        raise VideoError(f"{text}: cannot open {what}")
    return capture


def iter_frames(capture: cv2.VideoCapture, every: int = 1) -> Iterator[tuple[int, float, np.ndarray]]:
    """``(frame index, time in seconds, BGR frame)`` of every ``every``-th frame, in order."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    index = 0
    while True:
        if index % every == 0:
            ok, frame = capture.read()
            if not ok:
                return
            msec = capture.get(cv2.CAP_PROP_POS_MSEC)
            seconds = index / fps if fps > 0 else msec / 1000.0
            yield index, seconds, frame
        elif not capture.grab():
            return
        index += 1


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
    tracker's ``low_threshold``).
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    capture = open_capture(source)
    writer = None
    try:
        expected = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if camera_index(source) is None else 0
        total = -(-expected // every) if expected > 0 else 0
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        frames: Iterable[tuple[int, float, np.ndarray]] = iter_frames(capture, every)
        if progress is not None:
            frames = progress(frames, total)
        name = os.fspath(source)
        last = -1
        batches = same_shape_batches(
            frames,
            lambda item: item[2],
            detector.config.batch_size,
            detector.config.batch_pixels,
            detector.input_pixels,
        )
        for batch in batches:
            results = detector.detect_bgr([f for _, _, f in batch])
            for (index, seconds, frame), faces in zip(batch, results, strict=True):
                ids = None
                if tracker is not None:
                    tracked = tracker.update(faces)
                    faces, ids = tracked.faces[tracked.detected], tracked.track_ids[tracked.detected]
                if annotated is not None:
                    if writer is None:
                        Path(annotated).parent.mkdir(parents=True, exist_ok=True)
                        h, w = frame.shape[:2]
                        fourcc = cv2.VideoWriter.fourcc(*"mp4v")
                        writer = cv2.VideoWriter(str(annotated), fourcc, fps / every, (w, h))
                        if not writer.isOpened():
                            raise VideoError(f"{annotated}: cannot write video")
                    writer.write(draw_faces(frame, faces))
                last = index
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
                yield record
        # header frame counts of some containers are estimates: allow two frames of slack
        if expected > 0 and last + every + 2 < expected:
            raise VideoError(f"{name}: the video ends after frame {last + 1} of {expected} (truncated or corrupt file)")
    finally:
        capture.release()
        if writer is not None:
            writer.release()
