"""Where the built-in MobileNet-0.25 files live (package data under ``retinakit/weights``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

BUILTIN_NAME = "retinaface_mobilenet0.25"
#: Built-in files by kind: PyTorch weights, the plain float graph (float NCHW input), the float graph
#: with the preprocessing inside (uint8 input) and its int8 quantisation (uint8 input).
BUILTIN_FILES = {
    "safetensors": f"{BUILTIN_NAME}.safetensors",
    "onnx": f"{BUILTIN_NAME}.onnx",
    "fused": f"{BUILTIN_NAME}_fused.onnx",
    "int8": f"{BUILTIN_NAME}_int8.onnx",
}


def builtin_weights(kind: str = "onnx") -> Path:
    """Path of a built-in MobileNet-0.25 file: ``onnx``, ``safetensors``, ``fused`` or ``int8`` (see BUILTIN_FILES)."""
    path = resources.files("retinakit") / "weights" / BUILTIN_FILES[kind]
    return Path(str(path))
