"""Runtime backends: turn a preprocessed ``(B, 3, H, W)`` float32 batch into raw outputs (numpy).

``OnnxBackend`` (ONNX Runtime, the default; needs no PyTorch), ``OpenVinoBackend`` (optional)
and ``TorchBackend``. All are fed and read by the same pre- and post-processing in
:mod:`retinakit.detector`.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Protocol

import numpy as np

from retinakit.config import CONFIG_KEY, ModelConfig, get_preset
from retinakit.errors import ModelError
from retinakit.inference.outputs import (
    DENSE_OUTPUT_NAME,
    INPUT_NAME,
    OUTPUT_NAMES,
    DenseRawOutputs,
    RawOutputs,
    raw_outputs,
)
from retinakit.result import FaceMeshes

BUILTIN_NAME = "retinaface_mobilenet0.25"


def builtin_weights(kind: str = "onnx") -> Path:
    """Path of the built-in MobileNet-0.25 weights: ``onnx`` or ``safetensors``."""
    path = resources.files("retinakit") / "weights" / f"{BUILTIN_NAME}.{kind}"
    return Path(str(path))


def physical_cores() -> int:
    """CPU cores this process may use (the default thread count of every backend)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _model_file(path: str | os.PathLike | None) -> Path:
    """The ONNX file to load: ``path``, or the built-in one when None; it must exist."""
    resolved = Path(path) if path is not None else builtin_weights("onnx")
    if not resolved.is_file():
        raise FileNotFoundError(f"{resolved}: no such ONNX file")
    return resolved


def _model_config(path: Path, config: ModelConfig | None, stored: str | None) -> ModelConfig:
    """``config`` if given, else the ModelConfig JSON stored in the graph's metadata."""
    if config is not None:
        return config
    if stored is None:
        raise ModelError(f"{path}: carries no retinakit config; pass the model preset (e.g. model='mobilenet0.25')")
    try:
        return ModelConfig.from_json(stored)
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelError(f"{path}: its stored retinakit config is invalid ({exc})") from None


def _check_signature(path: Path, inputs: list[str], outputs: list[str]) -> None:
    """A RetinaFace graph has one input ``image`` and the outputs :data:`OUTPUT_NAMES`, in order
    (then ``dense_params`` for a model with the dense branch)."""
    if inputs != [INPUT_NAME] or tuple(outputs) not in (OUTPUT_NAMES, (*OUTPUT_NAMES, DENSE_OUTPUT_NAME)):
        raise ModelError(
            f"{path}: not a retinakit RetinaFace model: expected input {INPUT_NAME!r} and outputs "
            f"{', '.join(OUTPUT_NAMES)}; it has inputs {', '.join(inputs) or 'none'} and outputs "
            f"{', '.join(outputs) or 'none'} (export a checkpoint with `retinakit export`)"
        )


class Backend(Protocol):
    """What the detector needs from a runtime."""

    config: ModelConfig

    def __call__(self, batch: np.ndarray) -> RawOutputs | DenseRawOutputs: ...


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

        self.path = _model_file(path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # An explicit thread count: ONNX Runtime's default pool is measurably slower here.
        options.intra_op_num_threads = threads or physical_cores()
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ModelError(f"{self.path}: not a loadable ONNX model ({exc})") from None
        inputs = [i.name for i in self.session.get_inputs()]
        _check_signature(self.path, inputs, [o.name for o in self.session.get_outputs()])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.config = _model_config(self.path, config, meta.get(CONFIG_KEY))
        self._input = INPUT_NAME

    def __call__(self, batch: np.ndarray) -> RawOutputs | DenseRawOutputs:
        return raw_outputs(*self.session.run(None, {self._input: batch}))


class OpenVinoBackend:
    """OpenVINO runtime over an exported ONNX graph (optional extra ``openvino``).

    ``precision``: ``f32``, or ``bf16`` where the CPU supports it (faster, slightly different
    numbers; its WIDER AP is reported in the README).
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        config: ModelConfig | None = None,
        threads: int | None = None,
        precision: str = "f32",
    ) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise ImportError("backend='openvino' needs OpenVINO: pip install 'retinakit[openvino]'") from None
        self.path = _model_file(path)
        core = ov.Core()
        try:
            model = core.read_model(str(self.path))
        except Exception as exc:
            raise ModelError(f"{self.path}: not a loadable ONNX model ({exc})") from None
        _check_signature(self.path, [i.get_any_name() for i in model.inputs], [o.get_any_name() for o in model.outputs])
        # ONNX metadata_props arrive in the model's runtime info under "framework"
        key = ["framework", CONFIG_KEY]
        stored = str(model.get_rt_info(key).value) if model.has_rt_info(key) else None
        self.config = _model_config(self.path, config, stored)
        if precision not in ("f32", "bf16"):
            raise ValueError(f"OpenVINO precision must be 'f32' or 'bf16', got {precision!r}")
        properties = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": precision,
            "INFERENCE_NUM_THREADS": threads or physical_cores(),
        }
        self.compiled = core.compile_model(model, "CPU", properties)
        self._request = self.compiled.create_infer_request()
        self._outputs = list(self.compiled.outputs)

    def __call__(self, batch: np.ndarray) -> RawOutputs | DenseRawOutputs:
        result = self._request.infer({0: batch})
        return raw_outputs(*(np.array(result[o]) for o in self._outputs))


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


PRECISIONS = ("fp32", "bf16")


def make_backend(
    backend: str,
    weights: str | os.PathLike | None = None,
    model: str | None = None,
    device: str = "cpu",
    threads: int | None = None,
    precision: str = "fp32",
) -> Backend:
    """The backend named ``onnx``, ``openvino`` or ``torch`` for ``weights`` (None: built-in).

    ``model`` names a preset for weights that carry no config. A ``.onnx`` file needs the ``onnx``
    or ``openvino`` backend; a checkpoint (``.safetensors``, ``.pth``, ``.pt``) the ``torch`` backend.
    ``precision``: ``fp32``, or ``bf16`` (openvino backend). int8 is not offered: static int8
    quantisation of the built-in model costs about 5 AP on WIDER FACE (see README).
    """
    config = get_preset(model) if model else None
    if backend not in ("onnx", "openvino", "torch"):
        raise ValueError(f"unknown backend {backend!r}; choose 'onnx', 'openvino' or 'torch'")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16" and backend != "openvino":
        raise ValueError("precision='bf16' needs backend='openvino'")
    if weights is not None:
        suffix = Path(weights).suffix.lower()
        if suffix == ".onnx" and backend == "torch":
            raise ValueError(f"{weights}: an ONNX file runs on the onnx or openvino backend, not torch")
        if suffix != ".onnx" and backend != "torch":
            raise ValueError(f"{weights}: a PyTorch checkpoint needs backend='torch' (or export it to ONNX first)")
    if backend == "onnx":
        return OnnxBackend(weights, config=config, threads=threads)
    if backend == "openvino":
        return OpenVinoBackend(
            weights, config=config, threads=threads, precision="bf16" if precision == "bf16" else "f32"
        )
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ImportError("backend='torch' needs PyTorch: pip install 'retinakit[torch]'") from None
    return TorchBackend(weights, config=config, device=device, threads=threads)
