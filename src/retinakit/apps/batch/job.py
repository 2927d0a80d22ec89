"""A batch job's settings and outcome, and the per-image work shared by both engines."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from retinakit.apps.batch.schema import Row, error_row, ok_row
from retinakit.apps.files import output_name
from retinakit.core.images import read_image
from retinakit.detector import Detector, DetectorConfig
from retinakit.errors import ImageError, RetinakitError
from retinakit.io.draw import draw_faces
from retinakit.ops.align import align_faces
from retinakit.result import Faces


class BatchError(RetinakitError):
    """A job that had to stop (e.g. the Ray engine lost work); rerunning it resumes."""


#: DetectorConfig fields that change speed, never detections: a job may resume with other values.
RESOURCE_FIELDS = ("threads", "batch_size", "device")


@dataclass(frozen=True)
class BatchConfig:
    """One batch job: ``source`` (directory, glob or .txt/.csv/.parquet listing) into ``output`` (Parquet shards).

    ``root``: base of relative paths in a listing and of output names (default: the directory, the
    glob's fixed prefix or the listing's directory). ``shard_size``: inputs per Parquet file.
    ``crops`` / ``crop_size``: also write aligned crops (``<root-relative path>_<face>.png``);
    ``save_images``: also write annotated copies. ``engine``: ``local`` (worker processes decode,
    this process detects) or ``ray``. Local: ``workers`` decoding processes (None: one per CPU; 0:
    decode in this process). Ray: ``address`` of a cluster (None: a local instance with
    ``num_cpus``), ``actors`` detector actors of ``actor_cpus`` CPUs each (the detector's threads),
    decoding tasks of ``decode_cpus`` CPUs each (both fitted to the cluster, see
    :func:`~retinakit.apps.batch.ray_engine.plan_pool`); ``stall_timeout``: seconds without a finished
    chunk after which the job stops with :class:`BatchError` naming the stage that stalled.
    """

    source: str
    output: str
    root: str | None = None
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    shard_size: int = 1000
    crops: str | None = None
    crop_size: int = 112
    save_images: str | None = None
    engine: Literal["local", "ray"] = "local"
    workers: int | None = None
    address: str | None = None
    num_cpus: int | None = None
    actors: int | None = None
    actor_cpus: int = 1
    decode_cpus: float = 0.5
    stall_timeout: float = 300.0

    def __post_init__(self) -> None:
        if self.shard_size < 1 or self.crop_size < 16:
            raise ValueError(f"shard_size must be >= 1 and crop_size >= 16, got {self.shard_size}, {self.crop_size}")
        if self.engine not in ("local", "ray"):
            raise ValueError(f"engine must be 'local' or 'ray', got {self.engine!r}")
        if (self.workers is not None and self.workers < 0) or self.actor_cpus < 1 or (self.actors or 1) < 1:
            raise ValueError("workers must be >= 0, actors and actor_cpus >= 1")
        if self.decode_cpus < 0:
            raise ValueError(f"decode_cpus must be >= 0, got {self.decode_cpus}")
        if self.stall_timeout <= 0:
            raise ValueError(f"stall_timeout must be > 0 seconds, got {self.stall_timeout}")

    def job_settings(self) -> dict[str, Any]:
        """What decides the output (kept in ``_job.json``): a resume must match; engine, resources may differ."""
        detector = {k: v for k, v in asdict(self.detector).items() if k not in RESOURCE_FIELDS}
        detector["scales"] = list(detector["scales"])
        if isinstance(detector["orientations"], tuple):  # as JSON keeps it, so a resume compares equal
            detector["orientations"] = list(detector["orientations"])
        if detector["detail"] == "auto":  # the default, which jobs written before the field existed ran
            del detector["detail"]
        return {
            "source": self.source,
            "root": self.root,
            "shard_size": self.shard_size,
            "detector": detector,
            "crops": self.crops,
            "crop_size": self.crop_size,
            "save_images": self.save_images,
        }


@dataclass(frozen=True)
class BatchReport:
    """What a run did: images and errors written now, shards written / skipped (done before), time.

    ``cpu_seconds``: CPU time of this process and its worker processes (local engine; None for Ray).
    ``total_images`` / ``total_errors``: rows in the whole output, earlier runs included.
    """

    images: int
    errors: int
    shards_written: int
    shards_skipped: int
    seconds: float
    cpu_seconds: float | None = None
    total_images: int = 0
    total_errors: int = 0

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_utilisation(self) -> float | None:
        """Fraction of all the machine's cores kept busy over the run."""
        if self.cpu_seconds is None or self.seconds <= 0:
            return None
        return self.cpu_seconds / (self.seconds * (os.cpu_count() or 1))


def decode(path: str) -> tuple[np.ndarray | None, str | None]:
    """``(BGR image, None)`` or ``(None, reason)``: never raises, so a bad file becomes an error row."""
    try:
        return read_image(path), None
    except Exception as exc:  # ImageError carries the reason; anything else is reported as is
        return None, str(getattr(exc, "reason", None) or exc)


def write_image_outputs(config: BatchConfig, base: Path, path: str, image: np.ndarray, faces: Faces) -> None:
    """Aligned crops and / or an annotated copy of one image, named after its path under ``base``.

    Files are overwritten, so a shard that is redone after a kill leaves no duplicates.
    """
    if config.crops is not None and len(faces):
        stem = output_name(Path(path), base, "")
        for i, crop in enumerate(align_faces(image, faces.landmarks, config.crop_size)):
            _imwrite(Path(config.crops) / stem.parent / f"{stem.name}_{i}.png", crop)
    if config.save_images is not None:
        _imwrite(Path(config.save_images) / output_name(Path(path), base, ".jpg"), draw_faces(image, faces))


def _imwrite(target: Path, image: np.ndarray) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(target), image):
        raise OSError(f"cannot write {target}")


@dataclass(frozen=True)
class Item:
    """One input on its way through the engine: shard, position in the shard, path, decoded image or error."""

    shard: int
    size: int
    position: int
    path: str
    image: np.ndarray | None
    error: str | None


def detect_rows(detector: Detector, items: Iterable[Item]) -> Iterator[tuple[Item, Row, Faces | None]]:
    """``(item, row, faces)`` for each decoded item, in order, through :meth:`Detector.stream`.

    An item that failed to decode, or whose image fails detection alone, gets an error row (faces None);
    every other image is detected, those that shared a failed pass with it included.
    """
    for outcome in detector.stream(items, _image_of, readahead=0):
        item = outcome.item
        if outcome.faces is None or outcome.image is None:
            yield item, error_row(item.path, outcome.reason or "unknown error"), None
        else:
            height, width = outcome.image.shape[:2]
            yield item, ok_row(item.path, width, height, outcome.faces), outcome.faces


def _image_of(item: Item) -> np.ndarray:
    if item.image is None:
        raise ImageError(item.path, item.error or "unknown error")
    return item.image
