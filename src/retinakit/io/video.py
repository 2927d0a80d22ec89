"""Video and camera input and output with OpenCV: sources, the one frame reader and the one writer."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from retinakit.errors import VideoError

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


#: One frame of :func:`read_frames`: ``(index, seconds, BGR image or None when it cannot be decoded)``.
Frame = tuple[int, float, np.ndarray | None]


def frame_image(frame: Frame) -> np.ndarray:
    """The image of a :data:`Frame`; raises :class:`VideoError` for a frame that could not be decoded."""
    if frame[2] is None:
        raise VideoError(f"frame {frame[0]}: cannot be decoded")
    return frame[2]


def read_frames(capture: cv2.VideoCapture, every: int = 1, max_bad: int = 25) -> Iterator[Frame]:
    """``(frame index, time in seconds, BGR frame)`` of every ``every``-th frame, in order.

    A frame that cannot be decoded gives ``None`` while the container says more frames follow;
    reading stops at the end, or after ``max_bad`` bad frames in a row (a truncated file). Frames
    between the ``every``-th ones are skipped without decoding.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    index = bad = 0
    while True:
        wanted = index % every == 0
        ok, frame = capture.read() if wanted else (capture.grab(), None)
        bad = 0 if ok else bad + 1
        if not ok and (index >= total or bad > max_bad):
            return
        if wanted:
            seconds = index / fps if fps > 0 else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            yield index, seconds, frame if ok else None
        index += 1


def open_writer(output: str | os.PathLike, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    """An MP4 (``mp4v``) writer of ``size`` = ``(width, height)`` frames; raises :class:`VideoError`."""
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(output), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise VideoError(f"{output}: cannot write video")
    return writer
