"""Runtime backends: turn a preprocessed ``(B, 3, H, W)`` float32 batch into raw outputs (numpy).

``OnnxBackend`` (ONNX Runtime, the default; needs no PyTorch) and ``TorchBackend``. Both are fed
and read by the same pre- and post-processing in :mod:`retinakit.detector`.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Protocol

import numpy as np

from retinakit.config import ModelConfig, get_preset
from retinakit.raw import INPUT_NAME, RawOutputs

CONFIG_KEY = "retinakit.config"
BUILTIN_NAME = "retinaface_mobilenet0.25"


def builtin_weights(kind: str = "onnx") -> Path:
    """Path of the built-in MobileNet-0.25 weights shipped in the package (``onnx`` or ``safetensors``)."""
    path = resources.files("retinakit") / "weights" / f"{BUILTIN_NAME}.{kind}"
    return Path(str(path))


class Backend(Protocol):
    """What the detector needs from a runtime."""

    config: ModelConfig

    def __call__(self, batch: np.ndarray) -> RawOutputs: ...


class OnnxBackend:
    """ONNX Runtime session over an exported graph (the built-in one when ``path`` is None)."""

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        config: ModelConfig | None = None,
        threads: int | None = None,
        providers: list[str] | None = None,
    ) -> None:
        import onnxruntime as ort

        self.path = Path(path) if path is not None else builtin_weights("onnx")
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such ONNX file")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ValueError(f"{self.path}: not a loadable ONNX model ({exc})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if config is None:
            if CONFIG_KEY not in meta:
                raise ValueError(f"{self.path}: carries no retinakit config; pass the model preset")
            config = ModelConfig.from_json(meta[CONFIG_KEY])
        self.config = config
        self._input = self.session.get_inputs()[0].name
        if self._input != INPUT_NAME:
            raise ValueError(f"{self.path}: expected an input named {INPUT_NAME!r}, got {self._input!r}")

    def __call__(self, batch: np.ndarray) -> RawOutputs:
        return RawOutputs(*self.session.run(None, {self._input: batch}))


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

        from retinakit.checkpoints import load_model

        if threads:
            torch.set_num_threads(threads)
        if model is None:
            model = load_model(weights if weights is not None else builtin_weights("safetensors"), config)
        self.model = model.eval().to(device)  # type: ignore[attr-defined]
        self.config: ModelConfig = self.model.config
        self.device = device
        self._torch = torch

    def __call__(self, batch: np.ndarray) -> RawOutputs:
        torch = self._torch
        with torch.inference_mode():
            out = self.model(torch.from_numpy(batch).to(self.device))
        return RawOutputs(*(o.float().cpu().numpy() for o in out))


def make_backend(
    backend: str,
    weights: str | os.PathLike | None = None,
    model: str | None = None,
    device: str = "cpu",
    threads: int | None = None,
) -> Backend:
    """The backend named ``onnx`` or ``torch`` for ``weights`` (None: built-in).

    ``model`` names a preset for weights that carry no config. A ``.onnx`` file needs the ``onnx``
    backend; a checkpoint (``.safetensors``, ``.pth``, ``.pt``, ``.ckpt``) the ``torch`` backend.
    """
    config = get_preset(model) if model else None
    if weights is not None:
        suffix = Path(weights).suffix.lower()
        if suffix == ".onnx" and backend != "onnx":
            raise ValueError(f"{weights}: an ONNX file runs on the onnx backend, not {backend!r}")
        if suffix != ".onnx" and backend == "onnx":
            raise ValueError(f"{weights}: a PyTorch checkpoint needs backend='torch' (or export it to ONNX first)")
    if backend == "onnx":
        return OnnxBackend(weights, config=config, threads=threads)
    if backend == "torch":
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ImportError("backend='torch' needs PyTorch: pip install 'retinakit[torch]'") from None
        return TorchBackend(weights, config=config, device=device, threads=threads)
    raise ValueError(f"unknown backend {backend!r}; choose 'onnx' or 'torch'")
