"""Face anonymisation: blur, pixelate or paint over every face in images and videos.

Pure functions on numpy images (:func:`anonymise_image`, :func:`hide_mask`) and the file job
behind ``retinakit anonymise`` (:func:`anonymise_paths`): images and videos in, anonymised copies
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from retinakit.apps.files import output_name
from retinakit.apps.track import FaceTracker, TrackerConfig
from retinakit.detector import Detector
from retinakit.errors import VideoError
from retinakit.io.images import as_array, read_image
from retinakit.io.inputs import IMAGE_SUFFIXES, list_images
from retinakit.io.readahead import Progress, no_progress, same_shape_batches
from retinakit.io.video import VIDEO_SUFFIXES, open_capture
from retinakit.result import Faces

Method = Literal["blur", "pixelate", "solid"]
Shape = Literal["ellipse", "rectangle"]

#: Detection threshold for anonymisation (recall first; see the module docstring).
DEFAULT_THRESHOLD = 0.3


@dataclass(frozen=True)
class AnonymiseConfig:
    """How a face is hidden.

    ``method``: ``blur`` (Gaussian), ``pixelate`` or ``solid`` (filled with ``color``, in the image's
    channel order). ``shape``: ``ellipse`` (inscribed in the enlarged box) or ``rectangle``.
    ``margin``: fraction of the box width / height added on each side (0.25: the ellipse still
    contains the corners of the face box, which an ellipse inscribed in the box itself would
    leave visible). ``blur_sigma``: Gaussian sigma as a fraction of the region's longer side.
    ``blocks``: pixelation cells across the region's longer side.
    """

    method: Method = "blur"
    shape: Shape = "ellipse"
    margin: float = 0.25
    blur_sigma: float = 0.125
    blocks: int = 8
    color: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self) -> None:
        if self.method not in ("blur", "pixelate", "solid") or self.shape not in ("ellipse", "rectangle"):
            raise ValueError(f"unknown method {self.method!r} or shape {self.shape!r}")
        if self.margin < 0 or self.blur_sigma <= 0 or self.blocks < 1:
            raise ValueError("need margin >= 0, blur_sigma > 0 and blocks >= 1")


# ---------------------------------------------------------------- pure functions on images


def face_regions(boxes: np.ndarray, margin: float) -> np.ndarray:
    """``(N, 4)`` xyxy boxes enlarged by ``margin`` times their width / height on each side."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    pad = (boxes[:, 2:4] - boxes[:, 0:2]) * margin
    return np.concatenate([boxes[:, 0:2] - pad, boxes[:, 2:4] + pad], axis=1)


def _pixel_window(region: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
    """Integer pixel window ``x0, y0, x1, y1`` (exclusive ends) covering ``region``, clipped to the image."""
    x0, y0 = max(0, int(np.floor(region[0]))), max(0, int(np.floor(region[1])))
    x1, y1 = min(width, int(np.ceil(region[2]))), min(height, int(np.ceil(region[3])))
    return x0, y0, x1, y1


def _shape_mask(region: np.ndarray, window: tuple[int, int, int, int], shape: Shape) -> np.ndarray:
    """Bool mask of the window: every pixel for a rectangle, pixels whose centre is inside the ellipse."""
    x0, y0, x1, y1 = window
    if shape == "rectangle":
        return np.ones((y1 - y0, x1 - x0), dtype=bool)
    cx, cy = (region[0] + region[2]) / 2, (region[1] + region[3]) / 2
    ax, ay = max((region[2] - region[0]) / 2, 0.5), max((region[3] - region[1]) / 2, 0.5)
    xs = (np.arange(x0, x1) + 0.5 - cx) / ax
    ys = (np.arange(y0, y1) + 0.5 - cy) / ay
    return ys[:, None] ** 2 + xs[None, :] ** 2 <= 1.0


def hide_mask(boxes: np.ndarray, height: int, width: int, config: AnonymiseConfig | None = None) -> np.ndarray:
    """``(height, width)`` bool: the pixels :func:`anonymise_image` changes for these boxes."""
    config = config or AnonymiseConfig()
    mask = np.zeros((height, width), dtype=bool)
    for region in face_regions(boxes, config.margin):
        window = _pixel_window(region, height, width)
        x0, y0, x1, y1 = window
        if x1 > x0 and y1 > y0:
            mask[y0:y1, x0:x1] |= _shape_mask(region, window, config.shape)
    return mask


def _hidden(crop: np.ndarray, config: AnonymiseConfig) -> np.ndarray:
    """The crop with its content destroyed by ``config.method`` (same shape and dtype)."""
    h, w = crop.shape[:2]
    if config.method == "solid":
        out = np.empty_like(crop)
        out[...] = np.asarray(config.color, dtype=crop.dtype)[: crop.shape[2]] if crop.ndim == 3 else config.color[0]
        return out
    if config.method == "pixelate":
        cells = max(1, config.blocks)
        small_w, small_h = max(1, round(cells * w / max(h, w))), max(1, round(cells * h / max(h, w)))
        small = cv2.resize(crop, (small_w, small_h), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    # Gaussian blur with sigma = blur_sigma * longer side, computed at most 64 px across (a large
    # blur keeps no detail finer than that), then enlarged back smoothly
    factor = min(1.0, 64.0 / max(h, w))
    small = crop if factor == 1.0 else cv2.resize(crop, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    sigma = config.blur_sigma * max(small.shape[:2])
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)
    return small if factor == 1.0 else cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def anonymise_image(image: np.ndarray, boxes: np.ndarray, config: AnonymiseConfig | None = None) -> np.ndarray:
    """A copy of ``image`` (``(H, W)`` or ``(H, W, C)`` uint8) with the faces in ``boxes`` ``(N, 4)`` hidden.

    Only the pixels of :func:`hide_mask` change. The effect of each face is computed from that
    face's region alone, so nothing of one face leaks into another's.
    """
    config = config or AnonymiseConfig()
    out = image.copy()
    height, width = image.shape[:2]
    for region in face_regions(boxes, config.margin):
        window = _pixel_window(region, height, width)
        x0, y0, x1, y1 = window
        if x1 <= x0 or y1 <= y0:
            continue
        mask = _shape_mask(region, window, config.shape)
        view = out[y0:y1, x0:x1]
        view[mask] = _hidden(view, config)[mask]
    return out


def anonymise_faces(image: Any, faces: Faces, method: str = "blur", **options: Any) -> np.ndarray:
    """``faces.anonymise(image, ...)``: ``image`` as a numpy array (same channel order comes back),
    a path (read as BGR) or a PIL image (RGB); ``options`` are :class:`AnonymiseConfig` fields."""
    return anonymise_image(as_array(image), faces.boxes, AnonymiseConfig(method=method, **options))  # type: ignore[arg-type]


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


def _face_records(faces: Faces, config: AnonymiseConfig, extra: dict[str, np.ndarray] | None = None) -> list[dict]:
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


def anonymise_still(
    path: Path, output: Path, detector: Detector, config: AnonymiseConfig, threshold: float
) -> dict[str, Any]:
    """Anonymise one image file into ``output`` (+ ``output.json``); returns the sidecar content."""
    image = read_image(path)
    faces = detector.detect_bgr([image])[0]
    faces = faces[faces.scores >= threshold]
    output.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(output), anonymise_image(image, faces.boxes, config)):
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


def read_frames(capture: cv2.VideoCapture, max_bad: int = 25) -> Iterator[tuple[int, np.ndarray | None]]:
    """``(index, BGR frame)`` of every frame; ``None`` for a frame that cannot be decoded.

    Decoding goes on after a bad frame while the container says more frames follow; it stops at
    the end, or after ``max_bad`` bad frames in a row (a truncated file).
    """
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    index = bad = 0
    while True:
        ok, frame = capture.read()
        if ok:
            bad = 0
            yield index, frame
        else:
            bad += 1
            if index >= total or bad > max_bad:
                return
            yield index, None
        index += 1


def anonymise_video(
    source: Path,
    output: Path,
    detector: Detector,
    config: AnonymiseConfig,
    threshold: float,
    tracker: TrackerConfig | None,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Anonymise a video into ``output`` (MP4, same frame rate and size, no audio) + ``output.json``.

    With ``tracker`` the detector should run at ``tracker.low_threshold`` or lower and faces are
    those of :class:`FaceTracker` (``threshold`` is its ``high_threshold``), including boxes
    predicted through short gaps; without it, each frame's faces scoring at least ``threshold``.
    A frame that cannot be decoded is written black and listed in ``bad_frames``. The sidecar's
    ``frames`` lists the frames in which something was hidden.
    """
    capture = open_capture(source)
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    follow = FaceTracker(tracker) if tracker is not None else None
    writer: cv2.VideoWriter | None = None
    size: tuple[int, int] | None = None
    frames: list[dict[str, Any]] = []
    bad_frames: list[int] = []
    count = 0
    try:
        stream: Iterable[tuple[int, np.ndarray | None]] = progress(read_frames(capture), total)
        for run in same_shape_batches(stream, lambda item: item[1], detector.config.batch_size):
            images = [frame for _, frame in run if frame is not None]
            results = detector.detect_bgr(images) if images else []
            found = iter(results)
            for index, frame in run:
                count = index + 1
                if frame is None:
                    bad_frames.append(index)
                    faces = Faces.empty()
                else:
                    faces = next(found)
                    size = size or (frame.shape[1], frame.shape[0])
                shown, extra = _faces_to_hide(faces, follow, threshold)
                if size is None:  # bad frames before the first good one: nothing to write yet
                    continue
                if writer is None:
                    writer = _open_writer(output, fps, size)
                    for _ in bad_frames:  # the leading bad frames, as black frames
                        writer.write(np.zeros((size[1], size[0], 3), np.uint8))
                if frame is None:
                    writer.write(np.zeros((size[1], size[0], 3), np.uint8))
                    continue
                hidden = anonymise_image(frame, shown.boxes, config)
                writer.write(hidden if hidden.shape[1::-1] == size else cv2.resize(hidden, size))  # size changed
                if len(shown):
                    frames.append({"frame": index, "faces": _face_records(shown, config, extra)})
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if size is None:
        raise VideoError(f"{source}: no frame could be decoded")
    content = {
        "source": str(source),
        "output": str(output),
        "width": size[0],
        "height": size[1],
        "fps": fps,
        "frame_count": count,
        "threshold": threshold,
        "tracking": asdict(tracker) if tracker is not None else None,
        "settings": asdict(config),
        "bad_frames": bad_frames,
        "frames": frames,
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


def _open_writer(output: Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    output.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(output), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise VideoError(f"{output}: cannot write video")
    return writer


def anonymise_paths(
    paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    detector: Detector,
    *,
    video_detector: Detector | None = None,
    config: AnonymiseConfig | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    tracker: TrackerConfig | None = None,
    root: Path | None = None,
    progress: Progress = no_progress,
) -> Iterator[dict[str, Any]]:
    """Anonymise every image and video named by ``paths`` into ``out_dir``; one summary record each.

    Images keep their name and format (``out_dir/<path under root or parent/name>``), videos become
    ``out_dir/<name>.mp4``; each output gets a ``<output>.json`` sidecar. Records are ``source,
    output, faces`` (faces hidden; for videos, face-frames) plus ``bad_frames`` for videos, or
    ``source, error`` -- a broken input is reported and the others are processed.
    ``video_detector``: used for videos (default ``detector``; e.g. without test-time augmentation).
    """
    config = config or AnonymiseConfig()
    images, videos = list_inputs(paths)
    out = Path(out_dir)
    for path in progress(images, len(images)) if images else ():
        target = out / output_name(path, root, "" if path.suffix else ".jpg")
        try:
            content = anonymise_still(path, target, detector, config, threshold)
        except Exception as exc:  # reported per file, the run goes on
            yield {"source": str(path), "error": str(getattr(exc, "reason", exc))}
            continue
        yield {"source": str(path), "output": str(target), "faces": len(content["faces"])}
    for video in videos:
        target = out / f"{video.stem}.mp4"
        try:
            content = anonymise_video(video, target, video_detector or detector, config, threshold, tracker, progress)
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
            record["error"] = f"{len(bad)} frame(s) could not be decoded: {bad[:10]}{' ...' if len(bad) > 10 else ''}"
        yield record
