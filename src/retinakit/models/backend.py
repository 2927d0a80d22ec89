"""The PyTorch backend: a :class:`~retinakit.models.retinaface.RetinaFace` in eval mode behind the
interface of :class:`retinakit.inference.backends.Backend` (raw outputs in numpy)."""

from __future__ import annotations

import os
from typing import Literal

import numpy as np

from retinakit.config import ModelConfig
from retinakit.core.builtin import builtin_weights
from retinakit.core.outputs import DenseRawOutputs, RawOutputs, raw_outputs
from retinakit.result import FaceMeshes

InputLayout = Literal["nchw_float", "nhwc_uint8"]


class TorchBackend:
    """PyTorch eval-mode model; ``weights`` is a checkpoint path or None for the built-in weights."""

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        config: ModelConfig | None = None,
        device: str = "cpu",
        threads: int | None = None,
        model: object | None = None,
    ) -> None:
        import torch

        from retinakit.models.checkpoints import load_model

        if threads:
            torch.set_num_threads(threads)
        if model is None:
            model = load_model(weights if weights is not None else builtin_weights("safetensors"), config)
        self.model = model.eval().to(device)  # type: ignore[attr-defined]  # caller's model: set to eval
        self.config: ModelConfig = self.model.config
        self.device = device
        self.input_layout: InputLayout = "nchw_float"
        self.precision = "fp32"
        self._torch = torch

    def __call__(self, batch: np.ndarray) -> RawOutputs | DenseRawOutputs:
        torch = self._torch
        with torch.inference_mode():
            out = self.model(torch.from_numpy(batch).to(self.device))
        return raw_outputs(*(o.float().cpu().numpy() for o in out))

    def decode_meshes(self, params: np.ndarray, boxes: np.ndarray) -> FaceMeshes | None:
        """Meshes of faces from their dense parameters ``(N, 144)`` and boxes ``(N, 4)`` (input
        pixels); None for a model without the dense branch."""
        if getattr(self.model, "dense", None) is None:
            return None
        from retinakit.models.dense.reconstruct import meshes_in_boxes

        return meshes_in_boxes(self.model.dense, params, boxes)
