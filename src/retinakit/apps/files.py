"""Detection over many files (``retinakit detect`` / ``align``): one record per image, failures never fatal."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from retinakit.apps.align import align_faces
from retinakit.detector import Detector
from retinakit.io.draw import draw_faces
from retinakit.io.formats import image_record, to_wider_rows, write_wider_file
from retinakit.io.images import read_image
from retinakit.io.readahead import Progress, no_progress, prefetch, same_shape_batches
from retinakit.result import Faces


@dataclass(frozen=True)
class Detection:
    """Outcome for one file: the decoded image and its faces, or the reason it failed."""

    path: Path
    image: np.ndarray | None = None
    faces: Faces | None = None
    error: str | None = None


def iter_detections(paths: Sequence[Path], detector: Detector, progress: Progress = no_progress) -> Iterator[Detection]:
    """Decode (in a background thread) and detect every file, in order.

    Consecutive images of the same size share a forward pass (up to the detector's batch size),
    so no compute is spent on padding. Unreadable files give a :class:`Detection` with ``error``.
    """
    stream = progress(prefetch(read_image, paths), len(paths))
    for run in same_shape_batches(stream, _image_or_none, detector.config.batch_size):
        first = run[0][1]
        if isinstance(first, BaseException):
            yield Detection(run[0][0], error=str(getattr(first, "reason", first)))
            continue
        try:
            results = detector.detect_bgr([image for _, image in run])
        except Exception as exc:  # reported per file, the run goes on
            for path, _ in run:
                yield Detection(path, error=f"detection failed: {exc}")
            continue
        for (path, image), faces in zip(run, results, strict=True):
            yield Detection(path, image, faces)


def _image_or_none(item: tuple[Path, np.ndarray | BaseException]) -> np.ndarray | None:
    return None if isinstance(item[1], BaseException) else item[1]


def output_name(path: Path, root: Path | None, suffix: str) -> Path:
    """Output file name for ``path``: its path under ``root`` if inside it, else parent/name."""
    rel = None
    if root is not None:
        try:
            rel = path.resolve().relative_to(root.resolve())
        except ValueError:
            rel = None
    rel = rel or Path(path.parent.name) / path.name
    return rel.with_suffix(suffix)


def detect_paths(
    paths: Sequence[Path],
    detector: Detector,
    save_images: str | os.PathLike | None = None,
    wider: str | os.PathLike | None = None,
    root: Path | None = None,
    progress: Progress = no_progress,
    save_meshes: str | os.PathLike | None = None,
) -> Iterator[dict[str, Any]]:
    """One JSON record per file: ``path, width, height, faces``, or ``path, error``.

    ``save_images``: write annotated copies there (with the dense meshes when the faces carry
    them); ``wider``: write WIDER-format txt files there (``parent/name.txt``); ``save_meshes``:
    write each face's mesh as ``<relative path>_<face index>.obj`` there (models with the dense
    branch). An output that cannot be written is reported in the record's ``error``.
    """
    for d in iter_detections(paths, detector, progress):
        if d.error is not None or d.image is None or d.faces is None:
            yield {"path": str(d.path), "error": d.error or "no result"}
            continue
        record = image_record(str(d.path), d.image.shape[1], d.image.shape[0], d.faces)
        try:
            if save_images is not None:
                target = Path(save_images) / output_name(d.path, root, ".jpg")
                target.parent.mkdir(parents=True, exist_ok=True)
                if not cv2.imwrite(str(target), draw_faces(d.image, d.faces)):
                    raise OSError(f"cannot write {target}")
            if wider is not None:
                write_wider_file(wider, f"{d.path.parent.name or 'images'}/{d.path.stem}", to_wider_rows(d.faces))
            if save_meshes is not None and len(d.faces):
                from retinakit.io.meshes import save_mesh

                stem = Path(save_meshes) / output_name(d.path, root, "")
                stem.parent.mkdir(parents=True, exist_ok=True)
                for i in range(len(d.faces)):
                    save_mesh(d.faces, i, stem.parent / f"{stem.name}_{i}.obj")
        except Exception as exc:
            record["error"] = f"output failed: {exc}"
        yield record


def align_paths(
    paths: Sequence[Path],
    detector: Detector,
    out_dir: str | os.PathLike,
    size: int = 112,
    root: Path | None = None,
    progress: Progress = no_progress,
) -> Iterator[dict[str, Any]]:
    """Write one aligned ``size`` x ``size`` crop per detected face; one index record per crop.

    Crops go to ``out_dir/<relative path>_<face index>.png``; records are ``source, face, score,
    box, crop``. A file that fails yields ``source, error``.
    """
    out = Path(out_dir)
    for d in iter_detections(paths, detector, progress):
        if d.error is not None or d.image is None or d.faces is None:
            yield {"source": str(d.path), "error": d.error or "no result"}
            continue
        crops = align_faces(d.image, d.faces.landmarks, size)
        stem = output_name(d.path, root, "")
        for i, (crop, face) in enumerate(zip(crops, d.faces, strict=True)):
            target = out / stem.parent / f"{stem.name}_{i}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            record = {
                "source": str(d.path),
                "face": i,
                "score": round(face.score, 5),
                "box": np.round(face.box.astype(np.float64), 2).tolist(),
                "crop": str(target.relative_to(out)),
            }
            if not cv2.imwrite(str(target), crop):
                record["error"] = f"cannot write {target}"
            yield record
