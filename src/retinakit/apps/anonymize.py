"""Face anonymization: blur, pixelate or paint over every face in images and videos.

Pure functions on numpy images (:func:`anonymize_image`, :func:`hide_mask`) and the file job
behind ``retinakit anonymize`` (:func:`anonymize_paths`): images and videos in, anonymized copies
plus one JSON sidecar per output listing what was hidden. In videos a :class:`FaceTracker`
bridges frames in which the detector misses a face, so it stays hidden through short gaps.

The default detection threshold, :data:`DEFAULT_THRESHOLD` = 0.3, is chosen for recall: a
missed face is a privacy failure while a false positive only blurs a patch of background.
See the README section for how it was chosen (on the training subset, not on val-dev).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from retinakit.apps.files import OutputNames
from retinakit.apps.track import FaceTracker, TrackerConfig
from retinakit.apps.video import per_video_detail
from retinakit.core.images import read_image
from retinakit.detector import Detector
from retinakit.errors import VideoError
from retinakit.io.batching import Progress, no_progress
from retinakit.io.inputs import IMAGE_SUFFIXES, list_images
from retinakit.io.video import VIDEO_SUFFIXES, Frame, frame_image, open_capture, open_writer, read_frames
from retinakit.ops.masks import AnonymizeConfig, anonymize_image, face_regions
from retinakit.result import Faces

#: Detection threshold for anonymization (recall first; see the module docstring).
DEFAULT_THRESHOLD = 0.3


# ---------------------------------------------------------------- the file / video job


def list_inputs(paths: Sequence[str | os.PathLike]) -> tuple[list[Path], list[Path]]:
    """Images and videos named by ``paths`` (files, directories searched recursively, glob patterns)."""
    images: list[Path] = []
    videos: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file())
            images += [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES]
            videos += [p for p in found if p.suffix.lower() in VIDEO_SUFFIXES]
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            videos.append(path)
        else:
            images.extend(list_images([item]))
    return images, videos


def _face_records(faces: Faces, config: AnonymizeConfig, extra: dict[str, np.ndarray] | None = None) -> list[dict]:
    regions = face_regions(faces.boxes, config.margin)
    records = []
    for i in range(len(faces)):
        record: dict[str, Any] = {
            "box": np.round(faces.boxes[i].astype(np.float64), 2).tolist(),
            "score": round(float(faces.scores[i]), 4),
            "region": np.round(regions[i], 2).tolist(),
        }
        for key, values in (extra or {}).items():
            record[key] = values[i].item()
        records.append(record)
    return records


def _write_sidecar(output: Path, content: dict[str, Any]) -> Path:
    sidecar = output.with_name(output.name + ".json")
    sidecar.write_text(json.dumps(content, indent=1))
    return sidecar


def write_still(
    path: Path, output: Path, image: np.ndarray, faces: Faces, config: AnonymizeConfig, threshold: float
) -> dict[str, Any]:
    """Write the anonymized copy of one image into ``output`` (+ ``output.json``); returns the sidecar content."""
    faces = faces[faces.scores >= threshold]
    output.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(output), anonymize_image(image, faces.boxes, config)):
        raise OSError(f"{output}: cannot write image")
    content = {
        "source": str(path),
        "output": str(output),
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "threshold": threshold,
        "settings": asdict(config),
        "faces": _face_records(faces, config),
    }
    _write_sidecar(output, content)
    return content


class _VideoOut:
    """The anonymized copy of a video as it is written: frames, bad frames and the sidecar's face list."""

    def __init__(self, output: Path, fps: float, config: AnonymizeConfig) -> None:
        self.output, self.fps, self.config = output, fps, config
        self.writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        self.frames: list[dict[str, Any]] = []
        self.bad_frames: list[int] = []

    def bad(self, index: int) -> None:
        """A frame that cannot be decoded: written black (once the size is known)."""
        self.bad_frames.append(index)
        if self.writer is not None and self.size is not None:
            self.writer.write(np.zeros((self.size[1], self.size[0], 3), np.uint8))

    def good(self, index: int, frame: np.ndarray, shown: Faces, extra: dict[str, np.ndarray] | None) -> None:
        if self.writer is None:
            self.size = (frame.shape[1], frame.shape[0])
            self.writer = open_writer(self.output, self.fps, self.size)
            for _ in self.bad_frames:  # the leading bad frames, as black frames
                self.writer.write(np.zeros((self.size[1], self.size[0], 3), np.uint8))
        assert self.size is not None
        hidden = anonymize_image(frame, shown.boxes, self.config)
        self.writer.write(hidden if hidden.shape[1::-1] == self.size else cv2.resize(hidden, self.size))
        if len(shown):
            self.frames.append({"frame": index, "faces": _face_records(shown, self.config, extra)})

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


def anonymize_video(
    source: Path,
    output: Path,
    detector: Detector,
    config: AnonymizeConfig,
    threshold: float,
    tracker: TrackerConfig | None,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Anonymise a video into ``output`` (MP4, same frame rate and size, no audio) + ``output.json``.

    With ``tracker`` the detector should run at ``tracker.low_threshold`` or lower and faces are
    those of :class:`FaceTracker` (``threshold`` is its ``high_threshold``), including boxes
    predicted through short gaps; without it, each frame's faces scoring at least ``threshold``.
    A frame that cannot be decoded, or whose detection fails, is written black and listed in
    ``bad_frames`` (a face is never shown unhidden). The sidecar's
    ``frames`` lists the frames in which something was hidden. With the detector's ``detail`` at
    ``"auto"``, the detail scale of the first decodable frame holds for the whole video (the sidecar's
    ``detail``).
    """
    capture = open_capture(source)
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    follow = FaceTracker(tracker) if tracker is not None else None
    out = _VideoOut(output, fps, config)
    count = 0
    try:
        frames: Iterable[Frame] = progress(read_frames(capture), total)
        detector, frames = per_video_detail(detector, frames)
        for outcome in detector.stream(frames, frame_image, readahead=0):
            index = outcome.item[0]
            count = index + 1
            if outcome.error is not None or outcome.faces is None or outcome.image is None:
                # not decodable, or its detection failed: written black (never shown unhidden), listed
                out.bad(index)
                _faces_to_hide(Faces.empty(), follow, threshold)
                continue
            shown, extra = _faces_to_hide(outcome.faces, follow, threshold)
            out.good(index, outcome.image, shown, extra)
    finally:
        capture.release()
        out.close()
    if out.size is None:
        raise VideoError(f"{source}: no frame could be decoded")
    content = {
        "source": str(source),
        "output": str(output),
        "width": out.size[0],
        "height": out.size[1],
        "fps": fps,
        "frame_count": count,
        "threshold": threshold,
        "tracking": asdict(tracker) if tracker is not None else None,
        "detail": detector.config.detail,
        "settings": asdict(config),
        "bad_frames": out.bad_frames,
        "frames": out.frames,
    }
    _write_sidecar(output, content)
    return content


def _faces_to_hide(
    faces: Faces, tracker: FaceTracker | None, threshold: float
) -> tuple[Faces, dict[str, np.ndarray] | None]:
    """The faces to hide in this frame, and the per-face sidecar fields the tracker adds."""
    if tracker is None:
        return faces[faces.scores >= threshold], None
    tracked = tracker.update(faces)
    return tracked.faces, {"track_id": tracked.track_ids, "detected": tracked.detected}


def anonymize_paths(
    paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    detector: Detector,
    *,
    video_detector: Detector | None = None,
    config: AnonymizeConfig | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    tracker: TrackerConfig | None = None,
    root: Path | None = None,
    progress: Progress = no_progress,
) -> Iterator[dict[str, Any]]:
    """Anonymise every image and video named by ``paths`` into ``out_dir``; one summary record each.

    Images keep their name and format, named as ``retinakit detect`` names its outputs
    (:class:`~retinakit.apps.files.OutputNames`: the path below ``root``, by default the common folder of
    the inputs, so a single input or one folder's images land directly in ``out_dir``), videos become
    ``out_dir/<name>.mp4``; each output gets a ``<output>.json`` sidecar. Records are ``source,
    output, faces`` (faces hidden; for videos, face-frames) plus ``bad_frames`` for videos, or
    ``source, error`` -- a broken input is reported and the others are processed.
    ``video_detector``: used for videos (default ``detector``; e.g. without test-time augmentation).
    """
    config = config or AnonymizeConfig()
    images, videos = list_inputs(paths)
    out = Path(out_dir)
    names = OutputNames(images, root)
    stream = detector.stream(progress(images, len(images)), read_image) if images else ()
    for outcome in stream:
        path = outcome.item
        rel = names.relative(path)
        target = out / (rel if path.suffix else rel.with_name(rel.name + ".jpg"))
        try:
            names.claim(target, path)
            if outcome.error is not None or outcome.image is None or outcome.faces is None:
                raise outcome.error or ValueError("no result")
            content = write_still(path, target, outcome.image, outcome.faces, config, threshold)
        except Exception as exc:  # reported per file, the run goes on
            yield {"source": str(path), "error": str(getattr(exc, "reason", None) or exc)}
            continue
        yield {"source": str(path), "output": str(target), "faces": len(content["faces"])}
    for video in videos:
        target = out / f"{video.stem}.mp4"
        try:
            content = anonymize_video(video, target, video_detector or detector, config, threshold, tracker, progress)
        except Exception as exc:
            yield {"source": str(video), "error": str(exc)}
            continue
        record: dict[str, Any] = {
            "source": str(video),
            "output": str(target),
            "faces": sum(len(f["faces"]) for f in content["frames"]),
            "bad_frames": content["bad_frames"],
        }
        bad = content["bad_frames"]
        if bad:
            listed = f"{bad[:10]}{' ...' if len(bad) > 10 else ''}"
            record["error"] = f"{len(bad)} frame(s) could not be decoded or detected (written black): {listed}"
        yield record


#: The spellings of earlier releases, kept for one release.
anonymise_paths = anonymize_paths
anonymise_video = anonymize_video
