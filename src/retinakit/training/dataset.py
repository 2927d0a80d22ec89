"""Training data: annotated images from any label format :mod:`retinakit.io.labels` reads (PyTorch Dataset)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from retinakit.config import InputConfig
from retinakit.core.images import read_image
from retinakit.inference.preprocess import make_batch
from retinakit.io.labels import ImageAnnotation, LabelOptions, LabelSet, read_labels
from retinakit.training.augment import AugmentConfig, Sample, augment


def load_annotations(path: str | os.PathLike, options: LabelOptions | None = None) -> LabelSet:
    """A label set in any format (recognised from the file unless ``options.format``), checked:
    the first bad label raises :class:`~retinakit.errors.AnnotationError` naming file and line."""
    return read_labels(path, options)


class FaceDataset(torch.utils.data.Dataset):
    """Augmented samples; the randomness of item ``i`` in epoch ``e`` is fixed by ``(seed, e, i)``,
    so runs are reproducible whatever the number of workers."""

    def __init__(
        self,
        annotations: list[ImageAnnotation],
        image_root: str | os.PathLike,
        augment_config: AugmentConfig,
        input_config: InputConfig,
        seed: int = 0,
    ) -> None:
        self.annotations = annotations
        self.root = Path(image_root)
        self.augment = augment_config
        self.input = input_config
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.annotations)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        ann = self.annotations[index]
        image = read_image(self.root / ann.image)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        sample = augment(Sample(image, ann.boxes, ann.landmarks, ann.has_landmarks), rng, self.augment)
        tensor = torch.from_numpy(make_batch([sample.image], self.input)[0])
        target = {
            "boxes": torch.from_numpy(np.ascontiguousarray(sample.boxes, dtype=np.float32)).reshape(-1, 4),
            "landmarks": torch.from_numpy(np.ascontiguousarray(sample.landmarks, dtype=np.float32)).reshape(-1, 5, 2),
            "has_landmarks": torch.from_numpy(np.ascontiguousarray(sample.has_landmarks, dtype=bool)),
        }
        return tensor, target


def collate(
    batch: list[tuple[torch.Tensor, dict[str, torch.Tensor]]],
) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    images, targets = zip(*batch, strict=True)
    return torch.stack(images), list(targets)
