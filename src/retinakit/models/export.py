"""ONNX export: dynamic batch, height and width; named outputs; the model config in the metadata."""

from __future__ import annotations

import os
import warnings

import torch

from retinakit.config import CONFIG_KEY
from retinakit.core.outputs import DENSE_OUTPUT_NAME, INPUT_NAME, OUTPUT_NAMES
from retinakit.models.retinaface import RetinaFace

DEFAULT_OPSET = 17


def export_onnx(
    model: RetinaFace,
    path: str | os.PathLike,
    opset: int | None = None,
    sample_size: tuple[int, int] = (480, 640),
) -> None:
    """Export ``model`` (eval mode, BatchNorm folded by the exporter) to ``path``.

    Input ``image``: ``(batch, 3, height, width)`` float32, preprocessed as the config's ``input``
    says; outputs ``box_deltas``, ``logits``, ``landmark_deltas`` (see :mod:`retinakit.core.outputs`).
    The config JSON is stored under the metadata key ``retinakit.config``. ``opset`` defaults to 17,
    or to 19 for models with deformable convolutions, which become ONNX ``DeformConv`` nodes
    (ONNX Runtime 1.32 runs them on the CPU; older releases may not).
    """
    import onnx

    from retinakit.models.dcn import DEFORM_CONV_OPSET, DeformConv2d, register_onnx_symbolic

    has_dcn = any(isinstance(m, DeformConv2d) for m in model.modules())
    if opset is None:
        opset = DEFORM_CONV_OPSET if has_dcn else DEFAULT_OPSET
    if has_dcn:
        if opset < DEFORM_CONV_OPSET:
            raise ValueError(
                f"model {model.config.name!r} has deformable convolutions: ONNX DeformConv needs opset >= 19"
            )
        register_onnx_symbolic()
    model = model.eval()
    sample = torch.zeros(1, 3, *sample_size)
    dynamic = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"}}
    names = [*OUTPUT_NAMES, DENSE_OUTPUT_NAME] if model.config.dense else list(OUTPUT_NAMES)
    dynamic.update({name: {0: "batch", 1: "anchors"} for name in names})
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (sample,),
            os.fspath(path),
            input_names=[INPUT_NAME],
            output_names=names,
            dynamic_axes=dynamic,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    proto = onnx.load(os.fspath(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = CONFIG_KEY, model.config.to_json()
    proto.producer_name = "retinakit"
    onnx.checker.check_model(proto)
    onnx.save(proto, os.fspath(path))
