"""Detection over many files (``retinakit detect``): records per image, failures reported, never fatal."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from retinakit.detector import Detector
from retinakit.draw import draw_faces
from retinakit.io_utils import prefetch
from retinakit.preprocess import read_image
from retinakit.result import Faces

Progress = Callable[[Iterable[Any], int], Iterator[Any]]


def _no_progress(items: Iterable[Any], total: int) -> Iterator[Any]:
    return iter(items)


def image_record(path: str, image: np.ndarray, faces: Faces) -> dict[str, Any]:
    """The JSON record of one image: path, width, height and its faces."""
    return {"path": path, "width": int(image.shape[1]), "height": int(image.shape[0]), "faces": faces.to_list()}


def output_name(path: Path, root: Path | None, suffix: str) -> Path:
    """Output file name for ``path``: its path under ``root`` if inside it, else parent/name."""
    try:
        rel = path.resolve().relative_to(root.resolve()) if root else None
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
    progress: Progress = _no_progress,
) -> Iterator[dict[str, Any]]:
    """Detect faces in each file, yielding one record per file in order.

    A file that cannot be read or processed yields ``{"path", "error"}`` and the run goes on.
    Consecutive images of the same size share a forward pass (up to the detector's batch size).
    ``save_images``: write annotated copies there; ``wider``: write WIDER-format txt files there.
    """
    from retinakit.evaluation.wider import faces_to_wider, write_submission_file

    pending: list[tuple[Path, np.ndarray]] = []

    def flush() -> Iterator[dict[str, Any]]:
        if not pending:
            return
        try:
            results = detector.detect_bgr([im for _, im in pending])
        except Exception as exc:
            for path, _ in pending:
                yield {"path": str(path), "error": f"detection failed: {exc}"}
            pending.clear()
            return
        for (path, image), faces in zip(pending, results, strict=True):
            try:
                if save_images is not None:
                    target = Path(save_images) / output_name(path, root, ".jpg")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if not cv2.imwrite(str(target), draw_faces(image, faces)):
                        raise OSError(f"cannot write {target}")
                if wider is not None:
                    key = f"{path.parent.name or 'images'}/{path.stem}"  # WIDER layout: event/name
                    write_submission_file(wider, key, faces_to_wider(faces))
            except Exception as exc:
                yield {**image_record(str(path), image, faces), "error": f"output failed: {exc}"}
                continue
            yield image_record(str(path), image, faces)
        pending.clear()

    for path, image in progress(prefetch(read_image, paths), len(paths)):
        if isinstance(image, BaseException):
            yield from flush()
            yield {"path": str(path), "error": str(getattr(image, "reason", image))}
            continue
        if pending and (pending[0][1].shape != image.shape or len(pending) >= detector.config.batch_size):
            yield from flush()
        pending.append((path, image))
    yield from flush()
