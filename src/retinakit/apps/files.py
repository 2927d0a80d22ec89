"""Detection over many files (``retinakit detect`` / ``align``): one record per image, failures never fatal."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from retinakit.core.images import STDIN, read_image
from retinakit.detector import Detector
from retinakit.errors import OutputError
from retinakit.io.batching import Progress, no_progress
from retinakit.io.draw import draw_faces
from retinakit.io.formats import image_record, to_wider_rows, write_wider_file
from retinakit.ops.align import align_faces, template
from retinakit.result import Faces


@dataclass(frozen=True)
class Detection:
    """Outcome for one file: the decoded image and its faces, or the reason it failed."""

    path: Path
    image: np.ndarray | None = None
    faces: Faces | None = None
    error: str | None = None


def iter_detections(paths: Sequence[Path], detector: Detector, progress: Progress = no_progress) -> Iterator[Detection]:
    """Decode (in a background thread) and detect every file, in order, through :meth:`Detector.stream`.

    Unreadable files give a :class:`Detection` with ``error``; so does an image whose detection
    fails (the others of its forward pass are still detected).
    """
    for outcome in detector.stream(progress(paths, len(paths)), read_image):
        if outcome.error is not None or outcome.faces is None:
            yield Detection(outcome.item, error=outcome.reason or "no result")
        else:
            yield Detection(outcome.item, outcome.image, outcome.faces)


def output_name(path: Path, base: Path | None, suffix: str) -> Path:
    """Output name for jobs without a run-wide registry (batch, anonymize): ``path`` below ``base``
    (else ``parent/name``), its extension kept and ``suffix`` appended
    (as ``retinakit detect`` names outputs: ``a.tiff`` and ``a.webp`` never share a name)."""
    rel = None
    if base is not None:
        try:
            rel = path.resolve().relative_to(base.resolve())
        except ValueError:
            rel = None
    rel = rel or Path(path.parent.name) / path.name
    keep = suffix == ".jpg" and rel.suffix.lower() in (".jpg", ".jpeg")
    return rel if keep or not suffix else rel.with_name(rel.name + suffix)


class OutputNames:
    """Output file names of one run: unique, reversible, and never one of the run's inputs.

    Each output keeps its input's path below the *common input folder*, the deepest folder that
    holds every input: a single input, or inputs from one folder, land directly in the output
    folder (``astronaut.jpg`` -> ``annotated/astronaut.jpg``); inputs from several folders keep
    what tells them apart (``2023/party/img1.jpg`` and ``2024/party/img1.jpg``). WIDER files keep
    one folder more, as the WIDER submission layout wants (``event/name.txt``). Standard input
    (``-``) is named ``stdin``. :meth:`claim` refuses a name that is an input or was already given out.
    ``root``: name outputs below this folder instead of the common input folder.
    """

    def __init__(self, inputs: Sequence[str | os.PathLike], root: str | os.PathLike | None = None) -> None:
        files = [Path(os.path.abspath(p)) for p in inputs if os.fspath(p) != STDIN]
        common = Path(os.path.commonpath([p.parent for p in files])) if files else Path.cwd()
        self.root = Path(os.path.abspath(root)) if root is not None else common
        self._wider_root = Path(os.path.commonpath([p.parent.parent for p in files])) if files else Path.cwd()
        self._inputs = {p.resolve(): p for p in files}
        self._claimed: dict[Path, Path] = {}

    def relative(self, path: str | os.PathLike, root: Path | None = None) -> Path:
        """``path`` below the common input folder (or ``root``), extension kept; ``-`` is ``stdin``."""
        if os.fspath(path) == STDIN:
            return Path("stdin")
        full = Path(os.path.abspath(path))
        try:
            return full.relative_to(root or self.root)
        except ValueError:  # not one of the run's inputs
            return Path(full.name)

    def claim(self, target: Path, source: str | os.PathLike) -> Path:
        """``target``, once checked: raises :class:`OutputError` if it is an input or another input's output."""
        key = target.resolve()
        if key in self._inputs:
            raise OutputError(f"{target}: refusing to overwrite the input {self._inputs[key]}")
        owner = self._claimed.setdefault(key, Path(source))
        if owner != Path(source):
            raise OutputError(f"{target}: already written for {owner} (two inputs map to one output name)")
        return target

    def annotated(self, directory: str | os.PathLike, source: str | os.PathLike, suffix: str = ".jpg") -> Path:
        """Annotated copy: ``directory/<relative path>``, with ``suffix`` appended unless the name ends with it.

        ``img1.jpg`` -> ``img1.jpg``; ``a.tiff`` -> ``a.tiff.jpg``, ``a.webp`` -> ``a.webp.jpg``
        (``.jpeg`` counts as ``.jpg`` for images).
        """
        rel = self.relative(source)
        same = (".jpg", ".jpeg") if suffix == ".jpg" else (suffix,)
        name = rel.name if rel.suffix.lower() in same else rel.name + suffix
        return self.claim(Path(directory) / rel.parent / name, source)

    def wider(self, directory: str | os.PathLike, source: str | os.PathLike) -> tuple[Path, str]:
        """WIDER submission file: ``(folder, "event/name")`` for ``write_wider_file``, i.e.
        ``directory/<relative folder>/<name without extension>.txt`` (the WIDER naming; two inputs
        that differ only by extension are refused by :meth:`claim`)."""
        rel = self.relative(source, self._wider_root)
        if len(rel.parts) < 2:  # at least folder/name, as the WIDER layout wants
            rel = Path("images") / rel
        base = Path(directory) / rel.parent.parent
        self.claim(base / rel.parent.name / f"{rel.stem}.txt", source)
        return base, f"{rel.parent.name}/{rel.stem}"

    def crop(self, directory: str | os.PathLike, source: str | os.PathLike, face: int) -> Path:
        """Aligned crop of face ``face``: ``directory/<relative path>_<face>.png`` (``img1.jpg_0.png``)."""
        rel = self.relative(source)
        return self.claim(Path(directory) / rel.parent / f"{rel.name}_{face}.png", source)


def detect_paths(
    paths: Sequence[Path],
    detector: Detector,
    save_images: str | os.PathLike | None = None,
    wider: str | os.PathLike | None = None,
    names: OutputNames | None = None,
    progress: Progress = no_progress,
    save_meshes: str | os.PathLike | None = None,
) -> Iterator[dict[str, Any]]:
    """One JSON record per file: ``path, width, height, faces``, or ``path, error``.

    ``save_images``: write annotated copies there; ``wider``: write WIDER-format txt files there;
    names by :class:`OutputNames` (built from ``paths`` unless given). An output that cannot be
    written, or would overwrite an input or another output, is reported in the record's ``error``.
    ``save_meshes``: write each face's mesh as ``<relative path>_<face index>.obj`` there (dense branch).
    """
    names = names or OutputNames(paths)
    for d in iter_detections(paths, detector, progress):
        if d.error is not None or d.image is None or d.faces is None:
            yield {"path": str(d.path), "error": d.error or "no result"}
            continue
        record = image_record(str(d.path), d.image.shape[1], d.image.shape[0], d.faces)
        try:
            if save_images is not None:
                target = names.annotated(save_images, d.path)
                target.parent.mkdir(parents=True, exist_ok=True)
                if not cv2.imwrite(str(target), draw_faces(d.image, d.faces)):
                    raise OSError(f"cannot write {target}")
            if wider is not None:
                folder, key = names.wider(wider, d.path)
                write_wider_file(folder, key, to_wider_rows(d.faces))
            if save_meshes is not None and len(d.faces):
                from retinakit.io.meshes import save_mesh

                for i in range(len(d.faces)):
                    target = names.claim(Path(save_meshes) / f"{names.relative(d.path)}_{i}.obj", d.path)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    save_mesh(d.faces, i, target)
        except Exception as exc:
            record["error"] = f"output failed: {exc}"
        yield record


def align_paths(
    paths: Sequence[Path],
    detector: Detector,
    out_dir: str | os.PathLike,
    size: int = 112,
    names: OutputNames | None = None,
    progress: Progress = no_progress,
) -> Iterator[dict[str, Any]]:
    """Write one aligned ``size`` x ``size`` crop per detected face; one index record per crop.

    Crops go to ``out_dir/<relative path>_<face index>.png`` (:meth:`OutputNames.crop`); records are
    ``source, face, score, box, crop``. An image without faces yields ``source, faces: 0``; a file
    that fails yields ``source, error``.
    """
    template(size)  # checks the size before any work
    names = names or OutputNames(paths)
    out = Path(out_dir)
    for d in iter_detections(paths, detector, progress):
        if d.error is not None or d.image is None or d.faces is None:
            yield {"source": str(d.path), "error": d.error or "no result"}
            continue
        if len(d.faces) == 0:
            yield {"source": str(d.path), "faces": 0}
            continue
        crops = align_faces(d.image, d.faces.landmarks, size)
        for i, (crop, face) in enumerate(zip(crops, d.faces, strict=True)):
            record: dict[str, Any] = {
                "source": str(d.path),
                "face": i,
                "score": round(face.score, 5),
                "box": np.round(face.box.astype(np.float64), 2).tolist(),
            }
            try:
                target = names.crop(out, d.path, i)
                record["crop"] = str(target.relative_to(out))
                target.parent.mkdir(parents=True, exist_ok=True)
                if not cv2.imwrite(str(target), crop):
                    raise OSError(f"cannot write {target}")
            except Exception as exc:
                record["error"] = f"output failed: {exc}"
            yield record
