"""Preprocessing inside the ONNX graph: a model that takes the decoded uint8 BGR image as it is.

:func:`fuse_preprocessing` puts ``Transpose -> (channel flip) -> normalisation`` in front of an
exported RetinaFace graph, so the runtime does the normalisation and the layout change (on the
runtime's threads) and Python only stacks the resized images. The normalisation is one per-channel
``DequantizeLinear`` (``pixel - mean``, exact) when the means are whole numbers in 0-255, the
stds 1 (as for the built-in model; about half the time of ``Cast -> Sub`` at VGA) and the graph's
opset is 13 or later, else ``Cast -> Sub mean -> (Div std)``. The new
input keeps the name ``image``: ``(batch, height, width, 3)`` uint8, BGR, 0-255. The outputs and
the metadata (the model config) are unchanged; the plain float model stays the export format.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from retinakit.config import CONFIG_KEY, ModelConfig, stored_config
from retinakit.core.outputs import INPUT_NAME

#: Name the float ``(B, 3, H, W)`` tensor gets inside a fused graph.
NORMALIZED_NAME = "image_normalized"


def fuse_preprocessing(model: Any, config: ModelConfig | None = None) -> Any:
    """A copy of the ``onnx.ModelProto`` ``model`` whose input is uint8 NHWC BGR (see module doc).

    ``config``: the model's config (default: the one stored in its metadata); its ``input`` gives the
    channel order, mean and std.
    """
    try:
        import onnx
    except ImportError:
        raise ImportError("a fused-input model needs the onnx package: pip install 'retinakit[torch]'") from None
    from onnx import TensorProto, helper

    config = stored_config("the model", {p.key: p.value for p in model.metadata_props}.get(CONFIG_KEY), config)
    graph_inputs = [i.name for i in model.graph.input]
    if graph_inputs != [INPUT_NAME]:
        raise ValueError(f"expected one graph input named {INPUT_NAME!r}, got {graph_inputs}")
    if model.graph.input[0].type.tensor_type.elem_type != TensorProto.FLOAT:
        raise ValueError("the model's input is not float32 (already fused?)")
    fused = onnx.ModelProto()
    fused.CopyFrom(model)
    graph = fused.graph
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name == INPUT_NAME:
                node.input[k] = NORMALIZED_NAME
    opset = next((o.version for o in fused.opset_import if o.domain in ("", "ai.onnx")), 0)
    nodes, constants = _preprocessing_nodes(config, opset)
    old = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + old)
    graph.initializer.extend(constants)
    del graph.input[:]
    graph.input.append(
        helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["batch", "height", "width", 3]),
    )
    onnx.checker.check_model(fused)
    return fused


def _preprocessing_nodes(config: ModelConfig, opset: int) -> tuple[list[Any], list[Any]]:
    """The nodes from the uint8 NHWC BGR ``image`` to the float NCHW :data:`NORMALIZED_NAME`, and their constants."""
    from onnx import helper, numpy_helper

    # The layout change and the channel flip first, on uint8 (a quarter of the bytes: ONNX Runtime's
    # float transpose is several times slower than numpy here), then the per-channel arithmetic on NCHW.
    nodes = [helper.make_node("Transpose", [INPUT_NAME], ["image_nchw"], perm=[0, 3, 1, 2], name="preprocess/nchw")]
    current = "image_nchw"
    constants = []
    if config.input.channel_order == "RGB":  # stored BGR, the network wants RGB: reverse the channels
        constants.append(numpy_helper.from_array(np.array([2, 1, 0], dtype=np.int64), "preprocess/rgb"))
        gather = helper.make_node("Gather", [current, "preprocess/rgb"], ["image_rgb"], axis=1, name="preprocess/rgb")
        nodes.append(gather)
        current = "image_rgb"
    norm_nodes, norm_constants = _normalisation_nodes(current, config, opset)
    return nodes + norm_nodes, constants + norm_constants


def _normalisation_nodes(current: str, config: ModelConfig, opset: int) -> tuple[list[Any], list[Any]]:
    """``(current - mean) / std`` into :data:`NORMALIZED_NAME`: one exact ``DequantizeLinear`` where it can
    (module doc), else ``Cast -> Sub -> (Div)``; the nodes and their constants."""
    from onnx import TensorProto, helper, numpy_helper

    mean = np.asarray(config.input.mean, dtype=np.float32)
    std = np.asarray(config.input.std, dtype=np.float32)
    exact = np.all(std == 1.0) and np.all(mean == np.round(mean)) and np.all((mean >= 0) & (mean <= 255))
    if exact and opset >= 13:  # per-channel DequantizeLinear needs opset 13
        # (pixel - zero_point) * 1 with the means as per-channel zero points: exact, one pass
        constants = [
            numpy_helper.from_array(np.ones(3, np.float32), "preprocess/one"),
            numpy_helper.from_array(mean.astype(np.uint8), "preprocess/mean"),
        ]
        inputs = [current, "preprocess/one", "preprocess/mean"]
        sub = helper.make_node("DequantizeLinear", inputs, [NORMALIZED_NAME], axis=1, name="preprocess/sub_mean")
        return [sub], constants
    shape = (1, 3, 1, 1)
    nodes = [helper.make_node("Cast", [current], ["image_float"], to=TensorProto.FLOAT, name="preprocess/cast")]
    constants = [numpy_helper.from_array(mean.reshape(shape), "preprocess/mean")]
    last = "image_centered" if np.any(std != 1.0) else NORMALIZED_NAME
    nodes.append(helper.make_node("Sub", ["image_float", "preprocess/mean"], [last], name="preprocess/sub_mean"))
    if np.any(std != 1.0):
        constants.append(numpy_helper.from_array(std.reshape(shape), "preprocess/std"))
        nodes.append(helper.make_node("Div", [last, "preprocess/std"], [NORMALIZED_NAME], name="preprocess/div_std"))
    return nodes, constants


def write_fused(source: str | os.PathLike, output: str | os.PathLike) -> None:
    """Write the uint8-input version of the ONNX file ``source`` to ``output``."""
    import onnx

    onnx.save(fuse_preprocessing(onnx.load(os.fspath(source))), os.fspath(output))
