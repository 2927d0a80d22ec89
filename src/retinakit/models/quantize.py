"""int8 static quantisation of an exported model with ONNX Runtime, calibrated on real images.

Calibration images should come from the training distribution (the built-in int8 model was
calibrated on WIDER FACE *training* images), never from the evaluation set.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from retinakit.config import ModelConfig
from retinakit.inference.outputs import INPUT_NAME
from retinakit.inference.preprocess import ResizePolicy, make_batch, resize
from retinakit.io.images import read_image


def quantize_onnx(
    model_path: str | os.PathLike,
    output_path: str | os.PathLike,
    calibration_images: Sequence[str | os.PathLike],
    config: ModelConfig,
    max_side: int = 640,
) -> None:
    """Write an int8 (QDQ, per-channel weights, uint8 activations) copy of ``model_path``.

    ``calibration_images`` are read, resized so the long side is ``max_side`` and preprocessed as
    ``config.input`` says. The config metadata of the source graph is kept.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration_images:
        raise ValueError("quantisation needs at least one calibration image")
    policy = ResizePolicy(max_side=max_side)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._paths = iter(calibration_images)

        def get_next(self) -> dict[str, np.ndarray] | None:
            path = next(self._paths, None)
            if path is None:
                return None
            image, _ = resize(read_image(path), policy)
            return {INPUT_NAME: make_batch([image], config.input)}

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(os.fspath(model_path), os.fspath(prepared))
        quantize_static(
            os.fspath(prepared),
            os.fspath(output_path),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    source = onnx.load(os.fspath(model_path))
    quantized = onnx.load(os.fspath(output_path))
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(source.metadata_props)
    onnx.save(quantized, os.fspath(output_path))
